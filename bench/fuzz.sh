#!/usr/bin/env bash
# Fuzzing (see bench/BENCHMARKS.md, "Fuzzing"): seeds the corpora from the
# fixtures, builds the cargo-fuzz targets (nightly, AddressSanitizer, debug
# assertions) and runs each for SECONDS, one after another, one job each.
# Fails when any target finds a crash (kept in fuzz/artifacts/<target>/).
#
#   bench/fuzz.sh [SECONDS] [TARGET...]    # default: 600 s, every target
#
# Logs go to fuzz/logs/<target>.log; the summary line of each target (runs,
# exec/s, coverage, features, corpus) is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds="${1:-600}"
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(commands repo_config signature webhook_payload)
fi

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
rustup run nightly rustc --version
if ! cargo fuzz --version 2>/dev/null | grep -F "$CARGO_FUZZ_VERSION" >/dev/null; then
  cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
cargo fuzz --version

step "seed corpora (from fixtures/ and README.md)"
cargo run --locked --quiet --example fuzz_seeds -- fuzz/corpus

step "build the targets"
# -a: debug assertions (overflow checks) on, as in tests.
cargo +nightly fuzz build -a

mkdir -p fuzz/logs
failed=()
for t in "${targets[@]}"; do
  step "fuzz $t for ${seconds}s"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
  if cargo +nightly fuzz run -a "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${dict[@]}" \
    >"fuzz/logs/$t.log" 2>&1; then
    echo "no crash"
  else
    failed+=("$t")
    echo "FAILED: see fuzz/logs/$t.log and fuzz/artifacts/$t/"
    grep -E "^(==[0-9]+==|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)" "fuzz/logs/$t.log" | head -n 20 || true
  fi
done

step "summary"
for t in "${targets[@]}"; do
  log="fuzz/logs/$t.log"
  last=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE).*cov:' "$log" | tail -n 1 || true)
  runs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  printf '%-16s runs %-10s exec/s %-7s %s\n' "$t" "$runs" "$rate" \
    "$(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashes in: ${failed[*]}" >&2
  exit 1
fi
