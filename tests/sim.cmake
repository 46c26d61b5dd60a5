# Tests of the seeded trace generator (services/sim).
ct_add_test(test_trace unit SOURCES unit/test_trace.c LIBS sim)
# Its bounded-memory case generates 200,000 orders: 83 s under the sanitizers, which look for memory errors,
# not for scale; 50,000 there. The CPU-heavy unit tests carry a COST so that a fresh tree starts them first.
set_tests_properties(test_trace PROPERTIES COST 40)
if(TOWER_SANITIZE)
  set_property(TEST test_trace APPEND PROPERTY ENVIRONMENT "TEST_TRACE_ORDERS=50000")
endif()
