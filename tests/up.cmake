# The simulators and `towerd up`: the warped clock, each record's reporting system, run tags and dry runs
# (unit); the whole tower in one process against a real nats-server, its stop and resume, the simulators'
# determinism and the views their traffic fills (integration, Python 3 standard library only).
ct_add_test(test_sim unit SOURCES unit/test_sim.c LIBS sim_run PkgConfig::JANSSON m)
# The three runs of `towerd up` that last as ctests of their own, the other tests together (tests/cases.cmake).
tower_it_cases(test_up ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_up.py ARGS $<TARGET_FILE:towerd>
               CASES test_up_runs_stops_and_resumes:20 test_up_runs_the_sla_engine_and_supervisors:15
                     test_up_opens_on_history:15
               PROPERTIES LABELS integration TIMEOUT 600 COST 15)
# The simulated supervisors of `towerd up`: their decisions per exception state, determinism, valid action events.
ct_add_test(test_supervisor unit SOURCES unit/test_supervisor.c LIBS up_supervisor_decide PkgConfig::JANSSON)
