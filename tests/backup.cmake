# towerd backup: a hot copy beside a live projector, and the restore README describes, against a real
# nats-server (integration, Python 3 standard library only).
add_test(NAME test_backup COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_backup.py $<TARGET_FILE:towerd>)
set_tests_properties(test_backup PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_backup PROPERTIES COST 15)
