#!/bin/bash
# Benchmark: ingest over HTTP (POST /api/v1/events, keep-alive, bodies of BODY events) next to `towerd publish`, same trace, same run, each into a fresh nats-server.
set -eu

usage() {
    cat <<'EOF'
usage: tools/bench/bench_ingest.sh [--orders N] [--seed N] [--body N] [--build DIR] [--dir DIR]

Generates a trace with `towerd gen --seed SEED --orders N` (default 1 and 20000: about 240,000
records), then, in the same run, each into a fresh nats-server -js (file store under DIR, default
/tmp) on a free loopback port:
  publish: `towerd publish --nats URL TRACE` (validate, encode, async publish, every ack awaited)
  http:    `towerd serve` and one curl process posting the same trace to POST /api/v1/events in
           NDJSON bodies of BODY events (default 5000), keep-alive: once as curl does by default
           (a body over 1 MiB is sent with "Expect: 100-continue"), once without that header
and prints the wall time, events/s and messages stored in the stream of both, and their ratio.
The trace's bad records are rejected by both paths and its duplicates dropped by JetStream, so
the stored counts must match. BUILD (default build-bench) is the CMake build with towerd.
EOF
}

orders=20000 seed=1 body=5000 build=build-bench base=/tmp
while [ $# -gt 0 ]; do
    case "$1" in
    --orders) orders=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --body) body=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --dir) base=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
towerd=$build/services/towerd/towerd
[ -x "$towerd" ] || { echo "no $towerd: build first (cmake --build $build)" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "no nats-server (tools/setup.sh)" >&2; exit 2; }

