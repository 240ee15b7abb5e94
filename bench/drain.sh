#!/usr/bin/env bash
# Backlog drain: how fast `shipgate serve` works off a stored backlog.
#
#   bench/drain.sh
#
# 1. Fill: `shipgate serve` with the worker off (SHIPGATE_WORKER_CONCURRENCY=0)
#    takes DELIVERIES signed webhooks from wrk (bench/ingress/webhook.lua):
#    the two real payloads of the ingress benchmark (an issue comment and a
#    pull request opened), each rewritten for REPOS repositories
#    (bench/drain-NN), so the backlog is spread over REPOS repositories of one
#    installation. Then the server stops.
# 2. Drain: `shipgate serve` starts again on the same SQLite file with the
#    worker as shipped (WORKER, default 4 loops), against the loopback GitHub
#    stub (bench/ingress/github-stub.mjs). The time from its start until no
#    delivery is pending is the drain time.
#
# Each mode drains its own copy of the same filled database. MODES (default
# "missing config"): `missing`, the stub answers 404 to everything, as GitHub
# does for repositories without .github/shipgate.yml; `config`, every
# repository has bench/drain-config.yml, served with an ETag and answered 304
# when unchanged. BINS="before=PATH after=PATH" drains with each binary in
# turn (each mode, alternating, ROUNDS times); without it, this checkout is
# built and drained.
#
# Knobs: DELIVERIES (100000), REPOS (20), WORKER (4), ROUNDS (1),
# FILL_CONNS (64), DRAIN_TIMEOUT (seconds, 600), KEEP_WORK=1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DELIVERIES=${DELIVERIES:-100000}
REPOS=${REPOS:-20}
WORKER=${WORKER:-4}
ROUNDS=${ROUNDS:-1}
FILL_CONNS=${FILL_CONNS:-64}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
MODES=${MODES:-missing config}
SECRET=bench-webhook-secret

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y wrk || { $SUDO apt-get update && $SUDO apt-get install -y wrk; }
fi
if [ -z "${BINS:-}" ]; then
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release --bin shipgate)
  BINS="this=${CARGO_TARGET_DIR:-$ROOT/target}/release/shipgate"
fi

work_dir shipgate-drain


# --- payloads: two fixtures × REPOS repositories ---------------------------
PAYLOAD_ARGS=()
for n in $(seq -w 1 "$REPOS"); do
  for pair in "issue_comment issue_comment.3" "pull_request pull_request.12"; do
    set -- $pair
    out="$WORK/$2-$n.json"
    python3 - "$ROOT/fixtures/webhooks-examples/$2.json" "$out" "bench/drain-$n" <<'EOF'
import json, sys
src, out, full = sys.argv[1:]
d = json.load(open(src))
owner, name = full.split("/")
d["repository"]["full_name"] = full
d["repository"]["name"] = name
d["repository"]["owner"]["login"] = owner
open(out, "w").write(json.dumps(d))
EOF
    printf 'sha256=%s' "$(openssl dgst -sha256 -hmac "$SECRET" -r <"$out" | cut -d' ' -f1)" >"$out.sig"
    PAYLOAD_ARGS+=("$1" "$out" "$out.sig")
  done
done

db_query() { python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(con.execute(sys.argv[2]).fetchone()[0])
EOF
}

serve() { # DB WORKER BIN STUB_PORT -> starts, sets SG_PID SG_PORT
  SG_PORT=$(free_port)
  env -i PATH="$PATH" HOME="$HOME" \
    SHIPGATE_WEBHOOK_SECRET=$SECRET GITHUB_TOKEN=bench-token \
    GITHUB_API_URL="http://127.0.0.1:$4" \
    SHIPGATE_LISTEN="127.0.0.1:$SG_PORT" DATABASE_URL="sqlite://$1" \
    SHIPGATE_WORKER_CONCURRENCY="$2" SHIPGATE_LOG_FORMAT=json \
    "$3" serve >>"$1.log" 2>&1 &
  SG_PID=$!; PIDS+=("$SG_PID")
}

