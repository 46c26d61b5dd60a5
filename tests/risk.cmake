# Predicted delivery risk (docs/risk.md): lead-time percentiles, window expiry, fallback, carrier vs
# warehouse, hysteresis, and the order-independence property of the statistics (unit).
ct_add_test(test_risk unit SOURCES unit/test_risk.c LIBS risk)
# The store's lead-time statistics and open orders, the at_risk view, the SLA engine's decision, events and
# alerts, the leadtimes API's parameters (hostile input), and independence from the events' arrival order (unit).
ct_add_test(test_risk_store unit SOURCES unit/test_risk_store.c LIBS sla_engine server)
target_include_directories(test_risk_store PRIVATE ${PROJECT_SOURCE_DIR}/services/server/src)
# `towerd sla --once --now T` on a constructed trace with a real nats-server and projector: exactly the expected
# at-risk set, no re-raise after a restart, back on track, delivered and cancelled orders leave; the at_risk
# view, GET /api/v1/leadtimes (and its 400s) and tower_orders_at_risk from `towerd serve` (integration).
add_test(NAME test_risk_integration COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_risk.py $<TARGET_FILE:towerd>)
set_tests_properties(test_risk_integration PROPERTIES LABELS integration TIMEOUT 300 COST 20)
# The dashboard: the At risk tile sorted by slack, the lead-times panel, the order page's "expected ..., promised
# ..., waiting in STAGE at WAREHOUSE" line and the view page, in Chromium (browser.cmake sets TOWER_NODE).
add_test(NAME test_browser_risk
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_risk.mjs $<TARGET_FILE:towerd>
                 --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_browser_slow})
set_tests_properties(test_browser_risk PROPERTIES LABELS "integration;ui" TIMEOUT 120 COST 15)