tmp=$(mktemp -d "$base/bench-ingest-XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TOWER_LOG=warn

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
wait_port() {
    for _ in $(seq 1 400); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.025
    done
    echo "nothing listens on port $1" >&2
    return 1
}
now() { date +%s.%N; }

# start_nats NAME: a fresh nats-server -js; sets nats_url, mon_port, nats_pid. setpriv: it dies with us.
start_nats() {
    local port
    port=$(free_port)
    mon_port=$(free_port)
    mkdir -p "$tmp/$1"
    printf 'listen: 127.0.0.1:%s\nhttp: 127.0.0.1:%s\njetstream { store_dir: "%s", max_memory_store: 256MB, max_file_store: 8GB }\n' \
        "$port" "$mon_port" "$tmp/$1" >"$tmp/$1.conf"
    setpriv --pdeathsig TERM nats-server -c "$tmp/$1.conf" >"$tmp/$1.log" 2>&1 &
    nats_pid=$!
    pids="$pids $nats_pid"
    wait_port "$port"
    nats_url=nats://127.0.0.1:$port
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
stored() { curl -s "http://127.0.0.1:$mon_port/jsz" | grep -o '"messages": *[0-9]*' | head -1 | grep -o '[0-9]*$'; }

echo "trace: towerd gen --seed $seed --orders $orders" >&2
"$towerd" gen --seed "$seed" --orders "$orders" -o "$tmp/trace.ndjson"
records=$(wc -l <"$tmp/trace.ndjson")

# 1. towerd publish
start_nats ns-publish
echo "publish: towerd publish --nats $nats_url ($records records)" >&2
t0=$(now)
set +e
"$towerd" publish --nats "$nats_url" "$tmp/trace.ndjson" >"$tmp/publish.out" 2>"$tmp/publish.err"
pub_rc=$?
set -e
t1=$(now)
pub_stored=$(stored)
pub_rejected=$(grep -c ': [A-Z_]*: ' "$tmp/publish.err" || true)
stop "$nats_pid"

# 2. POST /api/v1/events through towerd serve, twice: as curl sends a large body (with
# "Expect: 100-continue"), and without that header. Each into a fresh nats-server.
split -l "$body" -d -a 5 "$tmp/trace.ndjson" "$tmp/body."
bodies=$(ls "$tmp"/body.* | wc -l)
http_run() { # NAME EXTRA-CURL-CONFIG-LINE: sets http_s, http_stored, codes, connects, failed
    start_nats "ns-$1"
    http_port=$(free_port)
    setpriv --pdeathsig TERM "$towerd" serve --nats "$nats_url" --data "$tmp/data-$1" --http "127.0.0.1:$http_port" \
        --web "$tmp/no-web" >"$tmp/serve-$1.log" 2>&1 &
    srv_pid=$!
    pids="$pids $srv_pid"
    wait_port "$http_port"
    local cfg=$tmp/curl-$1.cfg first=1 f t0 t1
    : >"$cfg"
    for f in "$tmp"/body.*; do
        [ $first = 1 ] || echo next >>"$cfg"
        first=0
        {
            echo "url = \"http://127.0.0.1:$http_port/api/v1/events\""
            echo 'header = "Content-Type: application/x-ndjson"'
            [ -z "$2" ] || echo "$2"
            echo "data-binary = \"@$f\""
            echo 'output = "/dev/null"'
            echo 'write-out = "%{http_code} %{num_connects}\n"'
        } >>"$cfg"
    done
    echo "http ($1): $bodies bodies of up to $body events to POST /api/v1/events, one curl" >&2
    t0=$(now)
    curl -s -K "$cfg" >"$tmp/http-$1.codes"
    t1=$(now)
    http_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    http_stored=$(stored)
    codes=$(awk '{c[$1]++} END {for (k in c) printf "%s%s x%d", (n++ ? ", " : ""), k, c[k]}' "$tmp/http-$1.codes")
    connects=$(awk '{s += $2} END {print s}' "$tmp/http-$1.codes")
    failed=$(awk '$1 != 200 && $1 != 400 {n++} END {print n + 0}' "$tmp/http-$1.codes")
    stop "$srv_pid"
    stop "$nats_pid"
}
http_run curl-default ""
h1_s=$http_s h1_stored=$http_stored h1_codes=$codes h1_conns=$connects h1_failed=$failed
http_run no-expect 'header = "Expect:"'
h2_s=$http_s h2_stored=$http_stored h2_codes=$codes h2_conns=$connects h2_failed=$failed

pub_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
awk -v rec="$records" -v p="$pub_s" -v ps="$pub_stored" \
    -v h1="$h1_s" -v s1="$h1_stored" -v c1="$h1_codes" -v n1="$h1_conns" \
    -v h2="$h2_s" -v s2="$h2_stored" -v c2="$h2_codes" -v n2="$h2_conns" \
    -v body="$body" -v bodies="$bodies" -v prc="$pub_rc" -v prej="$pub_rejected" -v seed="$seed" -v orders="$orders" 'BEGIN {
    printf "\nbench_ingest: trace towerd gen --seed %s --orders %s: %d records\n\n", seed, orders, rec
    printf "| path                                               | wall time (s) | records/s | stored in stream | ratio to publish |\n"
    printf "|----------------------------------------------------|---------------|-----------|------------------|------------------|\n"
    printf "| towerd publish (baseline)                          | %13.2f | %9.0f | %16d | %16.2f |\n", p, rec / p, ps, 1
    printf "| POST /api/v1/events, %5d-event bodies, curl      | %13.2f | %9.0f | %16d | %16.2f |\n", body, h1, rec / h1, s1, p / h1
    printf "| the same, curl without Expect: 100-continue        | %13.2f | %9.0f | %16d | %16.2f |\n", h2, rec / h2, s2, p / h2
    printf "\ntowerd publish: exit %d, %d records rejected\n", prc, prej
    printf "http, curl: %d bodies (status %s), %d TCP connection(s)\n", bodies, c1, n1
    printf "http, no Expect: %d bodies (status %s), %d TCP connection(s)\n", bodies, c2, n2
    printf "stored counts %s\n", (ps == s1 && ps == s2) ? "match" : "DIFFER"
}'
[ "$h1_failed" = 0 ] && [ "$h2_failed" = 0 ] && [ "$pub_stored" = "$h1_stored" ] && [ "$pub_stored" = "$h2_stored" ]
