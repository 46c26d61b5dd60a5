
	wms-dc2-1рн═вюь▒╛
wmswms-dc2*
SH-M000001Зrdc-2