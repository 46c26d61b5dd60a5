# Integration tests of towerctl against `towerd serve` on a store folded offline (every command's output
# against the API and `towerd dump`, exit codes, token handling with a stub server), and against a real
# nats-server + projector for publish, dead-letter redrive, watch and working exceptions (ack, assign,
# snooze, note, resolve, reopen, exception, mine: one id and many, roles, 404/409/403 exit codes). Python 3
# standard library only; TOWER_IT_SLOW stretches the timeouts (set to 4 automatically for a sanitizer build).
if(TARGET towerctl)
  add_test(NAME test_towerctl COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_towerctl.py
           $<TARGET_FILE:towerd> $<TARGET_FILE:towerctl>)
  set_tests_properties(test_towerctl PROPERTIES LABELS integration TIMEOUT 600)
endif()
set_tests_properties(test_towerctl PROPERTIES COST 12)
