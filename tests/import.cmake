# towerd import: the CSV / fixed-width reader, the mapping file and row -> event (unit); the command against a
# real nats-server and projector: examples, re-import, bad rows, mapping errors, kill -9, watch mode (integration).
ct_add_test(test_import unit SOURCES unit/test_import.c LIBS batch)
add_test(NAME test_import_integration COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_import.py $<TARGET_FILE:towerd>)
set_tests_properties(test_import_integration PROPERTIES LABELS integration TIMEOUT 600 COST 40)
