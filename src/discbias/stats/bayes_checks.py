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
    import arviz as az

    from .fitcache import LazyInferenceData

    if isinstance(idata, LazyInferenceData):  # a fit read back from the cache: ArviZ's functions need the data itself
        idata = idata.load()
    d = np.asarray(idata.posterior[var]).ravel()
    probs = {"q025": 0.025, "q25": 0.25, "median": 0.5, "q75": 0.75, "q975": 0.975}
    q = np.quantile(d, list(probs.values()))
    out = dict(model=model, term=term or var, **{k: float(v) for k, v in zip(probs, q)},
               mean=float(d.mean()), sd=float(d.std(ddof=1)), n_draws=int(d.size),
               method="posterior median and quantiles (heavy-tailed: mean and SD are dominated by the tail)")
    # Monte Carlo standard errors (ArviZ, from the chains' autocorrelation): `discbias verify` compares a
    # rebuild's quantiles within a multiple of them, as every other posterior number
    for k, p in probs.items():
        out[f"mcse_{k}"] = float(az.mcse(idata, var_names=[var], method="quantile", prob=p)[var])
    out["mcse_mean"] = float(az.mcse(idata, var_names=[var], method="mean")[var])
    # (ArviZ's own method="sd" fails with NumPy 2.4 here): the SD of an SD from the bulk ESS
    ess = float(az.ess(idata, var_names=[var], method="bulk")[var])
    out["mcse_sd"] = out["sd"] / np.sqrt(2 * max(ess - 1, 1.0))
    return out


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


def rgb_prior_predictive(yv: np.ndarray, X: np.ndarray, *, n_draws: int = 1000, seed: int = 0) -> np.ndarray:
    """Prior-predictive replications of the paper's RGB model (``n_draws`` x n), sampled forward.

    The priors of :func:`discbias.stats.bayes.rgb_bayes` (the whitened coordinates it samples in
    carry them as potentials on the intercept and slopes, so the prior is exactly this):
    ``sigma_0, sigma_c, sigma ~ HalfStudentT(10, 1)``, ``b0 ~ Normal(mean(y), sigma_0)``,
    ``b_c ~ Normal(0, sigma_c)``, ``y ~ Normal(b0 + X b, sigma)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 255, (50, 3)); y = 100 + X @ [0.5, -0.3, 0.2] + rng.normal(size=50)
    >>> r = rgb_prior_predictive(y, X, n_draws=200, seed=1)
    >>> r.shape, bool(np.isfinite(r).all())
    ((200, 50), True)
    """
    rng = np.random.default_rng(seed)
    X = np.asarray(X, float)
    k = X.shape[1]

    def half_t(size):
        return np.abs(rng.standard_t(10, size=size))

    sigma_0, sigma_c, sigma = half_t(n_draws), half_t((n_draws, k)), half_t(n_draws)
    b0 = rng.normal(float(np.mean(yv)), sigma_0)
    b = rng.normal(0.0, sigma_c)
    mu = b0[:, None] + b @ X.T
    return mu + sigma[:, None] * rng.standard_normal(mu.shape)


def _replication_mcse(r: np.ndarray, share: float) -> dict:
    """Monte Carlo standard errors of the summaries of replications ``r`` (taken as independent
    draws): the quantiles' from ArviZ, the share's binomial, ``sqrt(max(p (1 - p), 1 / n) / n)``."""
    import arviz as az

    n = len(r)
    if n < 4 or not np.isfinite(r).all() or np.ptp(r) == 0:
        return dict(mcse_rep_median=np.nan, mcse_rep_low=np.nan, mcse_rep_high=np.nan,
                    mcse_p_predictive=np.sqrt(1.0 / n) / np.sqrt(n) if n else np.nan)
    ary = np.asarray(r, float)[None, :]
    out = {f"mcse_rep_{k}": float(az.mcse(ary, method="quantile", prob=p))
           for k, p in (("median", 0.5), ("low", 0.025), ("high", 0.975))}
    out["mcse_p_predictive"] = float(np.sqrt(max(share * (1 - share), 1.0 / n) / n))
    return out


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
        (95% of the replications) and ``p_predictive`` = share of replications >= observed, with
        their Monte Carlo standard errors (``mcse_rep_median`` ..., ``mcse_p_predictive``: the
        replications as independent draws; binomial for the share).
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
        row = dict(model=model, kind=kind, statistic=k, observed=float(so[k][0]),
                   rep_median=float(np.median(r)) if len(r) else np.nan,
                   rep_low=float(np.quantile(r, 0.025)) if len(r) else np.nan,
                   rep_high=float(np.quantile(r, 0.975)) if len(r) else np.nan,
                   p_predictive=float((r >= so[k][0]).mean()) if len(r) else np.nan, n_draws=int(len(r)))
        row.update(_replication_mcse(r, row["p_predictive"]))
        rows.append(row)
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


