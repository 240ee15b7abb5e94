#!/usr/bin/env bash
# Secret scan, two builds side by side: `cargo bench --bench secrets` in two
# work trees (say main before a change and the change), same corpus, same
# planted-corpus generator, alternating, in one run.
#
#   bench/secrets-ab.sh BEFORE_TREE AFTER_TREE [CORPUS] [ROUNDS] [PASSES]
#
# Each tree builds with its own target directory ($CARGO_TARGET_DIR of the
# tree if set in BEFORE_TARGET / AFTER_TARGET, else TREE/target). Both must
# have the same bench/secrets.rs (copy it: the generator decides what is
# planted); the script refuses otherwise. CORPUS defaults to the local cargo
# registry sources, ROUNDS to 3, PASSES (before, after, before, after, …) to 2.
# Prints every RESULT line with its tree and pass, the load average around
# each run, and a summary: recall per shape, findings on the unplanted
# corpus, MiB/s (median round) per pass.
set -euo pipefail

BEFORE=$(cd "$1" && pwd)
AFTER=$(cd "$2" && pwd)
CORPUS=${3:-${CARGO_HOME:-$HOME/.cargo}/registry/src}
ROUNDS=${4:-3}
PASSES=${5:-2}
BEFORE_TARGET=${BEFORE_TARGET:-$BEFORE/target}
AFTER_TARGET=${AFTER_TARGET:-$AFTER/target}

if ! cmp -s "$BEFORE/bench/secrets.rs" "$AFTER/bench/secrets.rs"; then
  echo "bench/secrets.rs differs between $BEFORE and $AFTER: copy it so both plant the same corpus" >&2
  exit 2
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/shipgate-secrets-ab.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

echo "before: $BEFORE ($(git -C "$BEFORE" rev-parse --short HEAD)$(git -C "$BEFORE" diff --quiet -- src || echo ', src modified'))"
echo "after:  $AFTER ($(git -C "$AFTER" rev-parse --short HEAD)$(git -C "$AFTER" diff --quiet -- src || echo ', src modified'))"
echo "corpus: $CORPUS; rounds: $ROUNDS; passes: $PASSES; $(nproc) CPUs; $(rustc --version)"
for side in before after; do
  tree=$BEFORE; target=$BEFORE_TARGET
  [ $side = after ] && { tree=$AFTER; target=$AFTER_TARGET; }
  (cd "$tree" && CARGO_TARGET_DIR=$target cargo bench -q --bench secrets --no-run) >&2
done
for pass in $(seq 1 "$PASSES"); do
  for side in before after; do
    tree=$BEFORE; target=$BEFORE_TARGET
    [ $side = after ] && { tree=$AFTER; target=$AFTER_TARGET; }
    l0=$(load)
    (cd "$tree" && CARGO_TARGET_DIR=$target cargo bench -q --bench secrets -- "$CORPUS" "$ROUNDS") >"$OUT/$side-$pass.txt"
    l1=$(load)
    echo "== $side, pass $pass: load average $l0 -> $l1"
    grep -v '^RESULT' "$OUT/$side-$pass.txt" | grep -v '^  [a-z0-9-]* *[0-9]* / [0-9]*$' || true
    sed "s/^RESULT /RESULT side=$side pass=$pass /" "$OUT/$side-$pass.txt" | grep '^RESULT' >>"$OUT/results.txt"
  done
done

echo
python3 - "$OUT/results.txt" "$PASSES" <<'EOF'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv) | {"kind": line.split()[3].split("=")[0]}
        for line in open(sys.argv[1])]
passes = int(sys.argv[2])
def get(side, p, pred):
    return [r for r in rows if r["side"] == side and r["pass"] == str(p) and pred(r)]
shapes = [r["name"] for r in rows if r["side"] == "before" and r["pass"] == "1" and r["kind"] == "shape"]
print("| shape | before | after |")
print("|---|---|---|")
for s in shapes:
    cells = []
    for side in ("before", "after"):
        r = get(side, 1, lambda r: r.get("name") == s)[0]
        cells.append(f"{r['hits']} / {r['planted']}")
    print(f"| {s} | {cells[0]} | {cells[1]} |")
for side in ("before", "after"):
    r = get(side, 1, lambda r: r["kind"] == "recall")[0]
    o = get(side, 1, lambda r: r["kind"] == "others")[0]
    c = get(side, 1, lambda r: r.get("corpus") == "registry")[0]
    print(f"{side}: recall {r['hits']} / {r['planted']} = {100 * int(r['hits']) / int(r['planted']):.1f} %; "
          f"unplanted corpus {c['findings']} findings ({c['errors']} errors); "
          f"planted copy, not planted: {o['findings']} ({o['errors']} errors)")
print()
print("| pass | side | unplanted corpus: MiB/s median (best) | planted copy (git): MiB/s median (best) |")
print("|---|---|---|---|")
for p in range(1, passes + 1):
    for side in ("before", "after"):
        c = get(side, p, lambda r: r.get("corpus") == "registry")[0]
        pl = get(side, p, lambda r: r.get("corpus") == "planted")[0]
        print(f"| {p} | {side} | {c['median_mibs']} ({c['best_mibs']}) | {pl['median_mibs']} ({pl['best_mibs']}) |")
EOF
