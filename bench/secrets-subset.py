#!/usr/bin/env python3
"""Build the fixed source-code corpus for bench/secrets-compare.sh.

    secrets-subset.py CARGO_LOCK REGISTRY_SRC OUT_DIR BUDGET_MIB

Takes the crates.io packages pinned in CARGO_LOCK (shipgate's own
dependencies), orders them by sha256("name-version") (a fixed, unbiased
order), and copies the text files of whole crates from REGISTRY_SRC/<index>/
until BUDGET_MIB is reached. A file is copied with the same rule as the
planted corpus of bench/secrets.rs: at most 512 KiB, no NUL byte in its first
8 KiB, not a dotfile, a dot in its name. Prints the crate list and totals.
The same Cargo.lock gives the same corpus on any machine that has built it.
"""
import hashlib
import os
import shutil
import sys
import tomllib


def main() -> None:
    lock, registry, out, budget_mib = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    budget = int(budget_mib * 1024 * 1024)
    with open(lock, "rb") as f:
        packages = tomllib.load(f)["package"]
    indexes = sorted(
        os.path.join(registry, d) for d in os.listdir(registry) if d.startswith("index.crates.io-")
    )
    crates = []
    for p in packages:
        if not str(p.get("source", "")).startswith("registry+"):
            continue
        nv = f"{p['name']}-{p['version']}"
        where = next((os.path.join(i, nv) for i in indexes if os.path.isdir(os.path.join(i, nv))), None)
        if where is None:
            print(f"missing in the registry, skipped: {nv}", file=sys.stderr)
            continue
        crates.append((hashlib.sha256(nv.encode()).hexdigest(), nv, where))
    crates.sort()
    os.makedirs(out, exist_ok=False)
    total, files, used = 0, 0, []
    for _, nv, where in crates:
        if total >= budget:
            break
        for dirpath, dirnames, filenames in os.walk(where):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or "." not in name:
                    continue
                src = os.path.join(dirpath, name)
                if os.path.islink(src) or not os.path.isfile(src):
                    continue
                size = os.path.getsize(src)
                if size > 512 * 1024:
                    continue
                with open(src, "rb") as f:
                    if b"\0" in f.read(8192):
                        continue
                dst = os.path.join(out, nv, os.path.relpath(src, where))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
                total += size
                files += 1
        used.append(nv)
    print(f"subset: {len(used)} crates, {files} files, {total} bytes ({total / 1048576:.1f} MiB)")
    print("crates: " + " ".join(used))


if __name__ == "__main__":
    main()
