#!/usr/bin/env bash
# bench/leases.sh - build and run the lease benchmark (bench/leases.c) over
# the real core + file storage; prints a Markdown table and writes it to
# bench/results/leases.md.
#   usage: bench/leases.sh [N=1000000] [WINDOW_S=60] [THREADS=8]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000000}
WINDOW=${2:-60}
THREADS=${3:-8}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
BUILD_DIR=$BUILD_DIR BUILD_TYPE=Release "$ROOT/scripts/build.sh" >/dev/null
LIBS=""
for m in server http secrets auth audit seal cli core physical util; do
  LIBS="$LIBS $BUILD_DIR/libcoffer_$m.a"
done
cc -O2 -std=gnu17 -D_GNU_SOURCE -I"$ROOT/src" "$ROOT/bench/leases.c" -o "$BUILD_DIR/bench_leases" \
  -Wl,--start-group $LIBS -Wl,--end-group \
  $(pkg-config --libs jansson libmicrohttpd libcurl gnutls) -lssl -lcrypto -lpthread -lm -lcrypt
WORK=$(mktemp -d /tmp/coffer-bench-leases.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
OUT=$("$BUILD_DIR/bench_leases" "$N" "$WORK/data" "$WINDOW" "$THREADS")
mkdir -p "$ROOT/bench/results"
{
  echo "# Lease benchmark"
  echo
  echo "\`bench/leases.sh $N $WINDOW $THREADS\` on $(nproc) CPUs, $(uname -sr), $(date -u +%Y-%m-%d)."
  echo "File storage in $(df --output=fstype "$WORK" | tail -1 | tr -d ' '), leases registered, sealed, storage closed and reopened (a restart), unsealed."
  echo
  echo "$OUT"
} > "$ROOT/bench/results/leases.md"
echo "$OUT"
