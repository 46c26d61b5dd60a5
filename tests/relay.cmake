# The outbound relay's pure parts: the relay file, filters, Standard Webhooks signatures, backoff,
# Retry-After and the circuit breaker (unit).
ct_add_test(test_relay unit SOURCES unit/test_relay.c LIBS relay)
