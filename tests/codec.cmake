# The codec tests: JSON and protobuf decoding, validation, times, the reader.
ct_add_test(test_codec unit SOURCES unit/test_codec.c LIBS evt)
