# The multi-node recipe (deploy/cluster/cluster.sh) on loopback: a 3-node JetStream cluster, two read
# replicas behind nginx with TLS, Alertmanager; a replica and a NATS node killed (integration).
add_test(NAME test_cluster COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_cluster.py $<TARGET_FILE:towerd>)
set_tests_properties(test_cluster PROPERTIES LABELS integration TIMEOUT 600 COST 30)
