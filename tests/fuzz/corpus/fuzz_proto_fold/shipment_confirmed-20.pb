
wms-dc2-273±û ×€ÔÔ«
wmswms-dc2"	SO-100252*SH-100252-1Š
fedexrdc-2