# towerd import: the CSV / fixed-width reader, the mapping file and row -> event (unit); the command against a
# real nats-server and projector: examples, re-import, bad rows, mapping errors, kill -9, watch mode (integration).
ct_add_test(test_import unit SOURCES unit/test_import.c LIBS batch)
# The kill -9 test as a ctest of its own, the others together (tests/cases.cmake).
tower_it_cases(test_import_integration ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_import.py ARGS $<TARGET_FILE:towerd>
               CASES test_kill9_mid_import_then_restart_stores_each_row_once:15
               PROPERTIES LABELS integration TIMEOUT 600 COST 15)
