# Predicted delivery risk (docs/risk.md): lead-time percentiles, window expiry, fallback, carrier vs
# warehouse, hysteresis, and the order-independence property of the statistics (unit).
ct_add_test(test_risk unit SOURCES unit/test_risk.c LIBS risk)
