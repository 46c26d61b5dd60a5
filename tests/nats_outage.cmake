# NATS outages (tests/integration/test_nats_outage.py): `towerd serve` and `towerd projector` started
# while NATS does not answer (a loopback port that accepts and never speaks, one where nothing
# listens): serve answers from its store, /readyz says why not, SIGTERM stops both within seconds;
# a hung nats-server (SIGSTOP) never holds up /api/v1/summary, /metrics or /readyz, and /readyz
# reports it. Loopback only; Python 3 standard library only.
add_test(NAME test_nats_outage COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_nats_outage.py $<TARGET_FILE:towerd>)
set_tests_properties(test_nats_outage PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_nats_outage PROPERTIES COST 20)
