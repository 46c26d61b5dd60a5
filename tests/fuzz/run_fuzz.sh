#!/bin/sh
# A short libFuzzer run of one target (the `fuzz` ctest): every seed is replayed first, then new inputs
# are searched for SECONDS. New inputs and crash artifacts go under WORK_DIR (the build tree), never
# into the seed corpus in the source tree.
# Usage: run_fuzz.sh TARGET SEED_DIR WORK_DIR SECONDS [DICT]
set -eu
bin=$1 seeds=$2 work=$3 secs=$4 dict=${5:-}
mkdir -p "$work/corpus" "$work/artifacts"
set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/"
[ -n "$dict" ] && set -- "$@" -dict="$dict"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
echo "run_fuzz: $bin $* $work/corpus $seeds" >&2
exec "$bin" "$@" "$work/corpus" "$seeds"
