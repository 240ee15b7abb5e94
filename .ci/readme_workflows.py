#!/usr/bin/env python3
"""Extract the GitHub Actions workflows that README.md shows, so that
.ci/lint-workflows can run actionlint and zizmor on exactly what people copy.

Usage: readme_workflows.py README.md OUTDIR

Every ```yaml fenced block with a top-level `jobs:` key is a workflow (the
other yaml blocks are shipgate's own config). Each is written to
OUTDIR/readme-L<line>.yml, <line> being the fence's line in the README, and
its path printed. The placeholders the README uses for what only the reader
knows are replaced by well-formed stand-ins:

    <owner>        -> example-owner
    <release-sha>  -> 40 hex digits (a release commit's SHA)

Exits 1 if the README has no workflow at all (a renamed fence must not turn
the check into a silent pass).
"""

import re
import sys
from pathlib import Path

PLACEHOLDERS = {
    "<owner>": "example-owner",
    "<release-sha>": "0123456789abcdef0123456789abcdef01234567",
}

FENCE_OPEN = re.compile(r"^(\s*)```ya?ml\s*$")
JOBS = re.compile(r"^jobs:", re.MULTILINE)


def blocks(text):
    """Yields (line number of the opening fence, block text), dedented."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1))
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            sys.exit(f"README line {i + 1}: a ```yaml block is never closed")
        body = [line[indent:] if line[:indent].strip() == "" else line for line in lines[start:j]]
        yield start, "\n".join(body) + "\n"
        i = j + 1


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    readme, outdir = Path(sys.argv[1]), Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    found = 0
    for line, body in blocks(readme.read_text(encoding="utf-8")):
        if not JOBS.search(body):
            continue
        for k, v in PLACEHOLDERS.items():
            body = body.replace(k, v)
        path = outdir / f"readme-L{line}.yml"
        path.write_text(body, encoding="utf-8")
        print(path)
        found += 1
    if found == 0:
        sys.exit(f"{readme}: no ```yaml workflow (a block with `jobs:`) found")


if __name__ == "__main__":
    main()
