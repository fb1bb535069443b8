"""Benchmark: a clean `make report` from a fresh clone, this commit side by side with a previous one.

Run from the repository root (the released data through ``DISCBIAS_DATA_MIRROR``):

    PYTHONPATH=src python benchmarks/bench_report.py [--ref main] [--repeats 1] [--venv .venv] [--keep]

For each of the two commits (``HEAD`` of this checkout and ``--ref``, default ``main``) it
``git clone``s the repository into a temporary folder, checks the commit out and runs a clean
``make report`` there, alternating the two (``--repeats`` rounds, ref first in each), and records
the wall time, the CPU seconds of make and its children, and the load average before and after.

The virtual environment is **shared, not rebuilt**: every clone runs with ``VENV=<--venv>``
(default: this checkout's ``.venv``), make is told the venv is up to date (``-o
<venv>/.installed``, so a clone's newer ``pyproject.toml`` never reinstalls into it) and
``PYTHONPATH=<clone>/src``, so each clone's own code is imported even though the venv's editable
install points elsewhere. ``make setup`` is therefore not part of the time (it is 2-3 minutes on a
fresh machine, README). Each clone starts without ``build/`` and ``data/``, so it fetches from the
mirror, measures, fits every model (empty fit cache) and renders.

Prints and writes to ``benchmarks/results/bench_report.json``: the wall time of each build, the
ratio this/ref (median over rounds), the load average, the per-step table of the new build
(``build/engine/timings.csv``; for a ref without it, the seconds from its step manifests), and
which files of ``build/results`` differ between the two builds (numbers are compared by
``discbias verify`` semantics elsewhere; here only listed). With machines shared with other jobs
the absolute times mean little: compare the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _git(*args, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def clone(repo: Path, commit: str, dest: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(repo), str(dest)], check=True)
    _git("checkout", "--quiet", commit, cwd=dest)
    return dest


def step_table(build: Path) -> pd.DataFrame:
    """Per-step seconds of a build: its ``engine/timings.csv`` or, without one, its manifests."""
    t = build / "engine" / "timings.csv"
    if t.exists():
        return pd.read_csv(t)[["stage", "step", "status", "seconds", "cpu_seconds"]]
    rows = []
    for m in sorted((build / "engine" / "manifests").glob("*.json")):
        d = json.loads(m.read_text())
        rows.append(dict(stage=d.get("group", ""), step=d.get("step", m.stem), status="ran", seconds=d.get("seconds")))
    return pd.DataFrame(rows)


def make_report(clone_dir: Path, venv: Path, config: str, log: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(clone_dir / "src"))
    env.pop("DISCBIAS_NO_FIT_CACHE", None)
    cmd = ["make", "report", f"VENV={venv}", f"CONFIG={config}", "-o", f"{venv}/.installed"]
    l0, c0, w0 = os.getloadavg(), _children_cpu(), time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, cwd=clone_dir, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    return dict(rc=rc, wall_s=time.perf_counter() - w0, cpu_s=_children_cpu() - c0, loadavg_start=l0,
                loadavg_end=os.getloadavg(), log=str(log))


def differing_results(a: Path, b: Path) -> list[str]:
    out = []
    for f in sorted({p.relative_to(a) for p in a.rglob("*") if p.is_file()} |
                    {p.relative_to(b) for p in b.rglob("*") if p.is_file()}):
        pa, pb = a / f, b / f
        if not (pa.exists() and pb.exists()) or pa.read_bytes() != pb.read_bytes():
            out.append(str(f))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="the previous commit or branch (default main)")
    ap.add_argument("--new", default="HEAD", help="the commit measured (default HEAD)")
    ap.add_argument("--venv", default=".venv", help="shared virtual environment (default ./.venv)")
    ap.add_argument("--config", default="analysis/grissom2024.toml")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the clones (printed)")
    args = ap.parse_args(argv)
    if not os.environ.get("DISCBIAS_DATA_MIRROR"):
        print("bench_report: set DISCBIAS_DATA_MIRROR to the released data folder", file=sys.stderr)
        return 2
    repo = Path(_git("rev-parse", "--show-toplevel", cwd=Path.cwd()))
    venv = Path(args.venv).resolve()
    commits = {"ref": _git("rev-parse", args.ref, cwd=repo), "new": _git("rev-parse", args.new, cwd=repo)}
    tmp = Path(tempfile.mkdtemp(prefix="bench_report_"))
    runs, last = [], {}
    try:
        for rnd in range(args.repeats):
            for which in ("ref", "new"):
                d = clone(repo, commits[which], tmp / f"{which}{rnd}")
                r = make_report(d, venv, args.config, tmp / f"{which}{rnd}.log")
                r.update(which=which, commit=commits[which], round=rnd)
                runs.append(r)
                last[which] = d
                print(f"{which} {commits[which][:10]} round {rnd}: rc {r['rc']}, {r['wall_s']:.1f} s wall, "
                      f"{r['cpu_s']:.1f} s CPU, load {r['loadavg_start'][0]:.1f} -> {r['loadavg_end'][0]:.1f}",
                      file=sys.stderr, flush=True)
        t = pd.DataFrame(runs)
        med = t.groupby("which")["wall_s"].median()
        steps = step_table(last["new"] / "build")
        diff = differing_results(last["ref"] / "build" / "results", last["new"] / "build" / "results")
        summary = dict(commits=commits, runs=runs, median_wall_s=med.to_dict(),
                       ratio_new_to_ref=float(med["new"] / med["ref"]), cpus=os.cpu_count(),
                       venv=str(venv), steps_new=steps.to_dict("records"),
                       steps_ref=step_table(last["ref"] / "build").to_dict("records"),
                       results_files_differing=diff, all_ok=bool((t["rc"] == 0).all()))
        print(f"\nclean make report: new {med['new']:.1f} s, ref {med['ref']:.1f} s, ratio new/ref "
              f"{summary['ratio_new_to_ref']:.2f} (load average {os.getloadavg()[0]:.1f} at the end)")
        print(steps.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
        print(f"\nbuild/results files that differ ({len(diff)}): {', '.join(diff) or 'none'}")
        out = Path("benchmarks/results")
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_report.json").write_text(json.dumps(summary, indent=2, default=str))
    finally:
        if args.keep:
            print(f"clones kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
