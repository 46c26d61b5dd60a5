#!/bin/sh
# The main job until `towerd up` exists: set up, build, generate a realistic trace,
# fold it into a store offline and print the views summary.
# Usage: tools/demo.sh [DATA_DIR]   (default ./tower-data)
set -eu
cd "$(dirname "$0")/.."
sh tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target towerd >/dev/null
data=${1:-./tower-data}
trace="$data.trace.ndjson"
build/services/towerd/towerd gen --seed 42 --orders 2000 -o "$trace"
build/services/towerd/towerd fold --data "$data" "$trace"
build/services/towerd/towerd dump --data "$data" --summary
echo
echo "Every item: build/services/towerd/towerd dump --data $data"
