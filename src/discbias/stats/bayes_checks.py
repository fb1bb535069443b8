"""Checks of the Bayesian models: heavy-tailed summaries, prior- and posterior-predictive checks.

* :func:`heavy_tail_summary`: a parameter with heavy tails (the Student-t degrees of freedom
  ``nu`` under a half-Cauchy prior) is summarised by its median and quantiles, not a mean and SD
  that its tails dominate.
* :func:`predictive_check`: replicated data sets, from the posterior draws (posterior predictive)
  or from the prior (prior predictive), compared with the observed scores on summary statistics
  (mean, SD, minimum, maximum, skewness): the share of replications at least as large as the
  observed statistic (a predictive p-value; near 0 or 1 flags misfit), and densities of the
  replications on a common grid for the figure.
* :func:`elicited_prior_predictive`: draws from the prior of Grissom et al.'s Figure 7 model,
  built in its non-centred coordinates (no potentials, so forward sampling is the prior itself).

The Figure 7 model's likelihood is ``y ~ Normal(b0 + X b, sigma)``; the posterior draws hold
``b0``, ``b_j`` and ``sigma`` (:func:`discbias.stats.bayes.elicited_model`), so replications
need no refit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STATISTICS = ("mean", "sd", "min", "max", "skewness")


def _stats(y: np.ndarray) -> dict:
    """Summary statistics of each row of ``y`` (2-D: replications x observations)."""
    y = np.atleast_2d(y)
    m = y.mean(axis=1)
    s = y.std(axis=1, ddof=1)
    z = (y - m[:, None]) / np.where(s > 0, s, np.nan)[:, None]
    return dict(mean=m, sd=s, min=y.min(axis=1), max=y.max(axis=1), skewness=np.nanmean(z ** 3, axis=1))


def heavy_tail_summary(idata, var: str, *, model: str, term: str | None = None) -> dict:
    """Median and quantiles (2.5, 25, 75, 97.5%) of a posterior variable.

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> idata = az.from_dict(posterior={"nu": np.abs(rng.standard_cauchy((2, 500))) * 2})
    >>> r = heavy_tail_summary(idata, "nu", model="m")
    >>> r["q025"] < r["median"] < r["q975"], r["term"]
    (True, 'nu')
    """
    d = np.asarray(idata.posterior[var]).ravel()
    q = np.quantile(d, [0.025, 0.25, 0.5, 0.75, 0.975])
    return dict(model=model, term=term or var, median=float(q[2]), q025=float(q[0]), q25=float(q[1]),
                q75=float(q[3]), q975=float(q[4]), mean=float(d.mean()), sd=float(d.std(ddof=1)), n_draws=int(d.size),
                method="posterior median and quantiles (heavy-tailed: mean and SD are dominated by the tail)")


def replicate_from_posterior(idata, X: np.ndarray, *, n_draws: int = 1000, seed: int = 0) -> np.ndarray:
    """Posterior-predictive replications ``b0 + X b + sigma * e`` from the draws (``n_draws`` x n)."""
    post = idata.posterior
    b0 = np.asarray(post["b0"]).ravel()
    B = np.column_stack([np.asarray(post[f"b_{j}"]).ravel() for j in range(X.shape[1])])
    sig = np.asarray(post["sigma"]).ravel()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(b0), size=min(n_draws, len(b0)), replace=False)
    mu = b0[pick, None] + B[pick] @ X.T
    return mu + sig[pick, None] * rng.standard_normal(mu.shape)


def elicited_prior_predictive(yv: np.ndarray, X: np.ndarray, xs: list[str], idx: np.ndarray, *, spec: str,
                              n_draws: int = 1000, seed: int = 0) -> np.ndarray:
    """Prior-predictive replications of the Figure 7 model (``n_draws`` x n), sampled forward in the
    model's non-centred coordinates (the same prior; see :func:`discbias.stats.bayes.elicited_model`)."""
    import pymc as pm

    from .bayes import elicited_model

    m = elicited_model(yv, X, xs, idx, spec=spec, parametrization="noncentred")
    with m:
        pp = pm.sample_prior_predictive(draws=n_draws, random_seed=seed, var_names=["y"])
    return np.asarray(pp.prior_predictive["y"]).reshape(-1, len(yv))[:n_draws]


def predictive_check(y: np.ndarray, yrep: np.ndarray, *, model: str, kind: str, grid: np.ndarray | None = None,
                     n_curves: int = 50) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observed statistics against their replications; densities for the figure.

    Parameters
    ----------
    y : (n,) array
    yrep : (draws, n) array
    model : str
    kind : {"prior", "posterior"}
    grid : array, optional
        Points at which densities are evaluated (default: 80 points over the observed range
        widened by half its width).
    n_curves : int
        Replications whose densities are kept for the figure.

    Returns
    -------
    checks : DataFrame
        One row per statistic: ``model, kind, statistic, observed, rep_median, rep_low, rep_high``
        (95% of the replications) and ``p_predictive`` = share of replications >= observed.
    densities : DataFrame
        ``model, kind, curve, x, density`` (``curve = -1``: observed).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(10, 2, 300)
    >>> chk, dens = predictive_check(y, rng.normal(10, 2, (400, 300)), model="m", kind="posterior")
    >>> bool(chk.set_index("statistic").loc["mean", "p_predictive"] > 0.01), int((dens["curve"] == -1).sum())
    (True, 80)
    """
    from scipy.stats import gaussian_kde

    y = np.asarray(y, float)
    yrep = np.asarray(yrep, float)
    so, sr = _stats(y[None, :]), _stats(yrep)
    rows = []
    for k in STATISTICS:
        r = sr[k][np.isfinite(sr[k])]
        rows.append(dict(model=model, kind=kind, statistic=k, observed=float(so[k][0]),
                         rep_median=float(np.median(r)) if len(r) else np.nan,
                         rep_low=float(np.quantile(r, 0.025)) if len(r) else np.nan,
                         rep_high=float(np.quantile(r, 0.975)) if len(r) else np.nan,
                         p_predictive=float((r >= so[k][0]).mean()) if len(r) else np.nan, n_draws=int(len(r))))
    if grid is None:
        lo, hi = float(y.min()), float(y.max())
        w = hi - lo
        grid = np.linspace(lo - 0.5 * w, hi + 0.5 * w, 80)
    dens = [pd.DataFrame(dict(model=model, kind=kind, curve=-1, x=grid, density=gaussian_kde(y)(grid)))]
    for c in range(min(n_curves, len(yrep))):
        yr = yrep[c]
        if np.all(np.isfinite(yr)) and yr.std() > 0:
            dens.append(pd.DataFrame(dict(model=model, kind=kind, curve=c, x=grid, density=gaussian_kde(yr)(grid))))
    return pd.DataFrame(rows), pd.concat(dens, ignore_index=True)
