#!/usr/bin/env bash
# Secret scan: shipgate's scanner against detect-secrets on the same corpora,
# one run.
#
#   bench/secrets-compare.sh [BUDGET_MIB]
#
# 1. Builds a fixed source-code corpus (bench/secrets-subset.py): whole crates
#    from Cargo.lock's crates.io packages, in sha256 order, from the local
#    cargo registry, about BUDGET_MIB (default 10) of text files.
# 2. shipgate: `cargo bench --bench secrets -- CORPUS ROUNDS` scans it
#    ROUNDS times (default 3) and then a copy with 232 planted secrets
#    (kept in the work directory, with the planted places, committed to git),
#    ROUNDS times.
# 3. detect-secrets (pinned, in bench/.venv) scans the same two directories
#    once each (`detect-secrets scan --all-files`, all plugins, all cores,
#    `.git/` excluded), after shipgate, so the page cache is warm for both.
# 4. Prints MiB/s for both (corpus bytes / wall time; shipgate: the median
#    round), the ratio, and recall on the planted set.
#
# Knobs: ROUNDS (3), DETECT_SECRETS_VERSION (1.5.0), KEEP_WORK=1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUDGET=${1:-10}
ROUNDS=${ROUNDS:-3}
DS_VERSION=${DETECT_SECRETS_VERSION:-1.5.0}
REGISTRY=${CARGO_HOME:-$HOME/.cargo}/registry/src

log() { printf '==> %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

VENV="$HERE/.venv"
if ! "$VENV/bin/detect-secrets" --version 2>/dev/null | grep -x "$DS_VERSION" >/dev/null; then
  log "installing detect-secrets==$DS_VERSION in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "detect-secrets==$DS_VERSION"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shipgate-secrets.XXXXXX")
