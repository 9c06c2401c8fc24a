#!/usr/bin/env bash
# Install the Debian packages Coffer needs to build, test and benchmark.
# Idempotent: only calls apt-get when something is missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config libssl-dev libmicrohttpd-dev libjansson-dev
      libcurl4-openssl-dev libcmocka-dev libcrypt-dev curl python3 python3-hvac
      clang libclang-rt-14-dev postgresql-15 etcd-server etcd-client softhsm2 opensc
      libp11-kit-dev libpq-dev libgnutls28-dev openssl python3-cryptography python3-botocore valgrind cppcheck
      libraft-dev libuv1-dev zlib1g-dev prometheus python3-prometheus-client python3-yaml shellcheck gnupg)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node + npm for the node-vault client tests (tests/e2e/node). NodeSource's
# nodejs bundles npm and conflicts with Debian's npm package, so npm is only
# asked for when the command is absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
