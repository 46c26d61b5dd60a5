
tms-1¤ã ×Ø¯ŒØ
tmsrouteplanner’
SH-100207-1rdc-2