cleanup() { if [ "${KEEP_WORK:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# Build the bench first: it also fetches the dev-dependencies, so the registry
# holds every Cargo.lock package before the corpus is chosen from it.
log "cargo bench --bench secrets --no-run"
(cd "$ROOT" && cargo bench -q --bench secrets --no-run)

log "building the corpus ($BUDGET MiB budget)"
python3 "$HERE/secrets-subset.py" "$ROOT/Cargo.lock" "$REGISTRY" "$WORK/corpus" "$BUDGET" | tee "$WORK/subset.txt"
CORPUS_BYTES=$(find "$WORK/corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
CORPUS_FILES=$(find "$WORK/corpus" -type f | wc -l)

log "cargo bench --bench secrets"
L0=$(load)
(cd "$ROOT" && SHIPGATE_BENCH_PLANTED_DIR="$WORK/planted" cargo bench -q --bench secrets -- "$WORK/corpus" "$ROUNDS") | tee "$WORK/shipgate.txt"
L1=$(load)
# The planted copy is a git repository: its .git/ is not corpus.
PLANTED_BYTES=$(find "$WORK/planted" -path "$WORK/planted/.git" -prune -o -type f -printf '%s\n' | awk '{s += $1} END {print s}')
PLANTED_FILES=$(find "$WORK/planted" -path "$WORK/planted/.git" -prune -o -type f -print | wc -l)

ds_scan() { # DIR OUT -> prints wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$1" && "$VENV/bin/detect-secrets" scan --all-files --exclude-files '(^|/)\.git/' . >"$2")
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
log "detect-secrets scan (corpus)"
L2=$(load)
DS_SECS=$(ds_scan "$WORK/corpus" "$WORK/ds-corpus.json")
L3=$(load)
log "detect-secrets scan (planted)"
DS_PL_SECS=$(ds_scan "$WORK/planted" "$WORK/ds-planted.json")
L4=$(load)

python3 - "$WORK" "$CORPUS_BYTES" "$CORPUS_FILES" "$PLANTED_BYTES" "$PLANTED_FILES" "$DS_SECS" "$DS_PL_SECS" "$ROUNDS" <<'EOF'
import csv, json, re, sys
work, cbytes, cfiles, pbytes, pfiles, ds_secs, ds_pl_secs, rounds = sys.argv[1:]
cbytes, pbytes, ds_secs, ds_pl_secs = int(cbytes), int(pbytes), float(ds_secs), float(ds_pl_secs)
out = open(f"{work}/shipgate.txt").read()
res = {}
for line in out.splitlines():
    if line.startswith("RESULT corpus="):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        res[kv["corpus"]] = kv
    elif line.startswith("RESULT recall"):
        kv = dict(x.split("=", 1) for x in line.split()[2:])
        res["recall"] = kv
MiB = 1048576
def ds_results(path):
    data = json.load(open(path))["results"]
    found = set()
    n = 0
    for fname, items in data.items():
        for it in items:
            n += 1
            found.add((fname.removeprefix("./"), it["line_number"]))
    return found, n
ds_found_c, ds_n_c = ds_results(f"{work}/ds-corpus.json")
ds_found_p, ds_n_p = ds_results(f"{work}/ds-planted.json")
planted = list(csv.DictReader(open(f"{work}/planted.planted.tsv"), delimiter="\t"))
hits = [p for p in planted if (p["path"], int(p["line"])) in ds_found_p]
missed_rules = {}
for p in planted:
    if (p["path"], int(p["line"])) not in ds_found_p:
        missed_rules[p["rule"]] = missed_rules.get(p["rule"], 0) + 1
sg_c, sg_p, sg_r = res["registry"], res["planted"], res["recall"]
sg_c_mibs = float(sg_c["median_mibs"])
sg_p_mibs = float(sg_p["median_mibs"])
ds_c_mibs = cbytes / MiB / ds_secs
ds_p_mibs = pbytes / MiB / ds_pl_secs
print()
print(f"corpus: {cfiles} files, {cbytes / MiB:.1f} MiB (shipgate scanned {int(sg_c['bytes']) / MiB:.1f} MiB in {sg_c['files']} files); "
      f"planted copy: {pfiles} files, {pbytes / MiB:.1f} MiB")
print(f"detect-secrets: corpus {ds_secs:.1f} s, {ds_n_c} findings; planted {ds_pl_secs:.1f} s, {ds_n_p} findings")
print(f"shipgate: corpus {sg_c['findings']} findings; planted {sg_p['findings']} findings")
print(f"detect-secrets missed (by planted kind): {dict(sorted(missed_rules.items()))}")
missed_shapes = {}
for p in planted:
    if (p["path"], int(p["line"])) not in ds_found_p:
        missed_shapes[p.get("shape", "-")] = missed_shapes.get(p.get("shape", "-"), 0) + 1
print(f"detect-secrets missed (by planted shape; env-file plants are path findings at line 0, which it has no rule for): {dict(sorted(missed_shapes.items()))}")
print()
print("| corpus | MiB | shipgate MiB/s (median of " + rounds + " rounds) | detect-secrets MiB/s (1 round) | ratio | recall shipgate (path, line, rule) | recall detect-secrets (path, line) |")
print("|---|---|---|---|---|---|---|")
print(f"| source code (subset of the cargo registry) | {cbytes / MiB:.1f} | {sg_c_mibs:,.1f} | {ds_c_mibs:.2f} | {sg_c_mibs / ds_c_mibs:,.0f}× | — | — |")
print(f"| planted copy ({len(planted)} secrets) | {pbytes / MiB:.1f} | {sg_p_mibs:,.1f} | {ds_p_mibs:.2f} | {sg_p_mibs / ds_p_mibs:,.0f}× | {sg_r['hits']}/{sg_r['planted']} | {len(hits)}/{len(planted)} |")
EOF
echo
echo "load average (1/5/15 min): shipgate bench $L0 -> $L1; detect-secrets corpus $L2 -> $L3, planted -> $L4"
echo "versions: $(rustc --version), $("$VENV/bin/python" --version), detect-secrets $("$VENV/bin/detect-secrets" --version)"
