#!/usr/bin/env bash
# Install what is missing, build, and start a Coffer server on 127.0.0.1:8200
# with the embedded, durable `file` storage under ./data (plain HTTP on
# loopback; see docs/configuration.md for TLS).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/deps.sh
scripts/build.sh
mkdir -p "$ROOT/data"
cat >"$ROOT/data/coffer-local.hcl" <<HCL
storage "file" {
  path = "$ROOT/data/storage"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
api_addr = "http://127.0.0.1:8200"
HCL
exec "$ROOT/build/coffer" server -config="$ROOT/data/coffer-local.hcl"
