add_test(NAME test_ingest COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ingest.py $<TARGET_FILE:towerd>)
set_tests_properties(test_ingest PROPERTIES LABELS integration TIMEOUT 600)
set_tests_properties(test_ingest PROPERTIES COST 30)
