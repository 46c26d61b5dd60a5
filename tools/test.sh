#!/bin/sh
# Sets up the machine, builds, and runs every test: the normal build, then the ASan+UBSan build.
# Usage: tools/test.sh [ctest arguments...]   e.g. tools/test.sh -L unit
set -eu
cd "$(dirname "$0")/.."
sh tools/setup.sh --test # the build's packages and the tests'
sh tools/buf/setup.sh # buf, for the contract checks (tests/contract.cmake)

jobs=$(nproc 2>/dev/null || echo 2)
# The tests are independent (each starts its own servers on free loopback ports, in its own temp dirs;
# the long integration files run as one ctest per case, tests/cases.cmake) and mostly wait on their
# servers, polling for what they wait for with timeouts stretched for the sanitizer build: ctest runs
# two per core. TOWER_TEST_JOBS=N runs N at once (1: one by one). (Three per core did not make the normal
# build's stage shorter: 246 and 262 s against 267 s, with the sanitizer build compiling beside it.)
tjobs=${TOWER_TEST_JOBS:-$((jobs * 2))}
# The sanitizer build's tests wait longer still (their timeouts are stretched, their servers slower): three
# per core there.
ajobs=${TOWER_TEST_JOBS:-$((jobs * 3))}

# Most integration tests wait on servers more than they compute: the next stage's build runs in the
# background while a stage's tests run (its output in build-*.log, shown if it fails).
background_build() { # LOG COMMAND...: start it; its pid in $bg
    log=$1
    shift
    ("$@") >"$log" 2>&1 &
    bg=$!
}
wait_build() { # PID LOG
    wait "$1" || { cat "$2" >&2; echo "test.sh: what $2 logged failed" >&2; exit 1; }
}

echo "== build (RelWithDebInfo) ==" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
background_build build-asan.log sh -c 'cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTOWER_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j'"$jobs"
asan_bg=$bg
(cd build && ctest --output-on-failure -j"$tjobs" "$@") || { kill "$asan_bg" 2>/dev/null; exit 1; }

echo "== build (ASan+UBSan) ==" >&2
wait_build "$asan_bg" build-asan.log
# The fuzz stage meanwhile, in the background: its build (clang + libFuzzer), then a short run of each
# target from its seed corpus (which replays every crash found before), one at a time (each runs for a
# fixed time: TOWER_FUZZ_SECONDS); see tests/fuzz and the README for long runs. Its output goes to
# build-fuzz.log, shown at the end.
background_build build-fuzz.log sh -c 'CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOWER_FUZZ=ON >/dev/null &&
    cmake --build build-fuzz -j'"$jobs"' --target fuzz &&
    echo "== fuzz (clang, libFuzzer) ==" && cd build-fuzz && ctest --output-on-failure -L fuzz -j1'
fuzz_bg=$bg
# The sanitizers look at the C code only: the browser tests of the dashboard's pages (label "ui": their
# checks are of what the JavaScript shows, and Chromium is most of their CPU time) run in the normal
# build; the sanitizer build runs every other test, test_browser included (the dashboard's live stream
# through a real browser), and the Python integration tests drive the same server routes.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$ajobs" -LE ui "$@") || { kill "$fuzz_bg" 2>/dev/null; exit 1; }

echo "== fuzz (clang, libFuzzer): build-fuzz.log ==" >&2
wait_build "$fuzz_bg" build-fuzz.log
sed -n '/^== fuzz/,$p' build-fuzz.log
