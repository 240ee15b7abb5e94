#!/usr/bin/env bash
# GitHub REST API conformance run: runs a command (default `cargo test
# --locked`) with every fake GitHub of the integration tests behind prism,
# which validates each request and response against GitHub's published
# OpenAPI description. A test fails on any violation its requests caused;
# this script also fails when the whole run logged any, or validated none.
#
#   conformance/run.sh                          # the whole suite
#   conformance/run.sh cargo test --test it chatops::
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
[ $# -gt 0 ] || set -- cargo test --locked

if [ ! -x "$here/node_modules/.bin/prism" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi
out="${CARGO_TARGET_DIR:-$root/target}/conformance"
mkdir -p "$out"
rm -f "$out/requests.jsonl" "$out/prism.log"
spec="$out/api.github.com.json"
node "$here/spec.js" "$spec"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

node "$here/dispatch.js" >"$out/dispatch.port" 2>"$out/dispatch.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$out/dispatch.port" ] && break; sleep 0.1; done
dispatch_port="$(head -n1 "$out/dispatch.port")"

port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
started=$SECONDS
"$here/node_modules/.bin/prism" proxy "$spec" "http://127.0.0.1:$dispatch_port" \
  --host 127.0.0.1 --port "$port" --errors false --verboseLevel warn >"$out/prism.log" 2>&1 &
pids+=($!)
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  if ! kill -0 "${pids[1]}" 2>/dev/null; then
    cat "$out/prism.log" >&2
    echo "conformance: prism exited before listening" >&2
    exit 1
  fi
  if [ $((SECONDS - started)) -gt 300 ]; then
    echo "conformance: prism did not listen within 300 s" >&2
    exit 1
  fi
  sleep 0.5
done
echo "conformance: prism $("$here/node_modules/.bin/prism" --version) listening on 127.0.0.1:$port after $((SECONDS - started)) s"

export SHIPGATE_CONFORMANCE_PRISM="http://127.0.0.1:$port"
export SHIPGATE_CONFORMANCE_LOG="$out/requests.jsonl"
touch "$SHIPGATE_CONFORMANCE_LOG"
set +e
"$@"
status=$?
set -e
node "$here/summary.js" "$SHIPGATE_CONFORMANCE_LOG" || status=1
exit "$status"
