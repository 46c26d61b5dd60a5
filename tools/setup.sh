#!/bin/sh
# Installs the Debian packages the tower needs. Non-interactive and idempotent: packages already
# present are left alone.
#   sh tools/setup.sh          what building and running it needs (the main job, tools/demo.sh):
#                              compiler, cmake, the libraries' -dev packages, nats-server
#   sh tools/setup.sh --test   that, and what the tests need (tools/test.sh, CI): clang (fuzzing),
#                              valgrind, curl, python3 (+ aiosmtpd), openssl, nginx, prometheus,
#                              prometheus-alertmanager, systemd (systemd-analyze), chromium, node +
#                              the browser tests' npm packages
set -eu

tests=""
case "${1:-}" in
--test) tests=1 ;;
"") ;;
*)
    echo "usage: sh tools/setup.sh [--test]" >&2
    exit 2
    ;;
esac

# Building and running: the compiler and cmake, the libraries, git (the build's version stamp),
# nats-server (towerd up starts its own).
PKGS="build-essential cmake pkg-config git ca-certificates
  libnats-dev nats-server
  liblmdb-dev
  libprotobuf-c-dev protobuf-c-compiler
  libcivetweb-dev libwebsockets-dev libjansson-dev libinih-dev libcurl4-openssl-dev libssl-dev"

# The tests only:
# - clang and its runtime: the fuzz stage (libFuzzer); valgrind, lmdb-utils: debugging aids; gdb: the
#   threads of a process that hangs in a test are printed with the failure;
# - curl, python3, openssl: the integration tests and their certificates; python3-aiosmtpd is the
#   SMTP server of the relay's email tests (tests/integration/test_relay.py);
# - nginx (the TLS front in a test), prometheus (for promtool) and prometheus-alertmanager (the cluster
#   recipe's test): their services are not started by the installation (policy-rc.d below), and tests
#   run their binaries with configurations of their own;
# - systemd: systemd-analyze verify checks the units of deploy/systemd (tests/integration/test_deploy.py);
# - chromium and node (playwright-core from npm): the browser tests; Debian's nodejs and npm only when
#   no node is on PATH.
if [ -n "$tests" ]; then
    PKGS="$PKGS lmdb-utils
  clang libclang-rt-14-dev valgrind gdb curl python3 python3-aiosmtpd openssl
  nginx prometheus prometheus-alertmanager systemd
  chromium"
    command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing$missing" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # Debian starts a package's service on installation unless /usr/sbin/policy-rc.d says no.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# installed by the tower'"'"'s tools/setup.sh for the time of an apt-get install\nexit 101\n' |
            $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing || {
        [ -z "$guard" ] || $SUDO rm -f /usr/sbin/policy-rc.d
        exit 1
    }
    [ -z "$guard" ] || $SUDO rm -f /usr/sbin/policy-rc.d
else
    echo "setup: all packages present${tests:+ (tests included)}" >&2
fi

# The browser tests' npm packages (playwright-core, pinned by tests/browser/package-lock.json).
browser_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ -n "$tests" ] && [ -f "$browser_dir/package-lock.json" ] && [ ! -d "$browser_dir/node_modules/playwright-core" ]; then
    echo "setup: npm ci in tests/browser" >&2
    (cd "$browser_dir" && npm ci --no-audit --no-fund)
fi
