ct_add_test(test_views unit SOURCES unit/test_views.c LIBS store)
ct_add_test(test_store unit SOURCES unit/test_store.c LIBS store Threads::Threads)
ct_add_test(test_property unit SOURCES unit/test_property.c LIBS store sim TIMEOUT 900)
ct_add_test(test_lifecycle unit SOURCES unit/test_lifecycle.c LIBS store)
