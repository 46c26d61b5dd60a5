#!/bin/sh
# Checks the alerting rules: promtool's syntax check, its unit tests (tower-alerts.test.yml), and that every
# tower_* metric the rules use is one that services/server/src/metrics.c writes.
# usage: check.sh SOURCE_DIR
set -eu
src=${1:?usage: check.sh SOURCE_DIR}
dir="$src/deploy/prometheus"
command -v promtool >/dev/null 2>&1 || { echo "promtool not found (Debian package prometheus; tools/setup.sh installs it)"; exit 1; }
promtool check rules "$dir/tower-alerts.yml"
(cd "$dir" && promtool test rules tower-alerts.test.yml)
status=0
for m in $(grep -o 'tower_[a-z_]*' "$dir/tower-alerts.yml" | sort -u); do
    if ! grep -q "\"$m" "$src/services/server/src/metrics.c"; then
        echo "tower-alerts.yml uses $m, which services/server/src/metrics.c does not write"
        status=1
    fi
done
exit $status
