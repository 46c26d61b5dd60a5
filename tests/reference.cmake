# Reference data (contract v1.2, docs/contract/reference.md): the reference table and the UNKNOWN_CODE anomalies
# in any arrival order (unit and property), GET /api/v1/reference with a real nats-server, projector and serve,
# and the dashboard's Reference data page with warehouse-local times (browser; after browser.cmake's TOWER_NODE).
ct_add_test(test_reference_fold unit SOURCES unit/test_reference_fold.c LIBS store sim)
add_test(NAME test_reference COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_reference.py $<TARGET_FILE:towerd>)
set_tests_properties(test_reference PROPERTIES LABELS integration TIMEOUT 180 COST 10)
if(DEFINED tower_browser_slow)
  add_test(NAME test_browser_reference
           COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_reference.mjs $<TARGET_FILE:towerd>
                   --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_browser_slow})
  set_tests_properties(test_browser_reference PROPERTIES LABELS "integration;ui" TIMEOUT 120)
endif()
