
tms-65ïú ×è—çÈ
tmsrouteplanner2	RT-000009ªrdc-2zfedex