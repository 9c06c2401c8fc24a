#!/usr/bin/env bash
# The whole test suite: install what is missing, build (normal and ASan+UBSan),
# run unit tests (ctest) and the end-to-end tests against the real binary.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/deps.sh
scripts/build.sh
echo "== unit tests"
ctest --test-dir build --output-on-failure -j2
echo "== end-to-end tests"
COFFER_BIN="$ROOT/build/coffer" /usr/bin/python3 tests/e2e/run.py
if [ "${COFFER_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== ASan+UBSan build: unit + e2e"
  BUILD_DIR="$ROOT/build-asan" scripts/build.sh -DCOFFER_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j2
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    COFFER_BIN="$ROOT/build-asan/coffer" /usr/bin/python3 tests/e2e/run.py
fi
