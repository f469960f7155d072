#!/usr/bin/env bash
# Browser end-to-end tests (Playwright + system Chromium) against the release binary.
#
#   cargo build --release && scripts/e2e.sh [extra `playwright test` args]
#
# Env: LIMITRY_BIN (default target/release/limitry), CHROMIUM_PATH (default /usr/bin/chromium).
# Ends with a line `e2e: N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
E2E_DIR="$ROOT/end2end"

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
export CHROMIUM_PATH

# --- Chromium (Debian package; Playwright's own browser downloads are never used) ---
if [[ ! -x "$CHROMIUM_PATH" ]]; then
  if [[ "$(id -u)" -eq 0 ]]; then
    echo "e2e.sh: $CHROMIUM_PATH missing; installing the Debian chromium package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium
  else
    echo "e2e.sh: $CHROMIUM_PATH not found. Install it as root: apt-get install chromium" >&2
    exit 1
  fi
  if [[ ! -x "$CHROMIUM_PATH" ]]; then
    echo "e2e.sh: chromium installed but $CHROMIUM_PATH still missing" >&2
    exit 1
  fi
fi

# --- npm dependencies (reinstalled when package.json / package-lock.json change) ---
if ! command -v npm >/dev/null 2>&1; then
  echo "e2e.sh: npm not found; Node.js 20+ with npm is required" >&2
  exit 1
fi
deps_hash="$(cat "$E2E_DIR/package.json" "$E2E_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
stamp="$E2E_DIR/node_modules/.e2e-deps-sha256"
if [[ ! -d "$E2E_DIR/node_modules/@playwright/test" || ! -f "$stamp" || "$(cat "$stamp")" != "$deps_hash" ]]; then
  echo "e2e.sh: installing npm dependencies in end2end/ (npm ci)" >&2
  (cd "$E2E_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  echo "$deps_hash" >"$stamp"
fi

# --- the binary under test (built by the caller) ---
LIMITRY_BIN="${LIMITRY_BIN:-$ROOT/target/release/limitry}"
case "$LIMITRY_BIN" in /*) ;; *) LIMITRY_BIN="$ROOT/$LIMITRY_BIN" ;; esac
if [[ ! -x "$LIMITRY_BIN" ]]; then
  echo "e2e.sh: $LIMITRY_BIN not found or not executable; build it first: cargo build --release" >&2
  exit 1
fi
export LIMITRY_BIN

# --- run ---
report="$(mktemp "${TMPDIR:-/tmp}/limitry-e2e-report.XXXXXX.json")"
trap 'rm -f "$report"' EXIT
rm -f "$report" # the reporter creates it; an empty file must not pass for a report

set +e
(cd "$E2E_DIR" && E2E_JSON_REPORT="$report" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npx --no-install playwright test "$@")
pw_status=$?
set -e

# --- summary from the JSON report ---
summary="$(node - "$report" <<'EOF'
const fs = require('fs');
const file = process.argv[2];
let r;
try {
  r = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (e) {
  console.log('NOREPORT');
  process.exit(0);
}
const s = r.stats || {};
const passed = (s.expected || 0) + (s.flaky || 0);
const failed = s.unexpected || 0;
const skipped = s.skipped || 0;
const errors = (r.errors || []).length;
console.log(`${passed} ${failed} ${skipped} ${errors}`);
EOF
)"

if [[ "$summary" == "NOREPORT" ]]; then
  echo "e2e.sh: Playwright wrote no report (exit status $pw_status); see the output above" >&2
  echo "e2e: 0 passed, 0 failed"
  exit "$(( pw_status == 0 ? 1 : pw_status ))"
fi

read -r passed failed skipped errors <<<"$summary"
if [[ "$skipped" -gt 0 ]]; then
  echo "e2e: $passed passed, $failed failed, $skipped skipped"
else
  echo "e2e: $passed passed, $failed failed"
fi

if [[ "$failed" -gt 0 || "$errors" -gt 0 || "$pw_status" -ne 0 ]]; then
  [[ "$errors" -gt 0 ]] && echo "e2e.sh: $errors error(s) outside tests (see output above)" >&2
  exit "$(( pw_status == 0 ? 1 : pw_status ))"
fi
if [[ "$passed" -eq 0 ]]; then
  echo "e2e.sh: no test ran" >&2
  exit 1
fi
