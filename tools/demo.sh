#!/bin/sh
# The main job: set up the machine, build, and run the whole control tower with its simulators
# (`towerd up`): nats-server, projector, HTTP server and the simulated ERP, WMS, route planner,
# carriers and finance, in one process. Ctrl-C stops everything.
# Usage: tools/demo.sh [towerd up options]   e.g. tools/demo.sh --http 127.0.0.1:9090 --warp 120
# (defaults: --data ./tower-data --http 127.0.0.1:8080 --warp 60 --rate 60; see towerd up --help)
set -eu
cd "$(dirname "$0")/.."
sh tools/setup.sh # only what building and running need (the tests' packages: tools/test.sh)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target towerd >/dev/null
exec build/services/towerd/towerd up "$@"
