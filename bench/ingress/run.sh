#!/usr/bin/env bash
# Ingress benchmark: shipgate serve (SQLite) against a minimal Probot 14 app,
# same signed payloads, same load generator (wrk + webhook.lua), one run.
#
#   bench/ingress/run.sh
#
# Knobs (environment): DURATION (saturation runs, default 20s), RATE (1000),
# RATE_DURATION (30s), RATE_CONNS (32), THREADS (wrk -t, 2), WARMUP (5s),
# WORKER (SHIPGATE_WORKER_CONCURRENCY for shipgate, default 4 as shipped;
# 0 runs ingress only), DRAIN_TIMEOUT (seconds to wait for the worker to
# finish the backlog between phases, 60), ONLY (shipgate|probot, default both),
# KEEP_WORK=1 keeps the work directory (logs, database, raw wrk output),
# SHIPGATE_BIN=path benchmarks that binary instead of building this checkout,
# CEILING=1 also runs the ceiling (bench/ingress/ceiling: a Rust server that
# stores nothing) at its four stages, saturation phases only, after the others.
#
# Prints one RESULT line per phase and a Markdown table at the end.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-20s}
RATE=${RATE:-1000}
RATE_DURATION=${RATE_DURATION:-30s}
RATE_CONNS=${RATE_CONNS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-5s}
WORKER=${WORKER:-4}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
ONLY=${ONLY:-both}
SECRET=bench-webhook-secret

# The two real payloads (fixtures/webhooks-examples, from @octokit/webhooks-examples):
# an issue comment (created) and a pull request (opened), both with an
# installation, both events shipgate's handlers want (so each is stored).
P1_EVENT=issue_comment
P1_FILE=$ROOT/fixtures/webhooks-examples/issue_comment.3.json
P2_EVENT=pull_request
P2_FILE=$ROOT/fixtures/webhooks-examples/pull_request.12.json

# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"

# --- prerequisites -------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y wrk || { $SUDO apt-get update && $SUDO apt-get install -y wrk; }
fi
if [ "$ONLY" != shipgate ]; then
  log "npm ci (Probot app)"
  (cd "$HERE/probot" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -n "${SHIPGATE_BIN:-}" ]; then
  SHIPGATE=$SHIPGATE_BIN # a binary built elsewhere (e.g. an earlier commit, for a before/after)
else
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release --bin shipgate)
  SHIPGATE="$ROOT/target/release/shipgate"
  [ -n "${CARGO_TARGET_DIR:-}" ] && SHIPGATE="$CARGO_TARGET_DIR/release/shipgate"
fi

work_dir shipgate-ingress

# Bodies are sent byte for byte as in the fixture; the signature is computed once.
cp "$P1_FILE" "$WORK/p1.json"
cp "$P2_FILE" "$WORK/p2.json"
for p in p1 p2; do
  printf 'sha256=%s' "$(openssl dgst -sha256 -hmac "$SECRET" -r <"$WORK/$p.json" | cut -d' ' -f1)" >"$WORK/$p.sig"
done
PAYLOAD_ARGS=("$P1_EVENT" "$WORK/p1.json" "$WORK/p1.sig" "$P2_EVENT" "$WORK/p2.json" "$WORK/p2.sig")


cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
TCK=$(getconf CLK_TCK)

RESULTS="$WORK/results.tsv"
printf 'server\tphase\tconns\trequests\tduration_s\trps\tp50_ms\tp99_ms\tp999_ms\tmax_ms\tnon2xx\tsock_err\tcpu_pct\tload\n' >"$RESULTS"
RUNTAG=1

