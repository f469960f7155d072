#!/usr/bin/env bash
# The Python and TypeScript client suites, against the release binary.
#
#   cargo build --release --bin limitry && scripts/clients.sh
#
# Installs what is missing (clients/python/.venv with the package and its test extras;
# clients/typescript/node_modules through `npm ci`), reinstalling when pyproject.toml or
# package-lock.json change. Each suite starts target/release/limitry (or $LIMITRY_BIN) itself
# on fresh SQLite files and loopback ports.
# Ends with a line `clients: N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
PY_DIR="$ROOT/clients/python"
TS_DIR="$ROOT/clients/typescript"

LIMITRY_BIN="${LIMITRY_BIN:-$ROOT/target/release/limitry}"
case "$LIMITRY_BIN" in /*) ;; *) LIMITRY_BIN="$ROOT/$LIMITRY_BIN" ;; esac
if [[ ! -x "$LIMITRY_BIN" ]]; then
  echo "clients.sh: $LIMITRY_BIN not found or not executable; build it first: cargo build --release --bin limitry" >&2
  echo "clients: 0 passed, 1 failed"
  exit 1
fi
export LIMITRY_BIN

# --- installs (skipped when nothing changed) ---
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  echo "clients.sh: Python >= 3.9 is required (set PYTHON=…)" >&2
  exit 1
fi
py_hash="$(sha256sum "$PY_DIR/pyproject.toml" | cut -d' ' -f1)"
py_stamp="$PY_DIR/.venv/.clients-sh-sha256"
if [[ ! -x "$PY_DIR/.venv/bin/python" || ! -f "$py_stamp" || "$(cat "$py_stamp")" != "$py_hash" ]]; then
  echo "clients.sh: installing the Python client and its test extras into clients/python/.venv" >&2
  "$PYTHON" -m venv "$PY_DIR/.venv"
  "$PY_DIR/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$PY_DIR[test]"
  echo "$py_hash" >"$py_stamp"
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "clients.sh: npm not found; Node.js 18+ with npm is required" >&2
  exit 1
fi
ts_hash="$(cat "$TS_DIR/package.json" "$TS_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
ts_stamp="$TS_DIR/node_modules/.clients-sh-sha256"
if [[ ! -d "$TS_DIR/node_modules" || ! -f "$ts_stamp" || "$(cat "$ts_stamp")" != "$ts_hash" ]]; then
  echo "clients.sh: installing the TypeScript client's dependencies (npm ci)" >&2
  (cd "$TS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$ts_hash" >"$ts_stamp"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/limitry-clients.XXXXXX")"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
status=0

# --- Python ---
echo
echo "==> Python client (pytest)"
set +e
(cd "$PY_DIR" && .venv/bin/python -m pytest -p no:cacheprovider --junitxml="$work/pytest.xml" "$@")
py_status=$?
set -e
counts="$("$PY_DIR/.venv/bin/python" - "$work/pytest.xml" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad)
PYEOF
)"
read -r p f <<<"$counts"
if [[ $py_status -ne 0 && $f -eq 0 ]]; then f=1; fi
if [[ $p -eq 0 && $f -eq 0 ]]; then echo "clients.sh: pytest ran no test" >&2; f=1; fi
passed=$((passed + p)); failed=$((failed + f))
[[ $py_status -ne 0 ]] && status=1

# --- TypeScript ---
echo
echo "==> TypeScript client (tsc, node --test)"
set +e
(
  cd "$TS_DIR" &&
    rm -rf dist build &&
    npx --no-install tsc -p tsconfig.json &&
    npx --no-install tsc -p tsconfig.test.json &&
    node --test --test-concurrency=1 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$work/node.tap" \
      build/test/
)
ts_status=$?
set -e
p=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$work/node.tap" 2>/dev/null | tail -1)
f=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$work/node.tap" 2>/dev/null | tail -1)
p=${p:-0}; f=${f:-0}
if [[ $ts_status -ne 0 && $f -eq 0 ]]; then f=1; fi
if [[ $p -eq 0 && $f -eq 0 ]]; then echo "clients.sh: node --test ran no test" >&2; f=1; fi
passed=$((passed + p)); failed=$((failed + f))
[[ $ts_status -ne 0 ]] && status=1

echo
echo "clients: $passed passed, $failed failed"
exit "$status"
