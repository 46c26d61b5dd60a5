#!/bin/sh
# Checks the alerting rules: promtool's syntax check, its unit tests (tower-alerts.test.yml), and that every
# tower_* metric the rules use is one that services/server/src/metrics.c writes, and that every alert's
# runbook_url names a runbook that exists.
# usage: check.sh SOURCE_DIR
set -eu
src=${1:?usage: check.sh SOURCE_DIR}
dir="$src/deploy/prometheus"
command -v promtool >/dev/null 2>&1 || { echo "promtool not found (Debian package prometheus; tools/setup.sh --test installs it)"; exit 1; }
promtool check rules "$dir/tower-alerts.yml"
(cd "$dir" && promtool test rules tower-alerts.test.yml)
status=0
for m in $(grep -o 'tower_[a-z_]*' "$dir/tower-alerts.yml" | sort -u); do
    if ! grep -q "\"$m" "$src/services/server/src/metrics.c"; then
        echo "tower-alerts.yml uses $m, which services/server/src/metrics.c does not write"
        status=1
    fi
done
# Every alert links its runbook, and that runbook exists (docs/runbooks/alert/NAME.md).
for a in $(sed -n 's/^ *- alert: *//p' "$dir/tower-alerts.yml"); do
    if ! grep -q "runbook_url: \"https://tower.example.com/#/runbook/alert/$a\"" "$dir/tower-alerts.yml"; then
        echo "alert $a has no runbook_url to #/runbook/alert/$a"
        status=1
    elif [ ! -f "$src/docs/runbooks/alert/$a.md" ]; then
        echo "alert $a links docs/runbooks/alert/$a.md, which does not exist"
        status=1
    fi
done
exit $status
