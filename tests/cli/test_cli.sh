#!/bin/sh
# CLI tests of towerd gen/fold/dump/token/status: exit codes, --help, error reports, dump reading while fold
# writes, the tokens-file recipe, token --hash of long tokens, and status without NATS.
# Usage: test_cli.sh TOWERD
set -u
TOWERD=$1
tmp=$(mktemp -d /tmp/tower-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then passes=$((passes + 1)); else echo "FAIL: $1: expected '$2', got '$3'"; fails=$((fails + 1)); fi
}

for cmd in fold dump gen; do
    "$TOWERD" $cmd --help >"$tmp/help" 2>&1; check "$cmd --help exit" 0 $?
    grep -q "usage: towerd $cmd" "$tmp/help"; check "$cmd --help text" 0 $?
    "$TOWERD" $cmd --no-such-flag >/dev/null 2>&1; check "$cmd bad flag exit" 2 $?
done
"$TOWERD" --help >/dev/null; check "towerd --help" 0 $?
"$TOWERD" frobnicate >/dev/null 2>&1; check "unknown command" 2 $?

# gen is deterministic per seed.
"$TOWERD" gen --seed 7 --orders 300 -o "$tmp/a.ndjson"; check "gen exit" 0 $?
"$TOWERD" gen --seed 7 --orders 300 >"$tmp/b.ndjson"
cmp -s "$tmp/a.ndjson" "$tmp/b.ndjson"; check "gen deterministic" 0 $?

# A bad line is reported with file, line, code and field; good lines still go in.
printf '%s\n' \
  '{"eventId":"e1","occurredAt":"2026-11-27T08:00:00Z","source":{"system":"erp"},"orderId":"O1","orderApproved":{"warehouseId":"dc-1"}}' \
  '{"eventId":"e2","occurredAt":"2026-11-27T08:00:00Z","source":{"system":"erp"},"orderId":"O 2","orderApproved":{}}' \
  '{"eventId":"e3","occurredAt":"2026-11-27T09:00:00Z","source":{"system":"erp"},"orderId":"O3","orderApproved":{}}' >"$tmp/small.ndjson"
"$TOWERD" fold --data "$tmp/s1" "$tmp/small.ndjson" 2>"$tmp/err"; check "fold with a bad line exit" 0 $?
grep -q "small.ndjson:2: INVALID_ID: field \"orderId\"" "$tmp/err"; check "bad line reported" 0 $?
grep -q "2 accepted, 0 duplicates, 1 dead-lettered" "$tmp/err"; check "fold summary" 0 $?
"$TOWERD" fold --strict --data "$tmp/s2" "$tmp/small.ndjson" 2>/dev/null; check "fold --strict exit" 3 $?
n=$("$TOWERD" dump --data "$tmp/s1" | grep -c '"code":"INVALID_ID"')
check "dead letter in dump" 1 "$n"
"$TOWERD" dump --data "$tmp/s1" --summary | grep -q "^awaiting_release  *2 "; check "summary count" 0 $?
"$TOWERD" fold --data "$tmp/s1" "$tmp/missing.ndjson" 2>/dev/null; check "fold missing file" 1 $?
"$TOWERD" dump --data "$tmp/nothing-here" >/dev/null 2>&1; check "dump without store" 1 $?

# dump reads a consistent snapshot while another process folds into the same store.
"$TOWERD" gen --seed 3 --orders 4000 -o "$tmp/big.ndjson"
"$TOWERD" fold --quiet --data "$tmp/s3" "$tmp/small.ndjson" 2>/dev/null
"$TOWERD" fold --quiet --data "$tmp/s3" "$tmp/big.ndjson" 2>/dev/null &
folder=$!
ok=0
i=0
while [ $i -lt 20 ]; do
    "$TOWERD" dump --data "$tmp/s3" >"$tmp/d.json" 2>"$tmp/derr" || ok=1
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "blocked" in d' "$tmp/d.json" || ok=1
    i=$((i + 1))
done
wait $folder; check "fold while dumping exit" 0 $?
check "dump while folding" 0 $ok

