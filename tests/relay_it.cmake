# Integration tests of the outbound relay (`towerd relay`, `towerd up --relay`, docs/outbound.md): a real
# nats-server, relay processes, HTTP receivers written in the test and a real SMTP sink (python3-aiosmtpd).
add_test(NAME test_relay_it COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_relay.py $<TARGET_FILE:towerd>)
set_tests_properties(test_relay_it PROPERTIES LABELS integration TIMEOUT 600 COST 40)
