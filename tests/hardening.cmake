# Hostile input against the running tower (tests/integration/test_hardening.py): deep JSON nesting at
# every entry point of `towerd up`; against `towerd serve` and a real nats-server: listen lists, Host
# and Origin checks of loopback mode, content types, Expect: 100-continue, body limits, repeated
# lengths, websocket frames RFC 6455 forbids, the keep-alive, refused upgrades, event time ranges,
# security headers. Python 3 standard library only.
add_test(NAME test_hardening COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_hardening.py $<TARGET_FILE:towerd>)
set_tests_properties(test_hardening PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_hardening PROPERTIES COST 20)
