#!/bin/sh
# CLI tests of towerd gen/fold/dump: exit codes, --help, error reports, and dump reading while fold writes.
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

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
