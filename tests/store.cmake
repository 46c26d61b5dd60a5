ct_add_test(test_views unit SOURCES unit/test_views.c LIBS store)
ct_add_test(test_store unit SOURCES unit/test_store.c LIBS store Threads::Threads)
ct_add_test(test_property unit SOURCES unit/test_property.c LIBS store sim TIMEOUT 900)
ct_add_test(test_lifecycle unit SOURCES unit/test_lifecycle.c LIBS store)
ct_add_test(test_store_trend unit SOURCES unit/test_store_trend.c LIBS store sim)
set_tests_properties(test_property test_store_trend PROPERTIES COST 30) # CPU-heavy: started first (sim.cmake)
# The trend kept in the store, through the API: the same on two replicas of one stream whatever their commit
# batching, after a server restart and after a rebuild; a far-future event moves its clock by an hour at most.
add_test(NAME test_trend COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_trend.py $<TARGET_FILE:towerd>)
set_tests_properties(test_trend PROPERTIES LABELS integration TIMEOUT 180 COST 10)
# towerd rebuild of a stream over more than 48 hours skips closing the trend rows it drops anyway, with the same
# trend and views as the live projector; a wrong guess of where the trend ends makes it replay again without.
add_test(NAME test_rebuild_trend COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_rebuild_trend.py $<TARGET_FILE:towerd>)
set_tests_properties(test_rebuild_trend PROPERTIES LABELS integration TIMEOUT 180 COST 10)
