#!/bin/sh
# Sets up the machine, builds, and runs every test: the normal build, then the ASan+UBSan build.
# Usage: tools/test.sh [ctest arguments...]   e.g. tools/test.sh -L unit
set -eu
cd "$(dirname "$0")/.."
sh tools/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)
# The test files are independent (each starts its own servers on free loopback ports, in its own temp
# dirs): ctest runs as many at once as there are cores. TOWER_TEST_JOBS=1 runs them one by one.
tjobs=${TOWER_TEST_JOBS:-$jobs}

echo "== build (RelWithDebInfo) ==" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$tjobs" "$@")

echo "== build (ASan+UBSan) ==" >&2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTOWER_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$tjobs" "$@")

# The fuzz stage: clang + libFuzzer (ASan+UBSan), a short run of each target from its seed corpus
# (which replays every crash found before); see tests/fuzz and the README for long runs.
echo "== fuzz (clang, libFuzzer) ==" >&2
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOWER_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz
(cd build-fuzz && ctest --output-on-failure -L fuzz -j"$jobs")
