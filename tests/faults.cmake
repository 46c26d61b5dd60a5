# Fault tests on loopback (tests/integration/test_faults.py): a 3-node JetStream cluster losing a node
# (R3 streams), nats-server restarted mid-stream, the LMDB map growing past 256 MiB, damaged store files
# (detected at open, then rebuilt), the SLA clock stepping back and forth, the disk filling up under the
# projector (RLIMIT_FSIZE; a real tmpfs too when the test may mount one). Python 3 standard library only.
add_test(NAME test_faults COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_faults.py $<TARGET_FILE:towerd>)
set_tests_properties(test_faults PROPERTIES LABELS integration TIMEOUT 900)
set_tests_properties(test_faults PROPERTIES COST 55)
