#!/bin/sh
# Sets up the machine, builds, and runs every test: the normal build, then the ASan+UBSan build.
# Usage: tools/test.sh [ctest arguments...]   e.g. tools/test.sh -L unit
set -eu
cd "$(dirname "$0")/.."
sh tools/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (RelWithDebInfo) ==" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure "$@")

echo "== build (ASan+UBSan) ==" >&2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTOWER_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure "$@")
