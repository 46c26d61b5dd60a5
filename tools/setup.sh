#!/bin/sh
# Installs every Debian package that building, running and testing the tower needs.
# Non-interactive and idempotent: packages already present are left alone.
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates
  libnats-dev nats-server
  liblmdb-dev lmdb-utils
  libprotobuf-c-dev protobuf-c-compiler
  libcivetweb-dev libwebsockets-dev libjansson-dev libinih-dev libcurl4-openssl-dev libssl-dev
  clang libclang-rt-14-dev valgrind curl python3 openssl"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing$missing" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
else
    echo "setup: all packages present" >&2
fi
