# Integration tests of the read side of the HTTP API (`towerd serve`) on a store folded offline: views,
# paging and filters against `towerd dump`, orders and shipments, search, dead letters, /metrics, errors,
# static files and path traversal, answers while `towerd fold` writes, SIGTERM. No NATS needed.
# Python 3 standard library only; TOWER_IT_SCALE / TOWER_IT_SLOW as for test_projector.
add_test(NAME test_server COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_server.py $<TARGET_FILE:towerd>)
set_tests_properties(test_server PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_server PROPERTIES COST 60)
# What the dashboard offers and colours by: /api/v1/values, /api/v1/sla/rules (--sla-rules), the customer,
# reason, channel, sla and sort parameters of the views, case-insensitive warehouse/carrier/customer, 400s.
add_test(NAME test_facets COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_facets.py $<TARGET_FILE:towerd>)
set_tests_properties(test_facets PROPERTIES LABELS integration TIMEOUT 180 COST 10)
