# Fault tests on loopback (tests/integration/test_faults.py): a 3-node JetStream cluster losing a node
# (R3 streams), nats-server restarted mid-stream, the LMDB map growing past 256 MiB, damaged store files
# (detected at open, then rebuilt), the SLA clock stepping back and forth, the disk filling up under the
# projector (RLIMIT_FSIZE; a real tmpfs too when the test may mount one). Python 3 standard library only.
# The cluster kill and the map growth as ctests of their own, the other classes together (tests/cases.cmake).
tower_it_cases(test_faults ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_faults.py ARGS $<TARGET_FILE:towerd>
               CASES T1ClusterNodeLoss:30 T3MapGrowth:30
               PROPERTIES LABELS integration TIMEOUT 900 COST 20)
