# The systemd units and the example configuration of deploy/: systemd-analyze verify and an offline
# security review of each unit, and each role started as its unit's ExecStart says with the example
# towerd.conf (paths moved to a temporary directory), then stopped by SIGTERM as systemd stops it.
add_test(NAME test_deploy COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_deploy.py $<TARGET_FILE:towerd>)
set_tests_properties(test_deploy PROPERTIES LABELS integration TIMEOUT 300 COST 10 SKIP_RETURN_CODE 77)
# Upgrades: the projector rebuilds a store of another format from the stream by itself (mdb_load sets a
# store's format version back, as an older build left it).
add_test(NAME test_upgrade COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_upgrade.py $<TARGET_FILE:towerd>)
set_tests_properties(test_upgrade PROPERTIES LABELS integration TIMEOUT 300 COST 10)
