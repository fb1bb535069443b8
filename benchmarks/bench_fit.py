"""Benchmark: wall time of the full ``fit`` stage and what dominates it.

Run from the repository root after ``discbias measure`` (build/measures must exist):

    PYTHONPATH=src python benchmarks/bench_fit.py [--config analysis/grissom2024.toml] [--skip-stage]
    PYTHONPATH=src python benchmarks/bench_fit.py --routes [0 1 ...] [--repeats 3]

Prints a table and writes ``benchmarks/results/bench_fit.json``. Parts measured side by side in
one process: the whole fit stage (every analysis, as ``make report`` runs it), then each
Bayesian model twice (a 10-draw run, dominated by PyTensor compilation, and the pipeline's
settings, so sampling time = difference), the rating-level variance components and the
reliability table. ``--routes`` instead fits the paper's Figure 7 model by each route of
:data:`ROUTES` side by side (interleaved, ``--repeats`` times; wall time includes compiling the
model), with its convergence, and writes ``benchmarks/results/bench_fit_routes.json``. Wall and CPU seconds (this process plus sampler workers) and the load
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


#: Routes to the paper's Figure 7 posterior measured side by side by ``--routes`` (same model, same
#: data; each fit compiles its model afresh, so the wall time includes compilation). ``before``: the
#: pipeline's route before issue 26; ``after``: the pipeline's now (fewer, longer chains, less tuning);
#: the others: the scale-mixture coordinates (every Student-t
#: prior a non-centred normal scale mixture, the Gamma precisions in nu-scaled log coordinates),
#: with the centred-predictor intercept (``scale_mixture_ci``) or all non-centred, and fewer chains.
ROUTES = {
    "before: whitened_mixture 8x(3000+2000) ta .99 low-rank": dict(
        parametrization="whitened_mixture", chains=8, tune=3000, draws=2000, target_accept=0.99, mass_matrix="low_rank"),
    "after: whitened_mixture 4x(1000+2000) ta .99 low-rank": dict(
        parametrization="whitened_mixture", chains=4, tune=1000, draws=2000, target_accept=0.99, mass_matrix="low_rank"),
    "scale_mixture_ci 4x(1000+1000) ta .9 low-rank": dict(
        parametrization="scale_mixture_ci", chains=4, tune=1000, draws=1000, target_accept=0.9, mass_matrix="low_rank"),
    "scale_mixture 4x(1000+1000) ta .9 low-rank": dict(
        parametrization="scale_mixture", chains=4, tune=1000, draws=1000, target_accept=0.9, mass_matrix="low_rank"),
}


def bench_routes(names: list[str], repeats: int) -> list[dict]:
    """Fit the Figure 7 model (paper's specification) by each route, ``repeats`` times, interleaved."""
    from dataclasses import replace

    from discbias.analyses import models
    from discbias.paths import project_paths
    from discbias.pipeline import load_measures
    from discbias.stats.bayes import SamplerSettings, elicited_bayes

    meas = load_measures(project_paths(None))
    agg = meas["study2agg_images"][lambda d: d["valid"]]
    a, _ = models._complete(agg, models.AXIS_COLS + ["score"])
    shared = {"femininity_mean": "masculinity_mean"}
    base = SamplerSettings()
    out = []
    for rep in range(repeats):
        for name in names:
            r = dict(ROUTES[name])
            par = r.pop("parametrization")
            st = replace(base, **r)
            w0, c0, l0 = time.perf_counter(), _cpu(), os.getloadavg()[0]
            t, _ = elicited_bayes(a, "score", models.AXIS_COLS, shared_scale=shared, spec="paper", settings=st,
                                  parametrization=par)
            row = dict(route=name, repeat=rep, wall_s=time.perf_counter() - w0, cpu_s=_cpu() - c0,
                       sampling_s=float(t["sampling_seconds"].iloc[0]), loadavg=(l0 + os.getloadavg()[0]) / 2,
                       converged=bool(t["converged"].iloc[0]), max_r_hat=float(t["r_hat"].max()),
                       min_ess_bulk=float(t["ess_bulk"].min()), min_ess_tail=float(t["ess_tail"].min()),
                       divergences=int(t["divergences"].iloc[0]),
                       intercept=float(t.loc[t["term"] == "Intercept", "estimate"].iloc[0]),
                       femininity=float(t.loc[t["term"] == "femininity_mean", "estimate"].iloc[0]))
            out.append(row)
            print(f"{name:<58} rep {rep}: {row['wall_s']:7.1f} s wall ({row['sampling_s']:.1f} s sampling), "
                  f"converged {row['converged']}, R-hat {row['max_r_hat']:.4f}, ESS {row['min_ess_bulk']:.0f}/"
                  f"{row['min_ess_tail']:.0f}, {row['divergences']} div, load {row['loadavg']:.1f}",
                  file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="analysis/grissom2024.toml")
    ap.add_argument("--skip-stage", action="store_true", help="only the parts, not the whole fit stage")
    ap.add_argument("--routes", nargs="*", default=None, metavar="ROUTE",
                    help="only compare routes to the Figure 7 posterior side by side (default: all of ROUTES; "
                         "give indices 0.. to pick)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per route with --routes (median reported)")
    args = ap.parse_args(argv)
    if args.routes is not None:
        names = list(ROUTES) if not args.routes else [list(ROUTES)[int(i)] for i in args.routes]
        rows = bench_routes(names, args.repeats)
        import pandas as pd

        t = pd.DataFrame(rows)
        med = t.groupby("route", sort=False).agg(wall_s=("wall_s", "median"), cpu_s=("cpu_s", "median"),
                                                 converged=("converged", "all"), max_r_hat=("max_r_hat", "max"),
                                                 min_ess=("min_ess_tail", "min"), divergences=("divergences", "sum"),
                                                 loadavg=("loadavg", "mean"))
        first = med["wall_s"].iloc[0]
        med["ratio_to_first"] = med["wall_s"] / first
        print(med.to_string(float_format=lambda x: f"{x:.3f}"))
        out = Path("benchmarks/results")
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_fit_routes.json").write_text(json.dumps(dict(
            machine=dict(cpus=os.cpu_count(), python=platform.python_version(), loadavg_end=os.getloadavg()),
            routes={k: ROUTES[k] for k in names}, runs=rows,
            median=med.reset_index().to_dict("records")), indent=2, default=float))
        return 0

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
