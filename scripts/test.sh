#!/usr/bin/env bash
# The whole test suite: install what is missing, build (normal and ASan+UBSan),
# lint, run unit tests (ctest, including the fuzz corpus + regression
# replays) and the end-to-end tests against the real binary, an e2e smoke
# under valgrind memcheck, the same unit + e2e under ASan+UBSan, and a
# bounded libFuzzer run of every target; ThreadSanitizer runs the state
# machine's unit tests and the seal/unseal race against the real binary.
# Knobs: COFFER_SKIP_SANITIZERS=1, COFFER_SKIP_VALGRIND=1, COFFER_SKIP_FUZZ=1,
# FUZZ_SECONDS (per target, default 30), FUZZ_SEED (default 1: CI runs are
# repeatable; 0 picks a random seed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
t0=$(date +%s)
stage() { echo "== $1 ($(( $(date +%s) - t0 )) s)"; }
scripts/deps.sh
scripts/build.sh
stage "lint"
scripts/lint.sh
stage "unit tests"
ctest --test-dir build --output-on-failure -j2
stage "end-to-end tests"
# e2e files run side by side, one per core (tests/e2e/run.py: the files
# with wall-clock bounds keep a lane of their own)
export COFFER_E2E_JOBS=${COFFER_E2E_JOBS:-$(nproc)}
COFFER_BIN="$ROOT/build/coffer" /usr/bin/python3 tests/e2e/run.py
if [ "${COFFER_SKIP_VALGRIND:-0}" != 1 ]; then
  stage "valgrind memcheck: e2e smoke (server core)"
  COFFER_VALGRIND=1 COFFER_BIN="$ROOT/build/coffer" /usr/bin/python3 tests/e2e/run.py test_server_core.py
fi
if [ "${COFFER_SKIP_SANITIZERS:-0}" != 1 ]; then
  stage "ASan+UBSan build: unit + e2e"
  BUILD_DIR="$ROOT/build-asan" scripts/build.sh -DCOFFER_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j2
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    COFFER_RACE_ROUNDS=50 COFFER_BIN="$ROOT/build-asan/coffer" /usr/bin/python3 tests/e2e/run.py
  stage "ThreadSanitizer: the state machine, the pipeline and the seal/unseal race"
  cmake -S "$ROOT" -B "$ROOT/build-tsan" -DCOFFER_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$ROOT/build-tsan" -j"$(nproc)" --target coffer test_core_state test_core_pipeline >/dev/null
  TSAN_OPTIONS=halt_on_error=1 "$ROOT/build-tsan/test_core_state"
  TSAN_OPTIONS=halt_on_error=1 "$ROOT/build-tsan/test_core_pipeline"
  TSAN_OPTIONS="halt_on_error=1 exitcode=66" COFFER_BIN="$ROOT/build-tsan/coffer" \
    /usr/bin/python3 tests/e2e/run.py test_state_race.py
fi
if [ "${COFFER_SKIP_FUZZ:-0}" != 1 ]; then
  stage "fuzz: every target for ${FUZZ_SECONDS:-30} s"
  scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
stage "all passed"
