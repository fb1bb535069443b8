"""Exact comparison of two builds' published results: ``python -m discbias.reproduce.compare A B``.

Where :mod:`discbias.reproduce.verify` compares a rebuild with a bundle within statistical
tolerances, this module asks whether a change to the code left the published results *exactly*
as they were: every ``results/*.csv`` cell (numbers parsed as floats and compared bit for bit,
text as text) and every ``values.json`` entry, except build stamps (dates, timings, the commit,
software versions: :data:`SKIP`). It is how a refactoring of the engine is checked against the
previous code's build.

Examples
--------
>>> import tempfile, pathlib, json
>>> a, b = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
>>> for d, x in ((a, "0.1"), (b, "0.1")):
...     (d / "results").mkdir(); _ = (d / "results" / "t.csv").write_text(f"model,estimate\\nm,{x}\\n")
...     _ = (d / "values.json").write_text(json.dumps({"n": 3, "meta": {"build_date": str(d)}}))
>>> compare_builds(a, b)
[]
>>> _ = (b / "results" / "t.csv").write_text("model,estimate\\nm,0.10000000000000002\\n")
>>> compare_builds(a, b)
['results/t.csv row 0 column estimate: 0.1 != 0.10000000000000002']
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

__all__ = ["compare_builds", "SKIP"]

#: Keys of ``values.json`` (dotted paths) and columns of results tables that are build stamps, not results
#: (``meta.config.config``: where the configuration lay on the building machine).
SKIP = re.compile(r"(^|\.)(build_date|created|finished|fit_seconds|build_seconds|seconds|sampling_seconds|elapsed|timings?|"
                  r"code_commit|software|discbias_version)($|\.)|seconds$|_time$|^meta\.config\.config$", re.I)


def _cell(x: str):
    try:
        return float(x)
    except ValueError:
        return x


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def _flatten(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, d


def compare_builds(a: str | Path, b: str | Path, *, limit: int = 50) -> list[str]:
    """The differences between two build folders' ``results/*.csv`` and ``values.json`` (empty: identical).

    Parameters
    ----------
    a, b : path
        Build folders (each holding ``results/`` and ``values.json``).
    limit : int
        At most this many differences per file are listed.
    """
    a, b = Path(a), Path(b)
    out: list[str] = []
    names = sorted({p.name for p in (a / "results").glob("*.csv")} | {p.name for p in (b / "results").glob("*.csv")})
    for name in names:
        pa, pb = a / "results" / name, b / "results" / name
        if not pa.exists() or not pb.exists():
            out.append(f"results/{name} only in {b if pb.exists() else a}")
            continue
        ra = list(csv.reader(pa.open(newline="")))
        rb = list(csv.reader(pb.open(newline="")))
        if ra[:1] != rb[:1]:
            out.append(f"results/{name}: columns differ: {ra[:1]} != {rb[:1]}")
            continue
        header = ra[0] if ra else []
        if len(ra) != len(rb):
            out.append(f"results/{name}: {len(ra) - 1} rows != {len(rb) - 1} rows")
        n = 0
        for i, (x, y) in enumerate(zip(ra[1:], rb[1:])):
            for col, u, v in zip(header, x, y):
                if SKIP.search(col) or _same(_cell(u), _cell(v)):
                    continue
                n += 1
                if n <= limit:
                    out.append(f"results/{name} row {i} column {col}: {u} != {v}")
        if n > limit:
            out.append(f"results/{name}: {n - limit} more differing cells")
    va, vb = a / "values.json", b / "values.json"
    if va.exists() != vb.exists():
        out.append(f"values.json only in {a if va.exists() else b}")
    elif va.exists():
        fa = dict(_flatten(json.loads(va.read_text())))
        fb = dict(_flatten(json.loads(vb.read_text())))
        n = 0
        for k in sorted(set(fa) | set(fb)):
            if SKIP.search(k):
                continue
            if k not in fa or k not in fb or not _same(fa[k], fb[k]) or type(fa[k]) is not type(fb[k]):
                n += 1
                if n <= limit:
                    out.append(f"values.json {k}: {fa.get(k, '(absent)')!r} != {fb.get(k, '(absent)')!r}")
        if n > limit:
            out.append(f"values.json: {n - limit} more differing entries")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m discbias.reproduce.compare", description=__doc__.splitlines()[0])
    p.add_argument("a", help="first build folder (results/, values.json)")
    p.add_argument("b", help="second build folder")
    args = p.parse_args(argv)
    diffs = compare_builds(args.a, args.b)
    for d in diffs:
        print(d)
    n = len(list(Path(args.a, "results").glob("*.csv")))
    print(f"{len(diffs)} difference(s) in {n} results tables and values.json", file=sys.stderr)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