# phase SERVER PID URL PATH NAME CONNS DURATION RATE -> appends to RESULTS, prints RESULT
phase() {
  local server=$1 pid=$2 url=$3 path=$4 name=$5 conns=$6 dur=$7 rate=$8
  local out="$WORK/wrk-$server-$name.txt" t0 t1 l0
  l0=$(load)
  t0=$(cpu_ticks "$pid")
  wrk -t"$THREADS" -c"$conns" -d"$dur" --timeout 10s -s "$HERE/webhook.lua" "$url" -- \
    "$path" "$RUNTAG" "$rate" "$THREADS" "${PAYLOAD_ARGS[@]}" >"$out" 2>&1
  t1=$(cpu_ticks "$pid")
  RUNTAG=$((RUNTAG + 1))
  local r; r=$(grep '^RESULT' "$out") || { cat "$out" >&2; return 1; }
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$r"; }
  local secs; secs=$(get duration_s)
  local cpu; cpu=$(awk -v a="$t0" -v b="$t1" -v s="$secs" -v t="$TCK" 'BEGIN { printf "%.0f", 100 * (b - a) / t / s }')
  local sock; sock=$(( $(get connect_err) + $(get read_err) + $(get write_err) + $(get timeouts) ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$server" "$name" "$conns" "$(get requests)" "$secs" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" \
    "$(get p999_ms)" "$(get max_ms)" "$(get non2xx)" "$sock" "$cpu" "$l0 -> $(load)" >>"$RESULTS"
  echo "$server $name c=$conns: $r server_cpu=${cpu}% load=[$l0 -> $(load)]"
  PHASE_REQUESTS=$(get requests)
}

# --- shipgate ------------------------------------------------------------
db_query() { python3 - "$WORK/shipgate.db" "$1" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(con.execute(sys.argv[2]).fetchone()[0])
EOF
}
accepted_metric() {
  curl -s "http://127.0.0.1:$SG_PORT/metrics" |
    awk '/^shipgate_deliveries_received_total\{outcome="accepted"\}/ {print $2}'
}
SG_WRK_TOTAL=0
SG_CONN_TOTAL=0
check_stored() {
  # After a phase: every 2xx wrk counted is a stored row, and the only other
  # rows are requests still in flight when wrk stopped at its deadline (at most
  # one per connection; wrk closes those connections, and the server then
  # drops the request after the commit, so it never counts them as answered).
  local rows acc prev=-1
  while :; do # let in-flight requests settle
    # Internal work the worker stores (policy jobs) is not from wrk.
    rows=$(db_query "select count(*) from deliveries where event not like 'shipgate_%'")
    [ "$rows" = "$prev" ] && break
    prev=$rows; sleep 1
  done
  acc=$(accepted_metric)
  local verdict=ok
  if [ "$rows" -lt "$SG_WRK_TOTAL" ] || [ "$rows" -gt $((SG_WRK_TOTAL + SG_CONN_TOTAL)) ]; then
    verdict=MISMATCH
  fi
  echo "stored check: rows=$rows, wrk 2xx so far=$SG_WRK_TOTAL (+ at most $SG_CONN_TOTAL in flight at wrk's deadlines), server accepted_total=$acc -> $verdict"
  printf 'shipgate\tstored-check\t-\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n' "$rows" "rows=$rows wrk_2xx=$SG_WRK_TOTAL accepted_metric=$acc $verdict" >>"$RESULTS"
  [ "$verdict" = ok ]
}
drain() { # wait until the worker has no pending deliveries
  [ "$WORKER" = 0 ] && return 0
  local start=$SECONDS pending
  while :; do
    pending=$(db_query "select count(*) from deliveries where state in ('received','processing')")
    [ "$pending" = 0 ] && break
    if [ $((SECONDS - start)) -ge "$DRAIN_TIMEOUT" ]; then
      echo "worker backlog: still $pending pending after ${DRAIN_TIMEOUT}s"
      return 0
    fi
    sleep 1
  done
  echo "worker backlog drained in $((SECONDS - start))s ($(db_query "select count(*) from deliveries where state='done'") done, $(db_query "select count(*) from deliveries where state='failed'") failed)"
}

sg_phase() {
  phase shipgate "$SG_PID" "http://127.0.0.1:$SG_PORT" /webhook "$@"
  local non2xx; non2xx=$(tail -1 "$RESULTS" | cut -f11)
  SG_WRK_TOTAL=$((SG_WRK_TOTAL + PHASE_REQUESTS - non2xx))
  SG_CONN_TOTAL=$((SG_CONN_TOTAL + $2))
  check_stored
  drain
}

if [ "$ONLY" != probot ]; then
  STUB_PORT=$(free_port)
  PORT=$STUB_PORT STUB_COUNTS="$WORK/stub-counts.json" node "$HERE/github-stub.mjs" >"$WORK/stub.log" 2>&1 &
  STUB_PID=$!; PIDS+=("$STUB_PID")
  wait_http "http://127.0.0.1:$STUB_PORT/"

  SG_PORT=$(free_port)
  log "shipgate serve on 127.0.0.1:$SG_PORT, sqlite $WORK/shipgate.db, worker concurrency $WORKER, GitHub stub on $STUB_PORT"
  env -i PATH="$PATH" HOME="$HOME" \
    SHIPGATE_WEBHOOK_SECRET=$SECRET GITHUB_TOKEN=bench-token \
    GITHUB_API_URL="http://127.0.0.1:$STUB_PORT" \
    SHIPGATE_LISTEN="127.0.0.1:$SG_PORT" DATABASE_URL="sqlite://$WORK/shipgate.db" \
    SHIPGATE_WORKER_CONCURRENCY="$WORKER" SHIPGATE_LOG_FORMAT=json \
    "$SHIPGATE" serve >"$WORK/shipgate.log" 2>&1 &
  SG_PID=$!; PIDS+=("$SG_PID")
  wait_http "http://127.0.0.1:$SG_PORT/readyz"
  STUB_T0=$(cpu_ticks "$STUB_PID")

  sg_phase warmup 16 "$WARMUP" 0
  sg_phase "rate$RATE" "$RATE_CONNS" "$RATE_DURATION" "$RATE"
  sg_phase sat16 16 "$DURATION" 0
  sg_phase sat64 64 "$DURATION" 0
  SG_HWM=$(hwm_kib "$SG_PID"); SG_RSS=$(rss_kib "$SG_PID")
  # Bytes the server process sent towards the disk (database, WAL, and its
  # log file), per delivery stored: the store's write cost, free of timing noise.
  SG_WRITTEN=$(awk '/^write_bytes:/ {print $2}' "/proc/$SG_PID/io")
  SG_ROWS=$(db_query "select count(*) from deliveries")
  echo "shipgate disk writes: $((SG_WRITTEN >> 20)) MiB for $SG_ROWS deliveries, $(awk -v b="$SG_WRITTEN" -v n="$SG_ROWS" 'BEGIN { printf "%.1f", b / n / 1024 }') KiB each"
  echo "shipgate peak RSS (VmHWM) ${SG_HWM} KiB, RSS now ${SG_RSS} KiB"
  printf 'shipgate\tpeak-rss\t-\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n' "$SG_HWM" >>"$RESULTS"
  STUB_CPU=$(awk -v a="$STUB_T0" -v b="$(cpu_ticks "$STUB_PID")" -v t="$TCK" 'BEGIN { printf "%.1f", (b - a) / t }')
  echo "deliveries by state: $(db_query "select group_concat(state || '=' || n, ' ') from (select state, count(*) n from deliveries group by state)")"
  echo "database: $(du -k "$WORK"/shipgate.db* | awk '{s += $1} END {print s " KiB"}')"
  kill "$SG_PID"; wait "$SG_PID" 2>/dev/null || true
  kill "$STUB_PID"; wait "$STUB_PID" 2>/dev/null || true
  echo "GitHub stub: ${STUB_CPU} CPU seconds; requests $(tr -d '\n ' <"$WORK/stub-counts.json")"
  echo "shipgate log lines: $(wc -l <"$WORK/shipgate.log"); warnings/errors: $(grep -c '"level":"\(WARN\|ERROR\)"' "$WORK/shipgate.log" || true)"
fi

# --- Probot --------------------------------------------------------------
if [ "$ONLY" != shipgate ]; then
  PB_PORT=$(free_port)
  log "Probot on 127.0.0.1:$PB_PORT"
  (cd "$HERE/probot" && exec env -i PATH="$PATH" HOME="$HOME" \
    APP_ID=1 PRIVATE_KEY_PATH="$ROOT/tests/fixtures/test-app-key.pem" WEBHOOK_SECRET=$SECRET \
    HOST=127.0.0.1 PORT="$PB_PORT" LOG_LEVEL=info LOG_FORMAT=json NODE_ENV=production \
    node server.js >"$WORK/probot.log" 2>&1) &
  PB_PID=$!; PIDS+=("$PB_PID")
  wait_http "http://127.0.0.1:$PB_PORT/ping"
  pb_phase() { phase probot "$PB_PID" "http://127.0.0.1:$PB_PORT" /api/github/webhooks "$@"; }
  pb_phase warmup 16 "$WARMUP" 0
  pb_phase "rate$RATE" "$RATE_CONNS" "$RATE_DURATION" "$RATE"
  pb_phase sat16 16 "$DURATION" 0
  pb_phase sat64 64 "$DURATION" 0
  PB_HWM=$(hwm_kib "$PB_PID")
  echo "probot peak RSS (VmHWM) ${PB_HWM} KiB"
  printf 'probot\tpeak-rss\t-\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n' "$PB_HWM" >>"$RESULTS"
  echo "probot log lines: $(wc -l <"$WORK/probot.log"); errors: $(grep -c '"level":[56]0' "$WORK/probot.log" || true)"
  kill "$PB_PID"; wait "$PB_PID" 2>/dev/null || true
fi

# --- ceiling -------------------------------------------------------------
if [ "${CEILING:-0}" = 1 ]; then
  log "cargo build --release (ceiling)"
  (cd "$HERE/ceiling" && cargo build --release --locked)
  for stage in 0 1 2 3; do
    CE_PORT=$(free_port)
    LISTEN="127.0.0.1:$CE_PORT" STAGE=$stage "$HERE/ceiling/target/release/ingress-ceiling" >"$WORK/ceiling-$stage.log" 2>&1 &
    CE_PID=$!; PIDS+=("$CE_PID")
    wait_http "http://127.0.0.1:$CE_PORT/"
    ce_phase() { phase "ceiling$stage" "$CE_PID" "http://127.0.0.1:$CE_PORT" /webhook "$@"; }
    ce_phase warmup 16 "$WARMUP" 0
    ce_phase sat16 16 "$DURATION" 0
    ce_phase sat64 64 "$DURATION" 0
    kill "$CE_PID"; wait "$CE_PID" 2>/dev/null || true
  done
fi

# --- summary -------------------------------------------------------------
echo
# What was benchmarked: the checkout (with -dirty when it had uncommitted
# changes, which the build included), or a binary built elsewhere.
CHECKOUT=$(cd "$ROOT" && git describe --always --dirty)
if [ -n "${SHIPGATE_BIN:-}" ]; then WHAT="binary $SHIPGATE_BIN, not built by this run; checkout $CHECKOUT"; else WHAT=$CHECKOUT; fi
echo "versions: $("$SHIPGATE" --version 2>/dev/null || echo shipgate) ($WHAT), $(rustc --version), node $(node --version), probot $(node -p 'require("'"$HERE"'/probot/node_modules/probot/package.json").version'), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo
python3 - "$RESULTS" "$RATE" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
rate = sys.argv[2]
def get(server, phase):
    return next((r for r in rows if r["server"] == server and r["phase"] == phase), None)
def f(x, fmt="{:,.0f}"):
    return "—" if x in (None, "", "-") else fmt.format(float(x))
print("| | shipgate | Probot | ratio |")
print("|---|---|---|---|")
for phase, label in (("sat16", "saturation, 16 connections (req/s)"), ("sat64", "saturation, 64 connections (req/s)")):
    s, p = get("shipgate", phase), get("probot", phase)
    ratio = f"{float(s['rps']) / float(p['rps']):.2f}×" if s and p else "—"
    print(f"| {label} | {f(s and s['rps'])} | {f(p and p['rps'])} | {ratio} |")
for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
    s, p = get("shipgate", f"rate{rate}"), get("probot", f"rate{rate}")
    print(f"| latency {label} at {rate} req/s (ms) | {f(s and s[key], '{:.2f}')} | {f(p and p[key], '{:.2f}')} | |")
s, p = get("shipgate", f"rate{rate}"), get("probot", f"rate{rate}")
print(f"| achieved rate in the fixed-rate run (req/s) | {f(s and s['rps'], '{:,.1f}')} | {f(p and p['rps'], '{:,.1f}')} | |")
s, p = get("shipgate", "peak-rss"), get("probot", "peak-rss")
print(f"| peak RSS, VmHWM (MiB) | {f(s and float(s['requests']) / 1024, '{:.1f}')} | {f(p and float(p['requests']) / 1024, '{:.1f}')} | |")
if get("ceiling0", "sat16"):
    print()
    print("Ceiling (stores nothing; 0 = read and answer, 1 = + HMAC, 2 = + envelope, 3 = + lz4):")
    print()
    print("| | " + " | ".join(f"stage {n}" for n in range(4)) + " | Probot |")
    print("|---|---|---|---|---|---|")
    for phase in ("sat16", "sat64"):
        cells = [f(get(f"ceiling{n}", phase) and get(f"ceiling{n}", phase)["rps"]) for n in range(4)]
        p = get("probot", phase)
        print(f"| {phase} (req/s) | " + " | ".join(cells) + f" | {f(p and p['rps'])} |")
print()
print("| server | phase | conns | requests | req/s | p50 ms | p99 ms | p99.9 ms | max ms | non-2xx | socket errors | server CPU % | load avg (1/5/15 min) before -> after |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if r["phase"] in ("peak-rss", "stored-check"):
        continue
    print(f"| {r['server']} | {r['phase']} | {r['conns']} | {int(r['requests']):,} | {float(r['rps']):,.0f} | {r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} | {r['max_ms']} | {r['non2xx']} | {r['sock_err']} | {r['cpu_pct']} | {r['load']} |")
for r in rows:
    if r["phase"] == "stored-check":
        print(f"\nshipgate stored check: {r['load']}", end="")
print()
EOF
