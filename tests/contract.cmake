# The contract's governance (docs/contract/versioning.md): buf lint and buf breaking of proto/
# against the last released contract (proto/RELEASED, from the git history), and proof that the
# breaking check refuses a renumbered and a renamed field. buf is npm @bufbuild/buf, pinned in
# tools/buf/package-lock.json and installed by tools/buf/setup.sh (tools/test.sh runs it). No skip:
# a missing buf or release commit is a failure.
# (Not in the sanitizer build: it runs no code of ours.)
if(NOT TOWER_SANITIZE)
  add_test(NAME test_contract_buf
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/contract/check_contract.sh ${PROJECT_SOURCE_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/contract-buf)
  set_tests_properties(test_contract_buf PROPERTIES LABELS unit TIMEOUT 120)
endif()
# Per-producer conformance (docs/contract/conformance.md): the store's rows and the labels read from
# hostile bytes; the integration test feeds a bad producer through a real nats-server and a rebuild.
ct_add_test(test_conform unit SOURCES unit/test_conform.c LIBS store)
add_test(NAME test_conformance COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_conformance.py $<TARGET_FILE:towerd>)
set_tests_properties(test_conformance PROPERTIES LABELS integration TIMEOUT 300 COST 15)
# The dashboard's Contract health page (web/js/pages/contract.js) in a real browser (see browser.cmake).
find_program(TOWER_NODE node)
if(NOT TOWER_NODE)
  set(TOWER_NODE node)
endif()
if(TOWER_SANITIZE)
  set(tower_contract_slow 3)
else()
  set(tower_contract_slow 1)
endif()
add_test(NAME test_browser_contract
         COMMAND ${TOWER_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/test_contract.mjs $<TARGET_FILE:towerd>
                 --artifacts ${CMAKE_BINARY_DIR}/browser-artifacts --slow ${tower_contract_slow})
set_tests_properties(test_browser_contract PROPERTIES LABELS "integration;ui" TIMEOUT 120)
