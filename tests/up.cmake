# The simulators and `towerd up`: the warped clock, each record's reporting system, run tags and dry runs
# (unit); the whole tower in one process against a real nats-server, its stop and resume, the simulators'
# determinism and the views their traffic fills (integration, Python 3 standard library only).
ct_add_test(test_sim unit SOURCES unit/test_sim.c LIBS sim_run PkgConfig::JANSSON m)
add_test(NAME test_up COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_up.py $<TARGET_FILE:towerd>)
set_tests_properties(test_up PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_up PROPERTIES COST 35)
# The simulated supervisors of `towerd up`: their decisions per exception state, determinism, valid action events.
ct_add_test(test_supervisor unit SOURCES unit/test_supervisor.c LIBS up_supervisor_decide PkgConfig::JANSSON)
