"""Benchmark: the planted-bias study's training and audit steps with the seeds one after another
(``[planted] workers = 1``) and in worker processes (``workers = 2``, or ``--workers N``), side by
side in one run.

For each setting it builds ``analysis/planted-quick.toml`` (or ``--config``) in a fresh scratch
project without rendering (train, audit, summary, figures: ``run_planted(formats=())``), records the
wall time, the time of the train and audit steps, the process and child CPU time and the load
average before and after, and checks that the two builds' tables are identical (wall-time columns
aside) and the checkpoints byte-identical. On a shared machine the speedup depends on what else runs:
it also measures how many CPUs the run can use (a CPU-bound loop in as many processes as workers,
before and after) and each network's mean training time. Target (issue 25): the full study in under 30 minutes on
the 2-core machine; the speedup is the serial wall time over the parallel one.

Run: ``PYTHONPATH=src python benchmarks/bench_planted.py [--config analysis/planted-quick.toml]
[--workers 2]``. Prints a table and writes ``benchmarks/results/bench_planted.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def _spin(n: int = 5_000_000) -> float:
    x = 0
    for i in range(n):
        x += i * i
    return float(x)


def _available_cores(workers: int) -> float:
    """How many CPUs this run can use now: a fixed pure-Python loop in ``workers`` processes at once,
    their total work over the wall time, relative to one process alone (about 1 when another job
    keeps one core of two busy, about 2 on a quiet 2-core machine)."""
    import multiprocessing

    t = time.perf_counter()
    _spin()
    alone = time.perf_counter() - t
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_spin, [1])  # start the processes outside the timing
        t = time.perf_counter()
        pool.map(_spin, [5_000_000] * workers, chunksize=1)
        together = time.perf_counter() - t
    return workers * alone / together


def _build(config: Path, root: Path, workers: int) -> dict:
    import pandas as pd

    from discbias.planted.config import load_planted_config
    from discbias.planted.parallel import shutdown_pool
    from discbias.planted.study import run_planted

    cfg = load_planted_config(config)
    cfg = cfg.model_copy(update=dict(planted=cfg.planted.model_copy(update=dict(workers=workers))))
    load0, t0, c0 = os.getloadavg()[0], time.perf_counter(), _cpu()
    out = run_planted(cfg, root, formats=())
    wall = time.perf_counter() - t0
    shutdown_pool()  # the workers' CPU time is counted once they have exited
    steps = out["steps"]
    by = lambda g: float(steps.loc[steps["step"].str.startswith(g), "seconds"].sum())  # noqa: E731
    res = Path(out["build"]) / "results"
    tables = {f.name: pd.read_csv(f) for f in sorted(res.glob("*.csv"))}
    runs = tables.get("training.csv")
    return dict(workers=workers, wall_s=wall, train_s=by("planted:train:"), audit_s=by("planted:audit:"),
                mean_seconds_per_network=float(runs["seconds"].mean()) if runs is not None else float("nan"),
                cpu_s=_cpu() - c0, load_before=load0, load_after=os.getloadavg()[0], cpu_count=os.cpu_count(),
                build=str(out["build"]), _tables=tables)


def _same(a: dict, b: dict) -> list[str]:
    import pandas as pd

    diffs = []
    for name in sorted(set(a["_tables"]) | set(b["_tables"])):
        x, y = a["_tables"].get(name), b["_tables"].get(name)
        if x is None or y is None:
            diffs.append(f"{name}: only in one build")
            continue
        from discbias.reproduce.verify import TIMING  # wall and CPU seconds, load averages: not results

        drop = [c for c in x.columns if TIMING.search(str(c))]
        try:
            pd.testing.assert_frame_equal(x.drop(columns=drop), y.drop(columns=drop), check_exact=True)
        except AssertionError as exc:
            diffs.append(f"{name}: {str(exc).splitlines()[0]}")
    for f in sorted(Path(a["build"]).glob("checkpoints/*/*.pkl")):
        g = Path(b["build"]) / f.relative_to(a["build"])
        if not g.is_file() or g.read_bytes() != f.read_bytes():
            diffs.append(f"checkpoint {f.relative_to(a['build'])} differs")
    return diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "planted-quick.toml")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_planted_") as tmp:
        cores_before = _available_cores(args.workers)
        serial = _build(args.config, Path(tmp) / "serial", 1)
        parallel = _build(args.config, Path(tmp) / "parallel", args.workers)
        cores_after = _available_cores(args.workers)
        diffs = _same(serial, parallel)
    rows = [{k: v for k, v in r.items() if not k.startswith("_") and k != "build"} for r in (serial, parallel)]
    result = dict(config=str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
                  runs=rows, speedup_wall=serial["wall_s"] / parallel["wall_s"],
                  speedup_train_audit=(serial["train_s"] + serial["audit_s"]) / (parallel["train_s"] + parallel["audit_s"]),
                  identical=not diffs, differences=diffs, python=sys.version.split()[0],
                  available_cores_before=cores_before, available_cores_after=cores_after)
    print(f"CPUs usable by {args.workers} processes (a CPU-bound loop): {cores_before:.2f} before, "
          f"{cores_after:.2f} after")
    print(f"{'workers':>8} {'wall s':>8} {'train s':>8} {'audit s':>8} {'cpu s':>8} {'s/network':>10} {'load':>11}")
    for r in rows:
        print(f"{r['workers']:>8} {r['wall_s']:>8.1f} {r['train_s']:>8.1f} {r['audit_s']:>8.1f} {r['cpu_s']:>8.1f} "
              f"{r['mean_seconds_per_network']:>10.2f} {r['load_before']:>5.2f}-{r['load_after']:<5.2f}")
    print(f"speedup (wall): {result['speedup_wall']:.2f}x; train+audit steps: {result['speedup_train_audit']:.2f}x; "
          f"results identical: {result['identical']}" + ("" if not diffs else f" ({'; '.join(diffs)})"))
    out = REPO / "benchmarks" / "results" / "bench_planted.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if diffs:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
