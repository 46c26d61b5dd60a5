# A rebuild during live ingestion never shows the past; an idle projector follows a swap (real nats-server,
# projector, serve and towerd rebuild).
add_test(NAME test_rebuild_live COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_rebuild_live.py $<TARGET_FILE:towerd>)
set_tests_properties(test_rebuild_live PROPERTIES LABELS integration TIMEOUT 600 COST 30)
