# Integration tests of towerctl against `towerd serve` on a store folded offline (every command's output
# against the API and `towerd dump`, exit codes, token handling with a stub server), and against a real
# nats-server + projector for publish, dead-letter redrive, watch and working exceptions (ack, assign,
# snooze, note, resolve, reopen, exception, mine: one id and many, roles, 404/409/403 exit codes). Python 3
# standard library only; TOWER_IT_SLOW stretches the timeouts (set to 4 automatically for a sanitizer build).
# One ctest per class for the longer classes, one for the rest (tests/cases.cmake).
if(TARGET towerctl)
  tower_it_cases(test_towerctl ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_towerctl.py
                 ARGS $<TARGET_FILE:towerd> $<TARGET_FILE:towerctl>
                 CASES T02Read:15 T03Errors:15 T04Publish:15 T07Exceptions:25
                 PROPERTIES LABELS integration TIMEOUT 600 COST 15)
endif()
