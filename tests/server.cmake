# Integration tests of the read side of the HTTP API (`towerd serve`) on a store folded offline: views,
# paging and filters against `towerd dump`, orders and shipments, search, dead letters, /metrics, errors,
# static files and path traversal, answers while `towerd fold` writes, SIGTERM. No NATS needed.
# Python 3 standard library only; TOWER_IT_SCALE / TOWER_IT_SLOW as for test_projector.
# The map-growth test (300 MB through the store, most of the file's time) and the reads while fold
# writes (most of the rest under ASan) as ctests of their own, the others together (tests/cases.cmake).
tower_it_cases(test_server ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_server.py ARGS $<TARGET_FILE:towerd>
               CASES test_18b_map_growth_under_concurrent_reads:90 test_18_answers_while_fold_writes:25
               PROPERTIES LABELS integration TIMEOUT 600 COST 65)
# What the dashboard offers and colours by: /api/v1/values, /api/v1/sla/rules (--sla-rules), the customer,
# reason, channel, sla and sort parameters of the views, case-insensitive warehouse/carrier/customer, 400s.
add_test(NAME test_facets COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_facets.py $<TARGET_FILE:towerd>)
set_tests_properties(test_facets PROPERTIES LABELS integration TIMEOUT 180 COST 10)
