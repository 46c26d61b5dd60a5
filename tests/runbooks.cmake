# Runbooks served by towerd serve --runbooks (docs/runbooks): the shipped set, the most specific match,
# hostile names and files, roles (integration, no NATS).
add_test(NAME test_runbooks COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_runbooks.py $<TARGET_FILE:towerd>)
set_tests_properties(test_runbooks PROPERTIES LABELS integration TIMEOUT 300 COST 5)
