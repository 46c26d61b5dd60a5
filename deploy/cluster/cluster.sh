#!/bin/sh
# The multi-node recipe of the tower, played on one machine's loopback addresses (README.md in this
# directory says how each piece maps to a host of its own):
#   - a 3-node NATS JetStream cluster (the streams kept on all three: --stream-replicas 3), with a user
#     and password;
#   - two read replicas, each a `towerd projector` folding the stream into its own store and a
#     `towerd serve` answering from it, plus a `towerd sla` on each (both raise the same breaches with the
#     same event ids: the stream keeps one; Alertmanager merges their alerts);
#   - nginx terminating TLS in front of both replicas (REST, dashboard and the live stream's websocket);
#   - Alertmanager, which the SLA engines post to (when prometheus-alertmanager is installed).
#
# Usage: deploy/cluster/cluster.sh COMMAND DIR [NAME]
#   up DIR            render the configuration under DIR and start everything (DIR/cluster.env says
#                     where each piece listens; DIR/secrets holds the NATS password and API tokens)
#   down DIR          stop everything (SIGTERM, then SIGKILL after 15 s)
#   status DIR        each piece: running or not
#   kill DIR NAME     kill -9 one piece: nats-1..3, projector-1..2, serve-1..2, sla-1..2, nginx, alertmanager
#   start DIR NAME    start one piece again (after kill)
# Environment: TOWERD (the towerd binary; default: towerd on PATH), CLUSTER_BASE_PORT (default 14200:
# the pieces take ports BASE..BASE+60), CLUSTER_WEB (the dashboard's files; default: ../../web from here).
# Exit codes: 0 done; 1 a piece did not start (its log is shown); 2 usage.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
[ $# -ge 2 ] || usage
cmd=$1
dir=$2
name=${3:-}
if [ "$cmd" = up ]; then mkdir -p "$dir"; fi
[ -d "$dir" ] || { echo "cluster: no directory $dir" >&2; exit 2; }
dir=$(cd "$dir" && pwd)

TOWERD=${TOWERD:-$(command -v towerd || true)}
BASE=${CLUSTER_BASE_PORT:-14200}
WEB=${CLUSTER_WEB:-$here/../../web}
ALERTMANAGER=$(command -v prometheus-alertmanager || command -v alertmanager || true)
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)

