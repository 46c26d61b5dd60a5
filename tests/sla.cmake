# Business-milestone SLAs: the rules file, the pure evaluation, the fold's dues and the store's due index (unit);
# the SLA engine against a real nats-server, projector and a stand-in Alertmanager (integration).
ct_add_test(test_sla unit SOURCES unit/test_sla.c LIBS sla store)
# `towerd up` warped as a ctest of its own, the engine's tests together (tests/cases.cmake).
tower_it_cases(test_sla_integration ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sla.py ARGS $<TARGET_FILE:towerd>
               CASES SlaUpWarped:10 PROPERTIES LABELS integration TIMEOUT 600 COST 20)
# The Prometheus alerting rules: promtool check + promtool unit tests, and every metric they use exists.
add_test(NAME test_prometheus_rules COMMAND sh ${PROJECT_SOURCE_DIR}/deploy/prometheus/check.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(test_prometheus_rules PROPERTIES LABELS unit TIMEOUT 120)
