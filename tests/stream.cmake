# Integration tests of the live stream (websocket), API tokens and roles, and dead-letter redrive:
# real nats-server, projector and `towerd serve`, a websocket client written in the test (stdlib only).
# One ctest per test class (tests/cases.cmake): test_stream.T2SlowClient, ..., test_stream.rest.
tower_it_cases(test_stream ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_stream.py ARGS $<TARGET_FILE:towerd>
               CASES T1SnapshotAndDeltas:10 T2SlowClient:20 T5Coalescing:15
               PROPERTIES LABELS integration TIMEOUT 600 COST 10)
# The same protocol checks on the libwebsockets listener (--stream-listen), and its own: hostile frames,
# Origin/Host, a stuck client closed while others get every delta, threads that do not grow with clients.
tower_it_cases(test_stream_lws ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_stream_lws.py ARGS $<TARGET_FILE:towerd>
               CASES L1SnapshotAndDeltas:10 L2SlowClient:20 L5Coalescing:15 L6Listener:15
               PROPERTIES LABELS integration TIMEOUT 600 COST 10)
# The dashboard in Chromium on the listener: it learns the stream's port from /api/v1/me and connects there
# (as tests/browser.cmake's tests, with playwright-core from tests/browser/node_modules).
if(NOT TOWER_NODE)
  set(TOWER_NODE node)
endif()
add_test(NAME test_browser_stream_lws
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_stream_lws.mjs $<TARGET_FILE:towerd>
                 --slow $<IF:$<BOOL:${TOWER_SANITIZE}>,3,1>)
set_tests_properties(test_browser_stream_lws PROPERTIES LABELS "integration;ui" TIMEOUT 120 COST 10)