say() { echo "cluster: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# ---- ports --------------------------------------------------------------------------------------
nats_port() { echo $((BASE + $1 - 1)); }          # client ports BASE..BASE+2
route_port() { echo $((BASE + 10 + $1 - 1)); }    # cluster routes
mon_port() { echo $((BASE + 20 + $1 - 1)); }      # monitoring (healthz)
serve_port() { echo $((BASE + 30 + $1 - 1)); }    # replicas' HTTP
HTTPS_PORT=$((BASE + 40))
AM_PORT=$((BASE + 50))
nats_urls() { echo "nats://127.0.0.1:$(nats_port 1),nats://127.0.0.1:$(nats_port 2),nats://127.0.0.1:$(nats_port 3)"; }

# ---- processes ----------------------------------------------------------------------------------
pidfile() { echo "$dir/run/$1.pid"; }
running() {
    f=$(pidfile "$1")
    [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}
launch() { # NAME COMMAND...: start in the background, its output in DIR/log/NAME.log
    n=$1
    shift
    running "$n" && return 0
    echo "==== $(date -u +%FT%TZ) start: $*" >>"$dir/log/$n.log"
    "$@" >>"$dir/log/$n.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "$n")"
}
wait_http() { # NAME URL: until URL answers 200 (30 s), else show NAME's log and fail
    i=0
    while [ $i -lt 300 ]; do
        curl -fsk -o /dev/null --max-time 2 "$2" 2>/dev/null && return 0
        running "$1" || break
        sleep 0.1
        i=$((i + 1))
    done
    tail -n 30 "$dir/log/$1.log" >&2 || true
    die "$1 did not answer $2"
}

wait_stream() { # until the events stream exists on the cluster (60 s), else show the projectors' logs
    i=0
    while [ $i -lt 600 ]; do
        for n in 1 2 3; do
            curl -fs --max-time 2 "http://127.0.0.1:$(mon_port "$n")/jsz?streams=1" 2>/dev/null |
                grep -q '"name": *"TOWER_EVENTS"' && return 0
        done
        sleep 0.1
        i=$((i + 1))
    done
    tail -n 20 "$dir/log/projector-1.log" "$dir/log/projector-2.log" >&2 || true
    die "the projectors did not create the TOWER_EVENTS stream"
}

# ---- configuration ------------------------------------------------------------------------------
render() {
    mkdir -p "$dir/run" "$dir/log" "$dir/secrets" "$dir/tls"
    chmod 700 "$dir/secrets"
    [ -s "$dir/secrets/nats.password" ] || od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/secrets/nats.password"
    pw=$(cat "$dir/secrets/nats.password")
    for i in 1 2 3; do
        routes=""
        for j in 1 2 3; do
            [ "$j" = "$i" ] || routes="$routes nats-route://tower:$pw@127.0.0.1:$(route_port "$j")"
        done
        mkdir -p "$dir/nats-$i"
        umask 077
        cat >"$dir/nats-$i/nats.conf" <<EOF
# node $i of the tower's JetStream cluster (rendered by cluster.sh)
server_name: tower-n$i
listen: 127.0.0.1:$(nats_port "$i")
http: 127.0.0.1:$(mon_port "$i")
jetstream { store_dir: "$dir/nats-$i/js" }
authorization { user: tower, password: "$pw" }
cluster {
  name: tower
  listen: 127.0.0.1:$(route_port "$i")
  authorization { user: tower, password: "$pw" }
  routes: [$(echo "$routes" | sed 's/^ //; s/ /, /g')]
}
EOF
        umask 022
    done
    # API tokens: an operator for people, an ingest token for the ERP (the file keeps only hashes).
    if [ ! -s "$dir/secrets/tokens" ]; then
        "$TOWERD" token ops operator >"$dir/secrets/ops.token" 2>>"$dir/secrets/tokens"
        "$TOWERD" token erp ingest >"$dir/secrets/erp.token" 2>>"$dir/secrets/tokens"
        chmod 600 "$dir/secrets/"*
    fi
    for r in 1 2; do
        mkdir -p "$dir/replica-$r"
        umask 077
        cat >"$dir/replica-$r/towerd.conf" <<EOF
# replica $r: projector, serve and sla read this file (towerd COMMAND --config FILE)
[nats]
url = $(nats_urls)
user = tower
password = $pw

[stream]
replicas = 3

[store]
data = $dir/replica-$r/data

[server]
http = 127.0.0.1:$(serve_port "$r")
tokens = $dir/secrets/tokens
web = $WEB

[sla]
$( [ -n "$ALERTMANAGER" ] && echo "alertmanager = http://127.0.0.1:$AM_PORT" )
dashboard_url = https://127.0.0.1:$HTTPS_PORT
EOF
        umask 022
    done
    if [ ! -s "$dir/tls/tower.crt" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
            -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
            -keyout "$dir/tls/tower.key" -out "$dir/tls/tower.crt" >/dev/null 2>&1 || die "openssl could not make a certificate"
        chmod 600 "$dir/tls/tower.key"
    fi
    mkdir -p "$dir/nginx"
    sed -e "s#@DIR@#$dir/nginx#g" -e "s#@HTTPS@#$HTTPS_PORT#g" -e "s#@TLS@#$dir/tls#g" \
        -e "s#@SERVE1@#$(serve_port 1)#g" -e "s#@SERVE2@#$(serve_port 2)#g" "$here/nginx.conf" >"$dir/nginx/nginx.conf"
    mkdir -p "$dir/alertmanager"
    cp "$here/alertmanager.yml" "$dir/alertmanager/alertmanager.yml"
    cat >"$dir/cluster.env" <<EOF
NATS_URLS=$(nats_urls)
NATS_MONITOR=$(mon_port 1),$(mon_port 2),$(mon_port 3)
SERVE_1=http://127.0.0.1:$(serve_port 1)
SERVE_2=http://127.0.0.1:$(serve_port 2)
HTTPS=https://127.0.0.1:$HTTPS_PORT
ALERTMANAGER=$( [ -n "$ALERTMANAGER" ] && echo "http://127.0.0.1:$AM_PORT" )
EOF
}

start_one() { # NAME
    case $1 in
    nats-[123])
        i=${1#nats-}
        launch "$1" nats-server -c "$dir/nats-$i/nats.conf"
        ;;
    projector-[12]) launch "$1" "$TOWERD" projector --config "$dir/replica-${1#projector-}/towerd.conf" ;;
    serve-[12])
        launch "$1" "$TOWERD" serve --config "$dir/replica-${1#serve-}/towerd.conf"
        wait_http "$1" "http://127.0.0.1:$(serve_port "${1#serve-}")/healthz"
        ;;
    sla-[12]) launch "$1" "$TOWERD" sla --config "$dir/replica-${1#sla-}/towerd.conf" ;;
    nginx)
        launch nginx "$NGINX" -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
        wait_http nginx "https://127.0.0.1:$HTTPS_PORT/healthz"
        ;;
    alertmanager)
        [ -n "$ALERTMANAGER" ] || return 0
        launch alertmanager "$ALERTMANAGER" --config.file="$dir/alertmanager/alertmanager.yml" \
            --storage.path="$dir/alertmanager/data" --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
        wait_http alertmanager "http://127.0.0.1:$AM_PORT/-/ready"
        ;;
    *)
        say "no piece named '$1'"
        exit 2
        ;;
    esac
}

