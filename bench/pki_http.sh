#!/usr/bin/env bash
# bench/pki_http.sh - PKI issue rates over HTTP: a dev server (inmem
# storage, root token) on a free loopback port, wrk POSTing issue/:role for
# an EC P-256 role with no_store and one that stores. Prints one line per
# role. Stops the server it started (by PID) on exit.
#   usage: bench/pki_http.sh [COFFER_BINARY=build-bench/coffer] [SECONDS=5] [CONNECTIONS=16]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build-bench/coffer}
SECS=${2:-5}
CONNS=${3:-16}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
TMP=$(mktemp -d)
"$BIN" server -dev -dev-root-token-id=root -dev-listen-address="$ADDR" >"$TMP/server.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
  curl -sf "http://$ADDR/v1/sys/health" >/dev/null && break
  sleep 0.1
done
api() { curl -sf -H "X-Vault-Token: root" -X POST -d "$2" "http://$ADDR/v1/$1" >/dev/null; }
api sys/mounts/pki '{"type":"pki"}'
api pki/root/generate/internal '{"common_name":"example.com","key_type":"ec","ttl":"700h"}'
api pki/roles/ec-nostore '{"allowed_domains":"myapp.example.com","allow_subdomains":true,"key_type":"ec","no_store":true,"ttl":"72h"}'
api pki/roles/ec-stored '{"allowed_domains":"myapp.example.com","allow_subdomains":true,"key_type":"ec","ttl":"72h"}'
echo '{"common_name":"api.myapp.example.com"}' >"$TMP/body.json"
for role in ec-nostore ec-stored; do
  out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$ROOT/bench/post.lua" "http://$ADDR" -- \
    "/v1/pki/issue/$role" root "$TMP/body.json")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "issue/$role: error responses:" >&2
    echo "$out" >&2
    exit 1
  fi
  echo "issue/$role over HTTP (wrk -t2 -c$CONNS, ${SECS}s): $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s"
done
