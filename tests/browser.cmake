# Real-browser tests of the dashboard (web/): Debian's Chromium driven by npm playwright-core
# (tests/browser/node_modules, installed by tools/setup.sh with `npm ci`) against a real nats-server,
# `towerd projector` and `towerd serve --web web/` fed a generated trace. test_browser_exceptions works
# exceptions (docs/exceptions.md) with operator and viewer tokens. Screenshots of the overview and
# of an order page go to <build>/browser-artifacts. No skip: a missing node, Chromium or playwright-core
# is a failure (setup installs them). TOWER_IT_SLOW stretches the waits for the sanitizer build. What the
# files share (command line, checks and watchdog, Chromium, nats-server + projector + serve, tokens) is in
# browser/harness.mjs.
find_program(TOWER_NODE node)
if(NOT TOWER_NODE)
  set(TOWER_NODE node)
endif()
if(TOWER_SANITIZE)
  set(tower_browser_slow 3)
else()
  set(tower_browser_slow 1)
endif()
add_test(NAME test_browser
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_dashboard.mjs $<TARGET_FILE:towerd>
                 --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_browser_slow})
set_tests_properties(test_browser PROPERTIES LABELS integration TIMEOUT 240 COST 45)
add_test(NAME test_browser_exceptions
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_exceptions.mjs $<TARGET_FILE:towerd>
                 --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_browser_slow})
set_tests_properties(test_browser_exceptions PROPERTIES LABELS "integration;ui" TIMEOUT 240 COST 50)
add_test(NAME test_browser_integrations
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_integrations.mjs $<TARGET_FILE:towerd>
                 --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_browser_slow})
set_tests_properties(test_browser_integrations PROPERTIES LABELS "integration;ui" TIMEOUT 120)
add_test(NAME test_browser_runbooks
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_runbooks.mjs $<TARGET_FILE:towerd>
                 --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_browser_slow})
set_tests_properties(test_browser_runbooks PROPERTIES LABELS "integration;ui" TIMEOUT 120)
# What supervisors tripped over (web/README.md "Filters, sorting and times"): SLA colours from the served
# rules (--sla-rules on the projector and the server), filter values and case, sorting, captions, clock,
# local time, empty pages.
add_test(NAME test_browser_usability
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_usability.mjs $<TARGET_FILE:towerd>
                 --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_browser_slow})
set_tests_properties(test_browser_usability PROPERTIES LABELS "integration;ui" TIMEOUT 150 COST 40)