PIECES="nats-1 nats-2 nats-3 alertmanager projector-1 projector-2 serve-1 serve-2 sla-1 sla-2 nginx"

up() {
    [ -n "$TOWERD" ] && [ -x "$TOWERD" ] || die "no towerd binary (set TOWERD)"
    command -v nats-server >/dev/null || die "nats-server is not installed"
    [ -n "$NGINX" ] || die "nginx is not installed"
    command -v openssl >/dev/null || die "openssl is not installed"
    render
    for i in 1 2 3; do start_one "nats-$i"; done
    # JetStream is usable once the nodes elected a meta leader: every node's healthz says so.
    for i in 1 2 3; do wait_http "nats-$i" "http://127.0.0.1:$(mon_port "$i")/healthz"; done
    start_one alertmanager
    for r in 1 2; do start_one "projector-$r"; done
    # The projectors create the streams (3 replicas): ingest before that would find no stream.
    wait_stream
    for r in 1 2; do start_one "serve-$r"; done
    for r in 1 2; do start_one "sla-$r"; done
    start_one nginx
    say "up: $(tr '\n' ' ' <"$dir/cluster.env")"
    say "API tokens: $dir/secrets/ops.token (operator), $dir/secrets/erp.token (ingest)"
}

down() {
    for n in $PIECES; do
        running "$n" && kill -TERM "$(cat "$(pidfile "$n")")" 2>/dev/null || true
    done
    i=0
    while [ $i -lt 150 ]; do
        alive=""
        for n in $PIECES; do running "$n" && alive="$alive $n"; done
        [ -z "$alive" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    for n in $PIECES; do
        running "$n" && kill -KILL "$(cat "$(pidfile "$n")")" 2>/dev/null || true
        rm -f "$(pidfile "$n")"
    done
    say "down"
}

case $cmd in
up) up ;;
down) down ;;
status)
    for n in $PIECES; do
        if running "$n"; then echo "$n running (pid $(cat "$(pidfile "$n")"))"; else echo "$n stopped"; fi
    done
    ;;
kill)
    [ -n "$name" ] || usage
    running "$name" || die "$name is not running"
    kill -KILL "$(cat "$(pidfile "$name")")"
    rm -f "$(pidfile "$name")"
    ;;
start)
    [ -n "$name" ] || usage
    start_one "$name"
    ;;
*) usage ;;
esac
