# Integration tests of the projector against a real nats-server (JetStream): kill -9 of the projector
# and of nats-server, poison messages, rebuild, stream reset, publish, change notices, configuration.
# Python 3 standard library only. TOWER_IT_SCALE sizes the traces (default 1.0); TOWER_IT_SLOW
# stretches the timeouts (set to 4 automatically for a sanitizer build).
# One ctest for each of the longer classes, one for the rest (tests/cases.cmake).
tower_it_cases(test_projector ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_projector.py ARGS $<TARGET_FILE:towerd>
               CASES T1KillProjector:15 T2KillNats:20 T4Rebuild:15 T5RemovedEvents:10
               PROPERTIES LABELS integration TIMEOUT 900 COST 25)
# The rebuild's progress line (projector_progress_format), without a server.
ct_add_test(test_projector_progress unit SOURCES unit/test_projector_progress.c LIBS projector)
