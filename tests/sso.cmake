# Who calls and what a caller may do: the pure parsing of trusted proxies, group roles, tokens-file
# lines with policies and the ingest token bucket (services/server/src/access.c); and, against a real
# server and nats-server, SSO through a trusted proxy (spoofed headers refused, groups to roles, the
# user recorded as the actor of writes) and the per-token ingest policy (rate limit, source systems).
ct_add_test(test_access unit SOURCES unit/test_access.c LIBS server)
target_include_directories(test_access PRIVATE ${PROJECT_SOURCE_DIR}/services/server/src)
add_test(NAME test_sso COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sso.py $<TARGET_FILE:towerd>)
set_tests_properties(test_sso PROPERTIES LABELS integration TIMEOUT 300 COST 15)
