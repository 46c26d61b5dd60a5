# Security tests of `towerd serve` (roles, static-file escapes, request, body and websocket limits,
# slow clients, websocket compression, secrets in logs, the nginx TLS front of deploy/nginx): a real
# server with a tokens file, a real nats-server with a password, nginx when installed.
add_test(NAME test_security COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_security.py $<TARGET_FILE:towerd>)
set_tests_properties(test_security PROPERTIES LABELS integration TIMEOUT 600)
# The API's route and query-string parsing (services/server/src/query.c), pure.
ct_add_test(test_query unit SOURCES unit/test_query.c LIBS server)
target_include_directories(test_query PRIVATE ${PROJECT_SOURCE_DIR}/services/server/src)
set_tests_properties(test_security PROPERTIES COST 30)
