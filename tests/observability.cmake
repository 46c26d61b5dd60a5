# Observability: `--version`, the build, process, HTTP, store, projector and SLA families of /metrics, JSON
# log lines. test_obs (unit): JSON log lines, histograms, /proc parsing, the build's identity.
# test_observability (integration, tests/integration/test_observability.py): the versions against git,
# /metrics of `towerd serve` and of `towerd up` (projector and SLA engine in process, a stand-in
# Alertmanager that fails then answers), JSON logs line by line. Python 3 standard library only.
ct_add_test(test_obs unit SOURCES unit/test_obs.c LIBS ct PkgConfig::JANSSON)
target_compile_definitions(test_obs PRIVATE TOWER_PROJECT_VERSION="${PROJECT_VERSION}")
add_test(NAME test_observability COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_observability.py
         $<TARGET_FILE:towerd> $<TARGET_FILE:towerctl>)
set_tests_properties(test_observability PROPERTIES LABELS integration TIMEOUT 600 COST 20
                     ENVIRONMENT "TOWER_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
