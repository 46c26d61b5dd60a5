
wms-dc1-211Éö ×Àœè
wmswms-dc1"	SO-100148â
	SKU-10346rdc-1