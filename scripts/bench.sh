#!/usr/bin/env bash
# Load benchmark: builds the service and limitry-bench in release mode, then runs the bench
# with 1,000 and with 1,000,000 preloaded events and prints both reports.
#
#   scripts/bench.sh [limitry-bench flags, e.g. --database-url postgres://postgres@127.0.0.1:5432/postgres]
#
# Scenarios: bare GET /healthz (the baseline), check, consume (a check that records), single record, batch, mixed (checks and
# records at once, with the share of checks answered from memory read from GET /metrics) and,
# on PostgreSQL only, two service instances on one database whose checks must then agree
# exactly with the stored events.
#
# Each run starts its own service on a free 127.0.0.1 port against a fresh database, and
# stops it and removes the database when done. JSON reports go to target/bench/.
# Exits non-zero if any request failed or the two instances disagreed with the stored events.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p limitry -p limitry-bench

out_dir=target/bench
mkdir -p "$out_dir"
status=0
for events in 1000 1000000; do
  echo
  echo "=== limitry-bench --events $events $* ==="
  # Keep going after a failed run so both reports are printed; fail at the end.
  ./target/release/limitry-bench --events "$events" --out "$out_dir/report-$events.json" "$@" || status=$?
done
exit "$status"
