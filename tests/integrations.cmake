# Integration tests of the relay seen from the server and towerctl (GET /api/v1/integrations, dead letters,
# redrive; towerctl relay): a real nats-server, `towerd relay` delivering to a receiver written in the test,
# and `towerd serve --relay FILE --relay-state DIR --tokens FILE`.
add_test(NAME test_integrations
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_integrations.py $<TARGET_FILE:towerd>
                 $<TARGET_FILE:towerctl>)
set_tests_properties(test_integrations PROPERTIES LABELS integration TIMEOUT 300 COST 20)