# --- fill ------------------------------------------------------------------
FIRST_BIN=${BINS%% *}; FIRST_BIN=${FIRST_BIN#*=}
FILLED="$WORK/filled.db"
serve "$FILLED" 0 "$FIRST_BIN" 9 # no GitHub calls without a worker
wait_http "http://127.0.0.1:$SG_PORT/readyz"
log "filling $DELIVERIES deliveries over $REPOS repositories"
FILL_START=$SECONDS
MAX_REQUESTS=$DELIVERIES wrk -t1 -c"$FILL_CONNS" -d600s --timeout 10s -s "$HERE/ingress/webhook.lua" \
  "http://127.0.0.1:$SG_PORT" -- /webhook 1 0 1 "${PAYLOAD_ARGS[@]}" >"$WORK/fill.txt"
FILL_SECS=$((SECONDS - FILL_START))
grep -q '^FILLED' "$WORK/fill.txt" || { cat "$WORK/fill.txt" >&2; log "wrk did not finish the fill"; exit 1; }
kill "$SG_PID"; wait "$SG_PID" 2>/dev/null || true
ROWS=$(db_query "$FILLED" "select count(*) from deliveries")
PENDING=$(db_query "$FILLED" "select count(*) from deliveries where state in ('received','processing')")
echo "filled: $ROWS deliveries stored ($PENDING pending) over $(db_query "$FILLED" "select count(distinct repository) from deliveries") repositories; fill took ${FILL_SECS}s"
[ "$PENDING" -ge "$DELIVERIES" ] || { log "the fill stored fewer than $DELIVERIES"; exit 1; }

cat >"$WORK/shipgate.yml" <<'EOF'
default_environment: staging
environments:
  staging:
    deployers: write
  production:
    deployers: [alice]
    required_checks: [ci]
EOF

# --- drain -----------------------------------------------------------------
printf 'binary\tmode\tround\tdeliveries\tseconds\tper_s\tdone\tfailed\tgithub_requests\tload\n' >"$WORK/results.tsv"
drain() { # LABEL BIN MODE ROUND
  local label=$1 bin=$2 mode=$3 round=$4 db="$WORK/drain-$1-$3-$4.db"
  cp "$FILLED" "$db"
  for ext in -wal -shm; do [ -f "$FILLED$ext" ] && cp "$FILLED$ext" "$db$ext"; done
  local stub_port; stub_port=$(free_port)
  local stub_env=()
  [ "$mode" = config ] && stub_env=(STUB_CONFIG="$WORK/shipgate.yml")
  env PORT="$stub_port" STUB_COUNTS="$db.stub.json" "${stub_env[@]}" node "$HERE/ingress/github-stub.mjs" >"$db.stub.log" 2>&1 &
  local stub_pid=$!; PIDS+=("$stub_pid")
  wait_http "http://127.0.0.1:$stub_port/"
  local l0; l0=$(load)
  # One poller, started first, times the drain from the server's start.
  python3 - "$db" "$DRAIN_TIMEOUT" >"$db.drain" <<'EOF' &
import sqlite3, sys, time
db, timeout = sys.argv[1], float(sys.argv[2])
start = time.monotonic()
con = None
while time.monotonic() - start < timeout:
    try:
        con = con or sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        pending = con.execute("select count(*) from deliveries where state in ('received','processing')").fetchone()[0]
    except sqlite3.Error:
        pending = None
    if pending == 0:
        print(f"{time.monotonic() - start:.3f}")
        sys.exit(0)
    time.sleep(0.05)
print("timeout")
EOF
  local poller=$!
  serve "$db" "$WORKER" "$bin" "$stub_port"
  wait "$poller" || true
  kill "$SG_PID"; wait "$SG_PID" 2>/dev/null || true
  kill "$stub_pid"; wait "$stub_pid" 2>/dev/null || true
  local secs; secs=$(cat "$db.drain")
  local done failed requests rate
  done=$(db_query "$db" "select count(*) from deliveries where state='done'")
  failed=$(db_query "$db" "select count(*) from deliveries where state='failed'")
  requests=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$db.stub.json")
  rate=$(awk -v n="$PENDING" -v s="$secs" 'BEGIN { if (s == "timeout") print "-"; else printf "%.0f", n / s }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$mode" "$round" "$PENDING" "$secs" "$rate" "$done" "$failed" "$requests" "$l0 -> $(load)" >>"$WORK/results.tsv"
  echo "$label $mode round $round: $PENDING deliveries in ${secs}s = $rate/s; done=$done failed=$failed; GitHub stub: $(tr -d '\n ' <"$db.stub.json"); load $l0 -> $(load)"
  [ "${KEEP_WORK:-0}" = 1 ] || rm -f "$db" "$db-wal" "$db-shm"
}

for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    for b in $BINS; do
      drain "${b%%=*}" "${b#*=}" "$mode" "$round"
    done
  done
done

echo
echo "versions: $(cd "$ROOT" && git describe --always --dirty); BINS=$BINS; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo
echo "| binary | mode | round | deliveries | seconds | deliveries/s | done | failed | GitHub requests | load before -> after |"
echo "|---|---|---|---|---|---|---|---|---|---|"
tail -n +2 "$WORK/results.tsv" | while IFS=$'\t' read -r a b c d e f g h i j; do
  echo "| $a | $b | $c | $d | $e | $f | $g | $h | $i | $j |"
done
