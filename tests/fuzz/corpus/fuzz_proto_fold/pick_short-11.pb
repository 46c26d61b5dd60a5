

wms-dc1-68’æ ×€ÌšÕ
wmswms-dc1"	SO-100148Ú
	SKU-10346rdc-1