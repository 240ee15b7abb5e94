#!/usr/bin/env bash
# The long fault runs (issue 8): 10,000 deliveries at 1,000/s against the real
# binary — with the worker running, across a kill -9 at a random moment, and
# with two replicas on one PostgreSQL. CI runs the same tests with 500.
#
#   bash bench/faults.sh                # 10,000 deliveries at 1,000/s
#   DELIVERIES=2000 RATE=500 bash bench/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export SHIPGATE_LOAD_DELIVERIES="${DELIVERIES:-10000}"
export SHIPGATE_LOAD_RATE="${RATE:-1000}"
echo "== $SHIPGATE_LOAD_DELIVERIES deliveries at $SHIPGATE_LOAD_RATE/s; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
# One test at a time: each runs its own server(s) and load generator.
cargo test --release --test it load:: -- --test-threads=1 --nocapture 2>&1 |
  grep -E '^(test |sent |all done|killed at|[0-9]+ (deliveries|redeliveries))|test result|panicked|assert'
