#!/bin/sh
# Installs buf (npm @bufbuild/buf, pinned by tools/buf/package-lock.json) into tools/buf/node_modules
# for the contract checks (tests/contract.cmake). Idempotent; tools/test.sh runs it after setup.sh.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$dir/node_modules/.bin/buf" ]; then
    echo "setup: npm ci in tools/buf" >&2
    (cd "$dir" && npm ci --no-audit --no-fund)
fi
