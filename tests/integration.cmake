# Integration tests of the projector against a real nats-server (JetStream): kill -9 of the projector
# and of nats-server, poison messages, rebuild, stream reset, publish, change notices, configuration.
# Python 3 standard library only. TOWER_IT_SCALE sizes the traces (default 1.0); TOWER_IT_SLOW
# stretches the timeouts (set to 4 automatically for a sanitizer build).
add_test(NAME test_projector COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_projector.py $<TARGET_FILE:towerd>)
set_tests_properties(test_projector PROPERTIES LABELS integration TIMEOUT 900)
set_tests_properties(test_projector PROPERTIES COST 45)
# The rebuild's progress line (projector_progress_format), without a server.
ct_add_test(test_projector_progress unit SOURCES unit/test_projector_progress.c LIBS projector)
