#!/usr/bin/env bash
# Every test, on a fresh machine: formatting and lints, unit tests, the HTTP suites on SQLite
# and on PostgreSQL, then, against one release binary, the browser tests, the Python and
# TypeScript client suites and the schemathesis fuzz run on both databases.
#
#   scripts/test.sh
#
# Env: LIMITRY_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres): a
# server where the suites may create and drop databases. PostgreSQL being unreachable is a
# failure, never a skip.
# Ends with a line `N passed, M failed`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LIMITRY_TEST_POSTGRES_URL="${LIMITRY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found; install Rust (https://rustup.rs)" >&2
  exit 1
fi

passed=0
failed=0
log="$(mktemp "${TMPDIR:-/tmp}/limitry-test.XXXXXX.log")"
trap 'rm -f "$log"' EXIT

# Adds up cargo's `test result:` lines from the last run's log.
count_cargo_results() {
  local counts
  counts=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
                END { print p + 0, f + 0 }' "$log")
  passed=$((passed + ${counts% *}))
  failed=$((failed + ${counts#* }))
}

summary() {
  echo
  echo "$passed passed, $failed failed"
}

step() {
  echo
  echo "==> $*"
}

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "PostgreSQL at ${LIMITRY_TEST_POSTGRES_URL%%\?*}"
pg_hostport="$(echo "$LIMITRY_TEST_POSTGRES_URL" | sed -E 's#^[a-z]+://([^@/]*@)?([^/:]+)(:([0-9]+))?/.*#\2 \4#')"
read -r pg_host pg_port <<<"$pg_hostport"
if ! timeout 5 bash -c "exec 3<>/dev/tcp/$pg_host/${pg_port:-5432}" 2>/dev/null; then
  echo "test.sh: PostgreSQL is not reachable at $pg_host:${pg_port:-5432}." >&2
  echo "  Start it (e.g. pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)" >&2
  echo "  or point LIMITRY_TEST_POSTGRES_URL at a server where databases may be created." >&2
  exit 1
fi
echo "reachable"

step "unit and HTTP tests on SQLite"
set +e
env -u LIMITRY_TEST_POSTGRES_URL cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
count_cargo_results
if [[ $status -ne 0 ]]; then summary; exit "$status"; fi

step "HTTP tests on PostgreSQL"
set +e
cargo test --test api 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
count_cargo_results
if [[ $status -ne 0 ]]; then summary; exit "$status"; fi

# Runs a suite script that ends with a line `<name>: N passed, M failed` and adds its counts;
# a script that fails without printing that line counts as one failure.
run_counted_suite() {
  local name="$1"
  shift
  set +e
  "$@" 2>&1 | tee "$log"
  local suite_status=${PIPESTATUS[0]}
  set -e
  local line
  line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$log" | tail -1 || true)
  if [[ -n "$line" ]]; then
    passed=$((passed + $(echo "$line" | sed -E 's/^[^:]*: ([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
  elif [[ $suite_status -ne 0 ]]; then
    failed=$((failed + 1))
  fi
  if [[ $suite_status -ne 0 ]]; then status=$suite_status; fi
}

# One release build serves the browser, client and fuzz suites.
step "release build"
cargo build --release --bin limitry
status=0

step "browser tests (release binary, system Chromium)"
run_counted_suite e2e scripts/e2e.sh

step "client libraries: Python and TypeScript (release binary)"
run_counted_suite clients scripts/clients.sh

step "API fuzzing: schemathesis against the OpenAPI document, SQLite and PostgreSQL (release binary)"
run_counted_suite fuzz scripts/fuzz.sh

summary
exit "$status"
