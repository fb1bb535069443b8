"""Benchmark: wall time of the full ``fit`` stage and what dominates it.

Run from the repository root after ``discbias measure`` (build/measures must exist):

    PYTHONPATH=src python benchmarks/bench_fit.py [--config analysis/grissom2024.toml] [--skip-stage]

Prints a table and writes ``benchmarks/results/bench_fit.json``. Parts measured side by side in
one process: the whole fit stage (every analysis, as ``make report`` runs it), then each
Bayesian model twice (a 10-draw run, dominated by PyTensor compilation, and the pipeline's
settings, so sampling time = difference), the rating-level variance components and the
reliability table. Wall and CPU seconds (this process plus sampler workers) and the load
average are recorded, because a busy machine inflates wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path


def _cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed(label, fn, out):
    w0, c0 = time.perf_counter(), _cpu()
    res = fn()
    out.append(dict(part=label, wall_s=time.perf_counter() - w0, cpu_s=_cpu() - c0))
    print(f"{label:<48} {out[-1]['wall_s']:8.1f} s wall {out[-1]['cpu_s']:8.1f} s cpu", file=sys.stderr, flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="analysis/grissom2024.toml")
    ap.add_argument("--skip-stage", action="store_true", help="only the parts, not the whole fit stage")
    args = ap.parse_args(argv)

    import pandas as pd

    from discbias.analyses import models
    from discbias.config import load_config
    from discbias.paths import project_paths
    from discbias.pipeline import load_measures, run_fit
    from discbias.stats.bayes import SamplerSettings, elicited_bayes, rgb_bayes
    from discbias.stats.mixed import nested_variance_components
    from discbias.stats.reliability import item_reliability

    config, paths = load_config(args.config), project_paths(None)
    rows: list[dict] = []
    load0 = os.getloadavg()
    if not args.skip_stage:
        ctx = timed("fit stage (all analyses)", lambda: run_fit(config, paths, force=True), rows)
        for k, v in ctx.values["meta"]["fit_seconds"].items():
            rows.append(dict(part=f"  fit {k}", wall_s=v, cpu_s=float("nan")))
    meas = load_measures(paths)
    settings, n_boot = models._settings(config)
    tiny = SamplerSettings(draws=10, tune=10, chains=settings.chains, cores=settings.cores, seed=settings.seed)
    im = meas["study2_images"][lambda d: d["valid"]]
    agg = meas["study2agg_images"][lambda d: d["valid"]]
    shared = {"femininity_mean": "masculinity_mean"}
    for lab, st in (("10 draws (compile-dominated)", tiny), ("pipeline settings", settings)):
        timed(f"rgb_bayes, {lab}", lambda: rgb_bayes(im, settings=st), rows)
        timed(f"elicited_bayes, {lab}",
              lambda: elicited_bayes(agg, "score", models.AXIS_COLS, shared_scale=shared, settings=st), rows)
        timed(f"elicited_bayes_centred, {lab}",
              lambda: elicited_bayes(agg, "score", models.AXIS_COLS, shared_scale=shared, spec="centred", settings=st),
              rows)
    r = meas["study2_ratings"]
    timed(f"rating_level_mixed, 7 items, {n_boot} bootstrap fits each",
          lambda: [nested_variance_components(r[r["item"] == it], n_boot=n_boot) for it in models.AXES], rows)
    timed(f"reliability, 7 items, {n_boot} bootstrap alphas each", lambda: item_reliability(r, n_boot=n_boot), rows)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_fit.json").write_text(json.dumps(dict(
        machine=dict(cpus=os.cpu_count(), python=platform.python_version(), loadavg_start=load0,
                     loadavg_end=os.getloadavg()),
        sampler=settings.describe(), n_boot=n_boot, parts=rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
