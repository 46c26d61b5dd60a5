#!/bin/sh
# The highest simulator rate the tower keeps up with: runs `towerd up` (its own nats-server,
# projector, server and simulators in one process) at each given rate for a while, samples
# /api/v1/summary every second, and reports the events published per second and the projector's lag
# (first half vs second half of the run: bounded lag stays flat, a tower that cannot keep up shows a
# lag that grows).
# usage: tools/bench/bench_up.sh [TOWERD] [SECONDS] [RATE...]   (rates in orders per real minute)
set -eu
towerd=${1:-build/services/towerd/towerd}
secs=${2:-60}
shift 2 2>/dev/null || shift $#
rates=${*:-"5000 10000 20000 40000"}
warp=36000
case "$towerd" in /*) ;; *) towerd="$(pwd)/$towerd" ;; esac
root=$(mktemp -d /tmp/tower-bench-up.XXXXXX)
trap 'rm -rf "$root"' EXIT
printf '%-8s %-10s %-12s %-14s %-14s %s\n' rate events/s applied maxlag-1sthalf maxlag-2ndhalf verdict
for rate in $rates; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    dir="$root/r$rate"
    TOWER_LOG=warn "$towerd" up --data "$dir" --http "127.0.0.1:$port" --web "$root" \
        --rate "$rate" --warp "$warp" --seed 1 >"$dir.log" 2>&1 &
    pid=$!
    python3 - "$port" "$secs" "$rate" <<'PY' || true
import json, sys, time, urllib.request
port, secs, rate = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def summary():
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/summary" % port, timeout=5) as r:
        return json.loads(r.read())
t0 = time.monotonic()
while True:
    try:
        s = summary()
        if "streamLastSeq" in s:
            break
    except OSError:
        pass
    if time.monotonic() - t0 > 60:
        sys.exit("towerd up did not start")
    time.sleep(0.2)
samples = []
start = time.monotonic()
first = s
while time.monotonic() - start < secs:
    time.sleep(1)
    s = summary()
    samples.append((time.monotonic() - start, s.get("streamLastSeq", 0), s["appliedSeq"], s.get("lag", 0)))
half = len(samples) // 2
lag1 = max(x[3] for x in samples[:half])
lag2 = max(x[3] for x in samples[half:])
rate_ev = (samples[-1][1] - first.get("streamLastSeq", 0)) / samples[-1][0]
verdict = "keeps up" if lag2 <= max(2 * lag1, 5000) and samples[-1][3] < 20000 else "falls behind"
print("%-8s %-10.0f %-12d %-14d %-14d %s" % (rate, rate_ev, samples[-1][2], lag1, lag2, verdict))
PY
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
