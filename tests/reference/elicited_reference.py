"""Make the reference posterior of the paper's Figure 7 model (``elicited_bayes``, paper's specification).

Run once from the repository root, with the released data reachable (``DISCBIAS_DATA_MIRROR``):

    PYTHONPATH=src python tests/reference/elicited_reference.py [--from-idata FILE.nc] [--draws N]

It fits the model in the parametrisation the pipeline used before issue 26 (``whitened_mixture``:
the intercept's Student-t prior as a non-centred normal scale mixture, the slopes OLS-whitened
given it; nutpie, low-rank mass matrix, target_accept 0.99, 8 chains, seed 20240215) with
``--tune`` tuning steps (default 3,000, the pipeline's) and ``--draws`` draws per chain, or, with ``--from-idata``, summarises an existing run of exactly
those settings (an ``InferenceData`` netCDF, e.g. the fit cache's entry of ``make fit``). It
writes ``tests/reference/elicited_reference.csv`` (per reported parameter and probability 0.05,
0.5, 0.95: the quantile and its Monte Carlo standard error, ArviZ ``mcse(method="quantile")``,
plus R-hat and bulk/tail ESS) and ``elicited_reference.json`` (settings, seed, data digest,
library versions, date, source). ``tests/test_elicited_reference.py`` compares a fit in the
pipeline's current coordinates with it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
PROBS = (0.05, 0.5, 0.95)
#: Settings of the reference run (the pipeline's before issue 26, with ``draws`` from the command line).
SETTINGS = dict(chains=8, tune=3000, target_accept=0.99, mass_matrix="low_rank", sampler="nutpie", cores=2,
                seed=20240215)
PARAMETRIZATION = "whitened_mixture"
LIBS = ("numpy", "scipy", "pandas", "pymc", "pytensor", "nutpie", "arviz", "numba")


def reference_data(mirror: str | Path | None = None) -> pd.DataFrame:
    """The Figure 7 model's rows, as the pipeline fits them (valid images, complete ratings), read
    with the package's adapter from the released ``Study2_unbalanced_aggregated.csv`` in the data
    mirror (``DISCBIAS_DATA_MIRROR``)."""
    import os

    from discbias.analyses import models
    from discbias.studies.grissom2024 import read_study2

    folder = Path(mirror or os.environ["DISCBIAS_DATA_MIRROR"])
    agg = read_study2(folder / "Study2_unbalanced_aggregated.csv", table_prefix="study2agg").tables["study2agg_images"]
    agg = agg[agg["valid"]]
    a, _ = models._complete(agg, models.AXIS_COLS + ["score"])
    return a


def data_digest(a: pd.DataFrame) -> str:
    from discbias.analyses import models

    cols = ["score", *models.AXIS_COLS]
    return hashlib.sha256(np.ascontiguousarray(a[cols].to_numpy(float)).tobytes()).hexdigest()


def summarise(idata, terms: dict[str, str]) -> pd.DataFrame:
    """Quantiles (``PROBS``) of each reported parameter with their MCSE, R-hat and ESS."""
    import arviz as az

    summ = az.summary(idata, var_names=list(terms), kind="diagnostics", round_to="none")
    rows = []
    for var, term in terms.items():
        draws = np.asarray(idata.posterior[var]).ravel()
        for p in PROBS:
            rows.append(dict(term=term, var=var, prob=p, quantile=float(np.quantile(draws, p)),
                             mcse=float(az.mcse(idata, var_names=[var], method="quantile", prob=p)[var]),
                             r_hat=float(summ.loc[var, "r_hat"]), ess_bulk=float(summ.loc[var, "ess_bulk"]),
                             ess_tail=float(summ.loc[var, "ess_tail"])))
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=2000, help="draws per chain (default 2000)")
    ap.add_argument("--tune", type=int, default=SETTINGS["tune"], help="tuning steps per chain (default 3000)")
    ap.add_argument("--save-idata", default=None, help="also write the draws to this netCDF (not committed)")
    ap.add_argument("--from-idata", default=None, help="summarise this InferenceData netCDF instead of sampling")
    ap.add_argument("--source", default="", help="where --from-idata came from (recorded)")
    args = ap.parse_args(argv)

    import arviz as az

    from discbias.analyses import models
    from discbias.stats.bayes import SamplerSettings, elicited_bayes

    a = reference_data()
    xs = models.AXIS_COLS
    terms = {"b0": "Intercept", **{f"b_{j}": x for j, x in enumerate(xs)}, "sigma": "sigma", "nu": "nu"}
    t0 = time.perf_counter()
    if args.from_idata:
        idata = az.from_netcdf(args.from_idata)
        source = f"summarised from {args.source or args.from_idata}"
        draws = int(idata.posterior.sizes["draw"])
        if int(idata.posterior.sizes["chain"]) != SETTINGS["chains"]:
            raise SystemExit(f"{args.from_idata} has {idata.posterior.sizes['chain']} chains, not {SETTINGS['chains']}")
    else:
        st = SamplerSettings(draws=args.draws, **dict(SETTINGS, tune=args.tune))
        _, idata = elicited_bayes(a, "score", xs, shared_scale={"femininity_mean": "masculinity_mean"}, spec="paper",
                                  settings=st, parametrization=PARAMETRIZATION)
        source = "sampled by this script"
        draws = args.draws
        if args.save_idata:
            idata.to_netcdf(args.save_idata)
    div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    table = summarise(idata, terms)
    table.to_csv(HERE / "elicited_reference.csv", index=False, float_format="%.10g")
    meta = dict(model="elicited_bayes (paper's specification): Grissom et al.'s Figure 7 model",
                parametrization=PARAMETRIZATION,
                settings=dict(SETTINGS, draws=draws, tune=args.tune if not args.from_idata else SETTINGS["tune"]), divergences=div,
                n_obs=int(len(a)), data_sha256=data_digest(a), source=source,
                seconds=round(time.perf_counter() - t0, 1),
                max_r_hat=float(table["r_hat"].max()), min_ess_bulk=float(table["ess_bulk"].min()),
                min_ess_tail=float(table["ess_tail"].min()),
                versions={p: md.version(p) for p in LIBS}, python=sys.version.split()[0],
                date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), script="tests/reference/elicited_reference.py")
    (HERE / "elicited_reference.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({k: meta[k] for k in ("settings", "divergences", "max_r_hat", "min_ess_bulk", "min_ess_tail")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
