#!/usr/bin/env bash
# bench/pki.sh - build a Release tree in $BUILD_DIR (default build-bench/),
# link the PKI benchmark (bench/pki.c) against its static libraries, run it:
# issuance rates through the engine's path table (EC P-256 with and without
# storage, RSA-2048) and the build of a CRL with N revoked serials; prints a
# Markdown table and writes it to bench/results/pki.md (a run with other
# arguments overwrites the committed results).
#   usage: bench/pki.sh [N] [SECONDS]
#     N        revoked serials in the CRL case (positional; default 1000000)
#     SECONDS  seconds per issuance case (positional; default 3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000000}
SECS=${2:-3}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
BUILD_DIR=$BUILD_DIR BUILD_TYPE=Release "$ROOT/scripts/build.sh" >/dev/null
LIBS=""
for m in server http secrets auth audit seal cli core logical physical util; do
  LIBS="$LIBS $BUILD_DIR/libcoffer_$m.a"
done
cc -O2 -std=gnu17 -D_GNU_SOURCE -I"$ROOT/src" "$ROOT/bench/pki.c" -o "$BUILD_DIR/bench_pki" \
  -Wl,--start-group $LIBS -Wl,--end-group \
  $(pkg-config --libs jansson libmicrohttpd libcurl gnutls) -lssl -lcrypto -lpthread -lm -lcrypt
OUT=$("$BUILD_DIR/bench_pki" "$N" "$SECS")
mkdir -p "$ROOT/bench/results"
{
  echo "# PKI benchmark"
  echo
  echo "\`bench/pki.sh $N $SECS\` on $(nproc) CPUs (shared), $(uname -sr), $(openssl version | cut -d' ' -f1-2), $(date -u +%Y-%m-%d)."
  echo
  echo "$OUT"
} | tee "$ROOT/bench/results/pki.md"
