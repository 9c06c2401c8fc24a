#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) and run each for a bounded
# time. Usage: scripts/fuzz.sh [seconds-per-target, default 60] [target ...]
#
# Each target starts from tests/fuzz/corpus/<t>/ plus its regressions and
# grows a scratch corpus in $FUZZ_WORK (default build-fuzz/work/<t>/, not
# committed). A crash, leak or timeout input is copied into
# tests/fuzz/regressions/<t>/ - commit it: the replay ctest (fuzz/<t>) runs
# it in every build from then on - and the script exits 1. The last line per
# target ("fuzz <t>: N execs in S s") feeds docs/SECURITY.md; a summary goes
# to $FUZZ_WORK/summary.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECS=${1:-60}
shift || true
BUILD_DIR=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
WORK=${FUZZ_WORK:-$BUILD_DIR/work}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
# only the fuzz executables (the unit tests are not needed here)
CC=clang cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCOFFER_FUZZ=ON -DCOFFER_SANITIZE=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

mkdir -p "$WORK"
: > "$WORK/summary.txt"

# one target; its exit status says whether it found something
fuzz_one() {
  local t=$1 exe corpus arts log rc execs found a name
  exe="$BUILD_DIR/fuzz_$t"
  corpus="$WORK/$t"; arts="$WORK/$t.artifacts"
  mkdir -p "$corpus" "$arts" "tests/fuzz/regressions/$t"
  log="$WORK/$t.log"
  echo "== fuzz $t for ${SECS}s"
  set +e
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$exe" "$corpus" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" \
      -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
      -max_len=16384 -print_final_stats=1 -seed="${FUZZ_SEED:-1}" \
      -artifact_prefix="$arts/" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  found=0
  for a in "$arts"/*; do
    [ -f "$a" ] || continue
    name=$(basename "$a")
    cp "$a" "tests/fuzz/regressions/$t/$name"
    rm -f "$a"
    echo "fuzz $t: NEW FINDING tests/fuzz/regressions/$t/$name" >&2
    found=1
  done
  if [ $rc -ne 0 ] || [ $found -ne 0 ]; then
    grep -E "ERROR|SUMMARY|runtime error|abort" "$log" | head -20 >&2 || true
  fi
  echo "fuzz $t: ${execs:-0} execs in ${SECS} s, exit $rc" | tee -a "$WORK/summary.txt"
  [ $rc -eq 0 ] && [ $found -eq 0 ]
}

for t in "${targets[@]}"; do
  [ -x "$BUILD_DIR/fuzz_$t" ] || { echo "fuzz: no target $t" >&2; exit 2; }
done
# FUZZ_JOBS targets at a time (default: one per core); each keeps its own
# time budget, corpus and log, so running them side by side changes only
# how many executions each gets, not what is checked
jobs=${FUZZ_JOBS:-$(nproc)}
status=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
