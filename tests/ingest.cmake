# The NATS outage test as a ctest of its own (tests/cases.cmake).
tower_it_cases(test_ingest ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ingest.py ARGS $<TARGET_FILE:towerd>
               CASES test_nothing_acknowledged_without_jetstream:25 PROPERTIES LABELS integration TIMEOUT 600 COST 10)
