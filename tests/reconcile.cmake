# towerd reconcile: the mapping's [reconcile] section and the comparison of a snapshot row with the tower (unit);
# the command against a real nats-server and projector: every kind of disagreement, --json, --full, the metrics
# file, bad rows, mapping errors (integration).
ct_add_test(test_reconcile unit SOURCES unit/test_reconcile.c LIBS batch)
add_test(NAME test_reconcile_integration COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_reconcile.py $<TARGET_FILE:towerd>)
set_tests_properties(test_reconcile_integration PROPERTIES LABELS integration TIMEOUT 300 COST 15)
