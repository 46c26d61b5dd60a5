# Integration tests of the outbound relay (`towerd relay`, `towerd up --relay`, docs/outbound.md): a real
# nats-server, relay processes, HTTP receivers written in the test and a real SMTP sink (python3-aiosmtpd).
add_test(NAME test_relay_it COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_relay.py $<TARGET_FILE:towerd>)
set_tests_properties(test_relay_it PROPERTIES LABELS integration TIMEOUT 600 COST 40)
# Readiness orchestration (docs/outbound.md "Route planner"): a kind = route_planner destination against an
# HTTP planner written in the test, `towerd serve` showing held requests, `towerd up`'s planner simulator.
add_test(NAME test_planner_it COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_planner.py $<TARGET_FILE:towerd>)
set_tests_properties(test_planner_it PROPERTIES LABELS integration TIMEOUT 300 COST 15)
# Exception destinations (docs/outbound.md "Exception changes"): a projector's store beside the relay.
add_test(NAME test_relay_exc_it COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_relay_exc.py $<TARGET_FILE:towerd>)
set_tests_properties(test_relay_exc_it PROPERTIES LABELS integration TIMEOUT 300 COST 10)
# Delivery lanes (docs/outbound.md "Lanes"): per-entity order with lanes = 8 against a slow, flaky receiver,
# kill -9 with requests in flight on several lanes, hostile lanes values.
add_test(NAME test_relay_lanes_it COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_relay_lanes.py $<TARGET_FILE:towerd>)
set_tests_properties(test_relay_lanes_it PROPERTIES LABELS integration TIMEOUT 300 COST 8)
