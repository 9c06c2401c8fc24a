#!/usr/bin/env bash
# Install the Debian packages Coffer needs to build, test and benchmark.
# Idempotent: only calls apt-get when something is missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config libssl-dev libmicrohttpd-dev libjansson-dev
      libcurl4-openssl-dev libcmocka-dev libcrypt-dev curl python3 python3-hvac
      clang libclang-rt-14-dev postgresql-15 etcd-server etcd-client softhsm2 opensc
      libp11-kit-dev libpq-dev libgnutls28-dev openssl valgrind cppcheck)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
