"""Benchmark: parse the 70,000 FFHQ face-attribute files and fit the stratification models.

Run from the repository root::

    DISCBIAS_DATA_MIRROR=../shared/paper-data PYTHONPATH=src python benchmarks/bench_ffhq.py

Prints a table and writes ``benchmarks/results/bench_ffhq.json``. Measured side by side on the
same machine: the streamed parse without and with the Parquet cache, every model of the fit
stage, and, for the quantile regressions, our Frisch-Newton solver against statsmodels' QuantReg
on a subsample (the full-size QuantReg takes minutes, so it is timed on ``--qr-rows`` rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", default=os.environ.get("DISCBIAS_DATA_MIRROR"), help="data mirror folder")
    ap.add_argument("--qr-rows", type=int, default=5000, help="rows for the QuantReg-vs-Frisch-Newton comparison")
    args = ap.parse_args()
    if not args.mirror:
        print("set DISCBIAS_DATA_MIRROR or --mirror to the folder holding ffhq-features-json.tar.gz", file=sys.stderr)
        return 2
    import numpy as np
    import statsmodels.api as sm
    from threadpoolctl import threadpool_limits

    from discbias.analyses import ffhq_strat as fs
    from discbias.stats.quantile import rq_fnb
    from discbias.studies.ffhq_features import read_ffhq_features
    from discbias.studies.grissom2024 import read_ffhq_scores

    mirror = Path(args.mirror)
    rows = []

    def timed(name, fn, n=None):
        t0 = time.perf_counter()
        out = fn()
        rows.append(dict(step=name, seconds=time.perf_counter() - t0, rows=n))
        return out

    with tempfile.TemporaryDirectory() as cache:
        feat = timed("parse 70k JSON (stream, no cache)",
                     lambda: read_ffhq_features(mirror / "ffhq-features-json.tar.gz", cache_dir=cache), 70000)
        timed("parse 70k JSON (Parquet cache hit)",
              lambda: read_ffhq_features(mirror / "ffhq-features-json.tar.gz", cache_dir=cache), 70000)
    scores = read_ffhq_scores(mirror / "RGB_format_images_data.csv").tables["ffhq_scores"]
    d, _ = timed("join + prepare", lambda: fs.prepare(scores, feat.tables["ffhq_features"]), 70000)
    timed("disaggregation (groups, full cross, bin shares)",
          lambda: (fs.group_summaries(d), fs.cross_summary(d), fs.bin_shares(d)), len(d))
    with threadpool_limits(limits=fs.BLAS_THREADS):
        timed("quality curves (4 splines, HC3)", lambda: fs.quality_curves(d[d["in_model"]]), int(d["in_model"].sum()))
    m, w = fs.model_data(d)
    reg = timed("all models (fit_regressions)", lambda: fs.fit_regressions(m, w), len(m))
    for k, v in reg["timings"].items():
        rows.append(dict(step=f"  of which {k}", seconds=v, rows=len(m)))
    # Frisch-Newton vs statsmodels QuantReg, side by side on a subsample, q = 0.9.
    mod = sm.QuantReg.from_formula(fs._formula(fs.QUALITY_TERMS + fs.FACE_TERMS), m)
    idx = np.random.default_rng(0).choice(len(m), min(args.qr_rows, len(m)), replace=False)
    X, y = mod.exog[idx], mod.endog[idx]
    with threadpool_limits(limits=fs.BLAS_THREADS):
        fn = timed(f"Frisch-Newton q=0.9 ({len(idx)} rows)", lambda: rq_fnb(X, y, 0.9), len(idx))
        ref = timed(f"statsmodels QuantReg q=0.9 ({len(idx)} rows)", lambda: sm.QuantReg(y, X).fit(q=0.9, max_iter=5000),
                    len(idx))
    max_diff = float(np.abs(fn[0] - ref.params).max())
    width = max(len(r["step"]) for r in rows)
    print(f"{'step'.ljust(width)}  seconds      rows")
    for r in rows:
        print(f"{r['step'].ljust(width)}  {r['seconds']:7.2f}  {r['rows'] or '':>8}")
    sm_t = rows[-1]["seconds"]
    fn_t = rows[-2]["seconds"]
    print(f"QuantReg / Frisch-Newton time ratio: {sm_t / fn_t:.1f} (max |coef diff| {max_diff:.2g})")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_ffhq.json").write_text(json.dumps(dict(
        rows=rows, quantreg_over_fnb=sm_t / fn_t, fnb_max_abs_coef_diff=max_diff,
        machine=dict(python=platform.python_version(), cpus=os.cpu_count(), load=os.getloadavg())), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
