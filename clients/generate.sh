#!/usr/bin/env bash
# Regenerates the clients' request/response types from the OpenAPI document the service serves.
#
#   cargo build --release --bin limitry && clients/generate.sh
#
# Starts target/release/limitry (or $LIMITRY_BIN) on a temporary SQLite file and a free
# loopback port, fetches /v1/openapi.json into clients/openapi.json, then writes
#   clients/python/src/limitry_selfhosted/models.py      (datamodel-code-generator)
#   clients/python/src/limitry_selfhosted/_resources.py  (sync twin of _resources_async.py)
#   clients/typescript/src/generated/api.ts             (openapi-typescript)
# The drift tests of both suites run the same generators against the running service.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
CLIENTS="$(pwd)"
ROOT="$(cd .. && pwd)"
BIN="${LIMITRY_BIN:-$ROOT/target/release/limitry}"
if [[ ! -x "$BIN" ]]; then
  echo "generate.sh: $BIN not found; build it first: cargo build --release --bin limitry" >&2
  exit 1
fi
PY="$CLIENTS/python/.venv/bin/python"
if [[ ! -x "$PY" ]]; then
  echo "generate.sh: no Python venv; run scripts/clients.sh once (it installs both clients)" >&2
  exit 1
fi
if [[ ! -d "$CLIENTS/typescript/node_modules/openapi-typescript" ]]; then
  echo "generate.sh: no node_modules; run scripts/clients.sh once (it installs both clients)" >&2
  exit 1
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/limitry-generate.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$BIN" serve --bind "127.0.0.1:$port" --database-url "sqlite://$tmp/generate.db" >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
  if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "generate.sh: the service exited; its log:" >&2
    cat "$tmp/server.log" >&2
    exit 1
  fi
  sleep 0.05
done

"$PY" - "$port" "$CLIENTS/openapi.json" <<'PYEOF'
import json, sys, urllib.request
port, out = sys.argv[1], sys.argv[2]
doc = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/openapi.json", timeout=10))
with open(out, "w") as f:
    json.dump(doc, f, indent=2, ensure_ascii=False)
    f.write("\n")
PYEOF

(cd "$CLIENTS/python" && "$PY" scripts/codegen.py "$CLIENTS/openapi.json")
(cd "$CLIENTS/typescript" && node scripts/codegen.mjs "$CLIENTS/openapi.json" src/generated/api.ts)
echo "generate.sh: wrote clients/openapi.json and both clients' generated types"
