# Integration tests of the exception lifecycle API: real nats-server, projector and `towerd serve` with tokens.
# The rebuild and kill -9 class as a ctest of its own, the API's tests together (tests/cases.cmake).
tower_it_cases(test_exceptions ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_exceptions.py ARGS $<TARGET_FILE:towerd>
               CASES T2Durability:20 PROPERTIES LABELS integration TIMEOUT 600 COST 25)
