# Integration tests of the exception lifecycle API: real nats-server, projector and `towerd serve` with tokens.
add_test(NAME test_exceptions COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_exceptions.py $<TARGET_FILE:towerd>)
set_tests_properties(test_exceptions PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_exceptions PROPERTIES COST 40)