def elicited_log_densities(idata, yv: np.ndarray, X: np.ndarray, idx: np.ndarray, *, spec: str):
    """Per-draw log prior and per-draw, per-observation log likelihood of the Figure 7 model, in its natural
    parameters (slopes, intercept, their hyperparameters, nu, sigma; the intercept's Student-t prior in its
    marginal form), as the ``log_prior`` and ``log_likelihood`` groups of a copy of ``idata``.

    The prior is the model's (:func:`discbias.stats.bayes.elicited_model`): ``nu ~ HalfCauchy(2)``,
    ``sigma_c ~ HalfStudentT(10, 1)``, ``mu_c ~ Normal(0, s)``, ``b ~ StudentT(nu, mu_c, s)`` (s the
    slope's own or shared scale); for the paper's specification ``sigma_0, s_0 ~ HalfStudentT(10, 1)``,
    ``mu_0 ~ Normal(mean(y), sigma_0)``, ``b0 ~ StudentT(nu, mu_0, s_0)``, for the centred one
    ``b0 ~ Normal(mean(y), 2.5 sd(y))``; ``sigma ~ HalfNormal(sd(y))``; likelihood
    ``y ~ Normal(b0 + X b, sigma)``.
    """
    import xarray as xr
    from scipy import stats as st

    post = idata.posterior
    ch, dr = post.sizes["chain"], post.sizes["draw"]

    def v(name):
        return np.asarray(post[name])

    nu, sig_c, mu_c, b0, sigma = v("nu"), v("sigma_c"), v("mu_c"), v("b0"), v("sigma")
    B = np.stack([v(f"b_{j}") for j in range(X.shape[1])], axis=-1)
    s = sig_c[..., idx]
    lp = (np.log(2) + st.cauchy.logpdf(nu, scale=2.0))
    lp = lp + (np.log(2) + st.t.logpdf(sig_c, 10)).sum(-1)
    lp = lp + st.norm.logpdf(mu_c, 0, s).sum(-1)
    lp = lp + st.t.logpdf(B, nu[..., None], loc=mu_c, scale=s).sum(-1)
    ybar, ysd = float(np.mean(yv)), float(np.std(yv, ddof=1))
    if spec == "paper":
        sig0, mu0, s0 = v("sigma_0"), v("mu_0"), v("s_0")
        lp = lp + np.log(2) + st.t.logpdf(sig0, 10) + np.log(2) + st.t.logpdf(s0, 10)
        lp = lp + st.norm.logpdf(mu0, ybar, sig0) + st.t.logpdf(b0, nu, loc=mu0, scale=s0)
    else:
        lp = lp + st.norm.logpdf(b0, ybar, 2.5 * float(np.std(yv)))
    lp = lp + st.halfnorm.logpdf(sigma, scale=ysd)
    mu = b0[..., None] + np.einsum("cdk,nk->cdn", B, X)
    ll = st.norm.logpdf(yv[None, None, :], mu, sigma[..., None])
    out = idata.copy()
    out.add_groups(log_prior=xr.Dataset({"prior": (("chain", "draw"), lp)},
                                        coords={"chain": post.chain, "draw": post.draw}),
                   log_likelihood=xr.Dataset({"y": (("chain", "draw", "obs"), ll)},
                                             coords={"chain": post.chain, "draw": post.draw, "obs": np.arange(len(yv))}))
    assert lp.shape == (ch, dr)
    return out


#: Power-scaling sensitivity at or above this (cumulative Jensen-Shannon distance) is flagged (priorsense's threshold).
PSENS_THRESHOLD = 0.05


def power_scaling(idata, *, model: str, var_names: list[str], terms: dict[str, str] | None = None) -> pd.DataFrame:
    """ArviZ ``psens`` of every variable to power-scaling the prior and the likelihood, with priorsense's
    diagnosis: prior sensitivity >= 0.05 with likelihood sensitivity >= 0.05 is a prior-data conflict, prior
    sensitivity >= 0.05 alone a strong prior or weak likelihood.
    """
    import arviz as az

    pr = az.psens(idata, component="prior", var_names=var_names)
    lk = az.psens(idata, component="likelihood", var_names=var_names)
    rows = []
    for var in var_names:
        # psens returns a Dataset, or a DataArray when there is one variable
        p = float(np.asarray(pr[var] if hasattr(pr, "data_vars") else pr).max())
        l_ = float(np.asarray(lk[var] if hasattr(lk, "data_vars") else lk).max())
        if p >= PSENS_THRESHOLD and l_ >= PSENS_THRESHOLD:
            diag = "prior-data conflict"
        elif p >= PSENS_THRESHOLD:
            diag = "strong prior / weak likelihood"
        else:
            diag = "-"
        rows.append(dict(model=model, term=(terms or {}).get(var, var), prior_sensitivity=p, likelihood_sensitivity=l_,
                         diagnosis=diag, method="ArviZ psens (power-scaling, cumulative Jensen-Shannon distance; "
                                                "Kallioinen et al. 2024), threshold 0.05"))
    return pd.DataFrame(rows)
