# Tests of the seeded trace generator (services/sim).
ct_add_test(test_trace unit SOURCES unit/test_trace.c LIBS sim)
