#!/bin/sh
# The contract's governance checks (docs/contract/versioning.md):
#   1. buf lint of proto/ (proto/buf.yaml);
#   2. buf breaking of proto/ against the last released contract (the commit on the last line
#      of proto/RELEASED, read from this repository's git history);
#   3. that the check can fail: a copy of proto/ with a renumbered field, and one with a renamed
#      field (same number: the wire is unchanged, the JSON name is not), must both be refused.
# Usage: check_contract.sh SOURCE_DIR WORK_DIR
# buf is tools/buf/node_modules/.bin/buf (npm @bufbuild/buf, pinned; tools/buf/setup.sh installs it).
set -eu
src=$1
work=$2
buf="$src/tools/buf/node_modules/.bin/buf"
[ -x "$buf" ] || { echo "check_contract: no $buf (run sh tools/buf/setup.sh)" >&2; exit 1; }
released=$(grep -v '^#' "$src/proto/RELEASED" | tail -n 1)
version=${released%% *}
commit=${released#* }
[ -e "$src/.git" ] || { echo "check_contract: $src is not a git clone: cannot read release $version" >&2; exit 1; }
git -C "$src" cat-file -e "$commit^{commit}" 2>/dev/null ||
    { echo "check_contract: commit $commit of release $version is not in the history (a shallow clone?)" >&2; exit 1; }
against="$src/.git#ref=$commit,subdir=proto"
rm -rf "$work"
mkdir -p "$work/cache"
export BUF_CACHE_DIR="$work/cache"

echo "== buf lint proto" >&2
(cd "$src/proto" && "$buf" lint)
echo "== buf breaking proto against $version ($commit)" >&2
(cd "$src/proto" && "$buf" breaking --against "$against")

# must_break NAME SED-EXPRESSION: the edited copy must be refused as breaking.
must_break() {
    copy="$work/$1"
    mkdir -p "$copy"
    cp -R "$src/proto/buf.yaml" "$src/proto/tower" "$copy/"
    sed -i "$2" "$copy/tower/v1/event.proto"
    cmp -s "$src/proto/tower/v1/event.proto" "$copy/tower/v1/event.proto" &&
        { echo "check_contract: the edit '$2' changed nothing" >&2; exit 1; }
    if (cd "$copy" && "$buf" breaking --against "$against") >"$work/$1.out" 2>&1; then
        echo "check_contract: buf breaking accepted a breaking change ($1)" >&2
        exit 1
    fi
    echo "== $1 refused as expected: $(head -n 1 "$work/$1.out")" >&2
}
must_break renumbered 's/optional string event_id = 1;/optional string event_id = 99;/'
must_break renamed 's/optional string customer_id = 1;/optional string customer_ref = 1;/'
echo "check_contract: contract $version: lint clean, no breaking change" >&2
