# Integration tests of the outbound relay (`towerd relay`, `towerd up --relay`, docs/outbound.md): a real
# nats-server, relay processes, HTTP receivers written in the test and a real SMTP sink (python3-aiosmtpd).
# Its longer tests as ctests of their own, the others together (tests/cases.cmake).
tower_it_cases(test_relay_it ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_relay.py ARGS $<TARGET_FILE:towerd>
               CASES test_2_retries_retry_after_and_refusals:10 test_4_breaker_opens_probes_and_closes:10
                     test_5_kill9_with_a_delivery_in_flight:8 test_8_up_runs_the_relay:8
               PROPERTIES LABELS integration TIMEOUT 600 COST 25)
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