# --batch changes how many events share a transaction, never the views.
"$TOWERD" gen --seed 5 --orders 60 -o "$tmp/batch.ndjson"
"$TOWERD" fold --quiet --data "$tmp/b1" "$tmp/batch.ndjson" 2>/dev/null
"$TOWERD" fold --quiet --batch 7 --data "$tmp/b7" "$tmp/batch.ndjson" 2>/dev/null; check "fold --batch 7 exit" 0 $?
"$TOWERD" dump --stable --data "$tmp/b1" >"$tmp/b1.json"
"$TOWERD" dump --stable --data "$tmp/b7" >"$tmp/b7.json"
cmp -s "$tmp/b1.json" "$tmp/b7.json"; check "fold --batch 7 folds the same views" 0 $?
"$TOWERD" fold --batch 0 --data "$tmp/b0" "$tmp/batch.ndjson" 2>/dev/null; check "fold --batch 0 is a usage error" 2 $?

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# towerd token: the README's recipe `2>>tokens` appends exactly the file line (stderr is no terminal here),
# and the server loads the file and takes the token.
"$TOWERD" token a viewer >"$tmp/tok" 2>>"$tmp/tokens"; check "token exit" 0 $?
check "token: one line on stderr" 1 "$(wc -l <"$tmp/tokens" | tr -d ' ')"
grep -Eq '^a viewer [0-9a-f]{64}$' "$tmp/tokens"; check "token: the tokens-file line" 0 $?
port=$(free_port)
"$TOWERD" serve --no-nats --data "$tmp/s1" --web "$tmp" --tokens "$tmp/tokens" --http "127.0.0.1:$port" \
    >/dev/null 2>"$tmp/serve.err" &
serve=$!
codes=$(python3 - "$port" "$(cat "$tmp/tok")" <<'PY'
import sys, time, urllib.request, urllib.error
url = "http://127.0.0.1:%s/api/v1/summary" % sys.argv[1]
def get(headers):
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code
deadline = time.time() + 20
while True:
    try:
        print(get({"Authorization": "Bearer " + sys.argv[2]}), get({}))
        break
    except OSError:
        if time.time() > deadline:
            print("no answer")
            break
        time.sleep(0.1)
PY
)
kill "$serve" 2>/dev/null; wait "$serve"
check "serve loads the recipe's tokens file (with the token, without)" "200 401" "$codes"

# token --hash hashes the whole line, whatever its length up to 4096 bytes, without its line end.
tok=$(python3 -c 'print("".join(chr(33 + (i * 7) % 90) for i in range(100)))')
want=$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)
check "token --hash of 100 bytes" "b ingest $want" "$(printf '%s\n' "$tok" | "$TOWERD" token --hash b ingest)"
check "token --hash strips CRLF" "b ingest $want" "$(printf '%s\r\n' "$tok" | "$TOWERD" token --hash b ingest)"
tok=$(python3 -c 'print("t" * 4096)')
want=$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)
check "token --hash of 4096 bytes" "b ingest $want" "$(printf '%s' "$tok" | "$TOWERD" token --hash b ingest)"
printf '%sX\n' "$tok" | "$TOWERD" token --hash b ingest >"$tmp/out" 2>"$tmp/err"; check "token --hash too long" 2 $?
check "token --hash too long: no line" 0 "$(wc -c <"$tmp/out" | tr -d ' ')"
grep -q "longer than 4096 bytes" "$tmp/err"; check "token --hash too long: said" 0 $?
printf '\n' | "$TOWERD" token --hash b ingest >/dev/null 2>"$tmp/err"; check "token --hash empty line" 2 $?
grep -q "no token" "$tmp/err"; check "token --hash empty: said" 0 $?
"$TOWERD" token --hash b ingest </dev/null >/dev/null 2>&1; check "token --hash no input" 2 $?

# status without a reachable NATS: the store's figures all the same, but exit 1, saying why.
url="nats://127.0.0.1:$(free_port)"
"$TOWERD" status --data "$tmp/s1" --nats "$url" >"$tmp/out" 2>"$tmp/err"; check "status, NATS unreachable" 1 $?
grep -q "^events  *2$" "$tmp/out"; check "status, NATS unreachable: the store's figures" 0 $?
grep -q "NATS unreachable" "$tmp/err"; check "status, NATS unreachable: said" 0 $?
"$TOWERD" status --data "$tmp/s1" --nats "$url" --json >"$tmp/out" 2>/dev/null; check "status --json, NATS unreachable" 1 $?
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["events"] == 2 and d["nats"] == "unreachable", d' \
    "$tmp/out"; check "status --json, NATS unreachable: figures" 0 $?
"$TOWERD" status --data "$tmp/s1" --no-nats >/dev/null 2>&1; check "status --no-nats" 0 $?

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
