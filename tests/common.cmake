# The common module's tests: configuration from flags, environment, INI file and defaults; durations, sizes.
ct_add_test(test_config unit SOURCES unit/test_config.c LIBS ct)
