# Business-milestone SLAs: the rules file, the pure evaluation, the fold's dues and the store's due index (unit);
# the SLA engine against a real nats-server, projector and a stand-in Alertmanager (integration).
ct_add_test(test_sla unit SOURCES unit/test_sla.c LIBS sla store)
add_test(NAME test_sla_integration COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sla.py $<TARGET_FILE:towerd>)
set_tests_properties(test_sla_integration PROPERTIES LABELS integration TIMEOUT 600)
# The Prometheus alerting rules: promtool check + promtool unit tests, and every metric they use exists.
add_test(NAME test_prometheus_rules COMMAND sh ${PROJECT_SOURCE_DIR}/deploy/prometheus/check.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(test_prometheus_rules PROPERTIES LABELS unit TIMEOUT 120)
