"""Line counts of the orchestration and of the largest modules, at git revisions side by side.

Issue 21 ("One study engine") asks for the orchestration lines (engine + stages + pipeline +
imports + fitcache) and the ten largest modules before and after. This reads each revision's
files with ``git show`` (no checkout), so any two commits can be compared::

    python benchmarks/code_size.py 3a5fc36 main HEAD
    python benchmarks/code_size.py --json 3a5fc36 HEAD

Lines are physical lines (as ``wc -l``), of ``src/discbias/**/*.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The issue's orchestration modules (a module moved into a package is found by its file name).
ORCHESTRATION = ("engine.py", "stages.py", "pipeline.py", "imports.py", "fitcache.py")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout


def module_lines(rev: str) -> dict[str, int]:
    """``src/discbias`` module path -> physical line count at ``rev``."""
    files = [f for f in _git("ls-tree", "-r", "--name-only", rev, "src/discbias").splitlines() if f.endswith(".py")]
    out = {}
    for f in files:
        text = _git("show", f"{rev}:{f}")
        out[f.removeprefix("src/discbias/")] = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    return out


def orchestration(lines: dict[str, int]) -> dict[str, int]:
    """The orchestration modules' line counts (by path) and their ``total``."""
    out = {p: n for p, n in sorted(lines.items()) if Path(p).name in ORCHESTRATION}
    out["total"] = sum(out.values())
    return out


def summary(rev: str) -> dict:
    lines = module_lines(rev)
    commit = _git("rev-parse", "--short", rev).strip()
    largest = sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return dict(rev=rev, commit=commit, orchestration=orchestration(lines), largest=largest,
                package_total=sum(lines.values()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("revs", nargs="+", help="git revisions (commits, branches)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = [summary(r) for r in a.revs]
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    for r in res:
        print(f"== {r['rev']} ({r['commit']}): package {r['package_total']} lines")
        print("  orchestration: " + " + ".join(f"{Path(p).stem} {n}" for p, n in r["orchestration"].items()
                                                if p != "total") + f" = {r['orchestration']['total']}")
        print("  10 largest modules:")
        for p, n in r["largest"]:
            print(f"    {n:5d}  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
