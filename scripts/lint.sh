#!/usr/bin/env bash
# Static checks, all must pass in CI (scripts/test.sh runs this):
#   1. banned functions in src/ (curl checksrc style): unbounded or
#      error-swallowing C APIs we never want back.
#   2. constant-time rule: tokens, passwords, keys, shares and HMACs are never
#      compared with strcmp/memcmp & co. (use secmem_eq/secmem_streq/
#      CRYPTO_memcmp). Audited exceptions are listed below with the reason.
#   3. cppcheck (warning, portability, performance) with the suppressions in
#      scripts/cppcheck-suppressions.txt, each justified there.
# LINT_TIDY=1 also runs clang-tidy with the checked-in .clang-tidy (slower;
# advisory: prints findings, does not fail).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
fail=0

# strip /* */ comment lines and string literals before matching
code_lines() { # file...
  grep -nHE "$1" "${@:2}" | grep -vE '^[^:]+:[0-9]+:\s*(/?\*|//)' || true
}

echo "== lint: banned functions"
banned='\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atoll|atof|gets|tmpnam|tempnam|mktemp|rand|srand|random|alloca|strncpy|strncat|getpass|setjmp|longjmp|system|popen)[[:space:]]*\('
hits=$(code_lines "$banned" $(find src -name '*.c' -o -name '*.h') | grep -vE '"[^"]*\b(strcpy|sprintf|atoi|rand|system)\(' || true)
if [ -n "$hits" ]; then
  echo "$hits"
  echo "lint: banned function (use snprintf/strtol/strtok_r/RAND_bytes/...)" >&2
  fail=1
fi

echo "== lint: constant-time comparisons of secrets"
# identifiers that hold secrets or their HMACs
secret_ids='(token|passw|secret|hmac|\bmac\b|digest|share|\bkek\b|root_key|\broot\b|unseal|\bsalt\b|\bhash\b|\btag\b|client_token)'
cmp='\b(strcmp|strncmp|strcasecmp|strncasecmp|memcmp|bcmp)[[:space:]]*\('
# audited exceptions: "file|code fragment|reason"
allow=(
  'src/core/token_store.c|strcmp(n->te->hash, te->hash)|cache insert: both sides are stored HMACs already resolved by a constant-time lookup; no attacker-chosen input'
  'src/core/token_store.c|strcmp((*pp)->te->hash, hash)|cache eviction of a hash the store produced itself (revocation), not a lookup by a presented token'
  'src/secrets/cubbyhole.c|!strcmp(hash, ".") || !strcmp(hash, "..")|path-safety check against constant dot names, not a secret comparison'
  'src/core/audit_broker.c|memcmp(t, tag, tl)|parsing a log line: `tag` is the constant JSON key ",\"chain\":\"", not a MAC tag'
  'src/core/policy_store.c|e->hash == h && strcmp(e->key, key)|policy cache: a hash of the policy *name* for bucketing'
)
files=$(find src -name '*.c' -not -path 'src/cli/*')
while IFS= read -r line; do
  [ -n "$line" ] || continue
  ok=0
  for a in "${allow[@]}"; do
    f=${a%%|*}; rest=${a#*|}; frag=${rest%%|*}
    if [[ "$line" == "$f:"* && "$line" == *"$frag"* ]]; then ok=1; break; fi
  done
  if [ $ok = 0 ]; then
    echo "$line"
    fail=1
  fi
done < <(code_lines "$cmp" $files | while IFS= read -r l; do
           code=${l#*:*:}  # drop "file:line:" (file names say "token" too)
           code=$(printf '%s' "$code" | sed -E 's/"([^"\\]|\\.)*"/""/g')  # and string literals
           # and settings named after tokens that are not secrets (token_type ...)
           code=$(printf '%s' "$code" | sed -E 's/\b(token_(types?|policies|ttl|max_ttl|period|num_uses|bound_cidrs|no_default_policy|explicit_max_ttl)|token_types\[[a-z]+\])\b//g')
           if printf '%s' "$code" | grep -qE "$secret_ids"; then printf '%s\n' "$l"; fi
         done)
[ $fail = 0 ] || echo "lint: non-constant-time compare of a secret (use secmem_streq/secmem_eq), or audit it into the allow list" >&2

echo "== lint: cppcheck"
if command -v cppcheck >/dev/null; then
  if ! cppcheck -q --std=c11 --enable=warning,portability,performance --library=posix --library=openssl \
      --inline-suppr -I src --include=/usr/include/jansson.h -D_GNU_SOURCE -DCOFFER_VERSION='"0"' \
      --suppress=missingIncludeSystem --suppressions-list=scripts/cppcheck-suppressions.txt \
      -j"$(nproc)" --error-exitcode=1 src; then
    fail=1
  fi
else
  echo "cppcheck not installed (apt-get install cppcheck)" >&2
  fail=1
fi

if [ "${LINT_TIDY:-0}" = 1 ]; then
  echo "== lint: clang-tidy (advisory)"
  tdir=${LINT_TIDY_DIR:-$ROOT/build-lint}
  CC=clang cmake -S "$ROOT" -B "$tdir" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
  find src -name '*.c' | xargs -P"$(nproc)" -n8 clang-tidy -p "$tdir" --quiet 2>/dev/null \
    | grep -E '(warning|error):' || true
fi

if [ $fail != 0 ]; then
  echo "lint: FAILED" >&2
  exit 1
fi
echo "lint: clean"
