# Integration tests of the live stream (websocket), API tokens and roles, and dead-letter redrive:
# real nats-server, projector and `towerd serve`, a websocket client written in the test (stdlib only).
add_test(NAME test_stream COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_stream.py $<TARGET_FILE:towerd>)
set_tests_properties(test_stream PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_stream PROPERTIES COST 45)
