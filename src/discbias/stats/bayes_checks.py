"""Checks of the Bayesian models: heavy-tailed summaries, prior- and posterior-predictive checks.

* :func:`heavy_tail_summary`: a parameter with heavy tails (the Student-t degrees of freedom
  ``nu`` under a half-Cauchy prior) is summarised by its median and quantiles, not a mean and SD
  that its tails dominate.
* :func:`predictive_check`: replicated data sets, from the posterior draws (posterior predictive)
  or from the prior (prior predictive), compared with the observed scores on summary statistics
  (mean, SD, minimum, maximum, skewness): the share of replications at least as large as the
  observed statistic (a predictive p-value; near 0 or 1 flags misfit), and the pointwise median and
  quantiles of the replications' densities on a common grid (with Monte Carlo standard errors) for the
  figure.
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
    out = dict(model=model, term=term or var, **{k: float(v) for k, v in zip(probs, q)}, n_draws=int(d.size),
               method="posterior median and quantiles (heavy-tailed: the mean and SD, which the tail dominates and "
                      "whose Monte Carlo error is not estimable, are not reported)")
    # Monte Carlo standard errors (ArviZ, from the chains' autocorrelation): `discbias verify` compares a
    # rebuild's quantiles within a multiple of them, as every other posterior number. A quantile's MCSE
    # exists for any continuous posterior; the SD's does not when the fourth moment is infinite (nu under
    # a half-Cauchy prior), which is why the SD is not in this table.
    for k, p in probs.items():
        out[f"mcse_{k}"] = float(az.mcse(idata, var_names=[var], method="quantile", prob=p)[var])
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


#: Pointwise quantiles of the replications' densities kept for the figure (column suffix, probability).
DENSITY_BANDS = (("low", 0.025), ("q25", 0.25), ("median", 0.5), ("q75", 0.75), ("high", 0.975))


#: Points of the fine grid on which :func:`kde_rows` bins each row before smoothing.
KDE_BINS = 2048


def kde_rows(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of each row of ``samples`` at ``grid``, with Scott's bandwidth
    (``h = sd(row) * n ** (-1/5)``, as :class:`scipy.stats.gaussian_kde` in one dimension); rows with no
    spread or a non-finite value give NaN.

    Each row is linearly binned onto its own fine grid of :data:`KDE_BINS` points spanning its range
    plus 5 bandwidths on each side and smoothed by multiplying its Fourier transform by the
    kernel's (``exp(-(2 pi f h)^2 / 2)``), then interpolated at ``grid`` (0 beyond the fine grid, where
    the density is below ``exp(-12.5)`` of a single point's peak). Linear binning's error is of order
    ``(bin width / h)^2`` relative: for ``n`` draws with a range of ``r`` standard deviations the bin
    width is ``(r + 10 h) / KDE_BINS``, so about 1e-4 for a normal sample of 1,000 (measured: 2e-6 of the peak). It is O(n + bins)
    per row instead of O(n x len(grid)): 1,000 replications of 1,190 scores take a tenth of a second.

    Examples
    --------
    >>> from scipy.stats import gaussian_kde
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=(2, 500))
    >>> g = np.linspace(-3, 3, 7)
    >>> exact = gaussian_kde(y[1])(g)
    >>> bool(np.allclose(kde_rows(y, g)[1], exact, rtol=1e-3, atol=1e-6 * exact.max()))
    True
    """
    samples = np.atleast_2d(np.asarray(samples, float))
    grid = np.asarray(grid, float)
    R, n = samples.shape
    out = np.full((R, len(grid)), np.nan)
    h = samples.std(axis=1, ddof=1) * n ** (-0.2) if n > 1 else np.full(R, np.nan)
    ok = np.isfinite(samples).all(axis=1) & np.isfinite(h) & (h > 0)
    if not ok.any():
        return out
    S, hk = samples[ok], h[ok]
    G = KDE_BINS
    lo = S.min(axis=1) - 5 * hk
    hi = S.max(axis=1) + 5 * hk
    delta = (hi - lo) / (G - 1)
    # linear binning: each point splits its unit weight between the two fine-grid points around it
    pos = (S - lo[:, None]) / delta[:, None]
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, G - 2)
    frac = pos - i0
    rows = np.arange(len(S))[:, None] * G
    counts = (np.bincount((rows + i0).ravel(), weights=(1 - frac).ravel(), minlength=len(S) * G)
              + np.bincount((rows + i0 + 1).ravel(), weights=frac.ravel(), minlength=len(S) * G)).reshape(len(S), G)
    # smoothing by the Gaussian kernel in the Fourier domain (zero padding to 2G: no wrap-around)
    f = np.fft.rfftfreq(2 * G)
    kern = np.exp(-0.5 * (2 * np.pi * f[None, :] * (hk / delta)[:, None]) ** 2)
    dens = np.fft.irfft(np.fft.rfft(counts, n=2 * G, axis=1) * kern, n=2 * G, axis=1)[:, :G]
    dens = np.clip(dens, 0.0, None) / (n * delta[:, None])
    fine = lo[:, None] + delta[:, None] * np.arange(G)[None, :]
    out[ok] = np.array([np.interp(grid, fine[r], dens[r], left=0.0, right=0.0) for r in range(len(S))])
    return out


def quantile_mcse_independent(sorted_draws: np.ndarray, prob: float) -> np.ndarray:
    """Monte Carlo standard error of the ``prob`` quantile of independent draws, column by column
    (``sorted_draws`` sorted along axis 0): ArviZ's quantile MCSE (half the distance between the
    order statistics at the 15.9% and 84.1% points of the quantile's Beta sampling distribution) with
    the effective sample size equal to the number of draws, vectorised over columns.

    Examples
    --------
    >>> import arviz as az
    >>> x = np.random.default_rng(0).normal(size=(4000, 1))
    >>> a = quantile_mcse_independent(np.sort(x, axis=0), 0.5)[0]
    >>> b = float(az.mcse(x[:, 0][None, :], method="quantile", prob=0.5))  # ArviZ estimates the ESS
    >>> bool(abs(a - b) < 0.2 * b)
    True
    """
    from scipy import stats

    size = sorted_draws.shape[0]
    a = stats.beta.ppf([0.1586553, 0.8413447], size * prob + 1, size * (1 - prob) + 1)
    lo = int(np.rint(max(a[0] * size, 0)))
    hi = int(np.rint(min(a[1] * size, size - 1)))
    return (sorted_draws[hi] - sorted_draws[lo]) / 2


def density_bands(y: np.ndarray, yrep: np.ndarray, grid: np.ndarray, *, model: str, kind: str) -> pd.DataFrame:
    """The observed scores' density and the pointwise median and quantiles (2.5, 25, 75, 97.5%) of the
    replications' densities at each grid point, with their Monte Carlo standard errors (ArviZ's
    quantile MCSE, the replications taken as independent draws, as for the summary statistics).

    A figure of a few replicated densities drawn at random shows draws, not estimates: a rebuild
    draws other replications and no number of it can be checked. The quantiles are estimates of
    fixed quantities with a Monte Carlo error, so ``discbias verify`` compares them within it.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=100)
    >>> d = density_bands(y, rng.normal(size=(300, 100)), np.linspace(-3, 3, 13), model="m", kind="posterior")
    >>> bool((d["rep_low"] <= d["rep_median"]).all() and (d["rep_median"] <= d["rep_high"]).all())
    True
    >>> bool(d.loc[6, "observed"] > d.loc[0, "observed"]), int(d["n_replications"].iloc[0])
    (True, 300)
    """
    grid = np.asarray(grid, float)
    obs = kde_rows(np.asarray(y, float)[None, :], grid)[0]
    D = kde_rows(yrep, grid)
    D = D[np.isfinite(D).all(axis=1)]
    out = pd.DataFrame(dict(model=model, kind=kind, x=grid, observed=obs))
    n = len(D)
    for name, p in DENSITY_BANDS:
        out[f"rep_{name}"] = np.quantile(D, p, axis=0) if n else np.nan
    srt = np.sort(D, axis=0)
    for name, p in DENSITY_BANDS:
        out[f"mcse_rep_{name}"] = quantile_mcse_independent(srt, p) if n >= 4 else np.nan
    out["n_replications"] = n
    out["method"] = (f"{kind} predictive: Gaussian kernel density (Scott's bandwidth) of each of {n} replicated data "
                     "sets; pointwise median and quantiles over the replications, MCSE as ArviZ's for a quantile of independent draws")
    return out


def predictive_check(y: np.ndarray, yrep: np.ndarray, *, model: str, kind: str, grid: np.ndarray | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
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

    Returns
    -------
    checks : DataFrame
        One row per statistic: ``model, kind, statistic, observed, rep_median, rep_low, rep_high``
        (95% of the replications) and ``p_predictive`` = share of replications >= observed, with
        their Monte Carlo standard errors (``mcse_rep_median`` ..., ``mcse_p_predictive``: the
        replications as independent draws; binomial for the share).
    densities : DataFrame
        One row per grid point ``x``: the observed density and the pointwise quantiles of the
        replications' densities with their MCSEs (:func:`density_bands`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(10, 2, 300)
    >>> chk, dens = predictive_check(y, rng.normal(10, 2, (400, 300)), model="m", kind="posterior")
    >>> bool(chk.set_index("statistic").loc["mean", "p_predictive"] > 0.01), len(dens)
    (True, 80)
    """
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
    return pd.DataFrame(rows), density_bands(y, yrep, grid, model=model, kind=kind)


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


#: Blocks of consecutive draws per chain for the delete-a-block jackknife MCSE of :func:`power_scaling`.
PSENS_BLOCKS_PER_CHAIN = 5


def _psens_arrays(idata, var_names: list[str]):
    """The draws of ``var_names`` and the summed log prior and log likelihood, each ``(chain, draw)``."""
    post = idata.posterior
    draws = {v: np.asarray(post[v], float) for v in var_names}
    lp = sum(np.asarray(idata.log_prior[v], float) for v in idata.log_prior.data_vars)
    ll = 0.0
    for v in idata.log_likelihood.data_vars:
        a = np.asarray(idata.log_likelihood[v], float)
        ll = ll + a.reshape(a.shape[0], a.shape[1], -1).sum(axis=2)
    return draws, lp, ll


def _psens_once(draws: dict, lp: np.ndarray, ll: np.ndarray) -> tuple[dict, dict]:
    """ArviZ ``psens`` (prior, likelihood) of each variable on draws given as one chain."""
    import arviz as az

    def one(a):
        return np.asarray(a, float).reshape(1, -1)

    idata = az.from_dict(posterior={v: one(a) for v, a in draws.items()}, log_likelihood={"y": one(ll)})
    import xarray as xr

    idata.add_groups(log_prior=xr.Dataset({"prior": (("chain", "draw"), one(lp))},
                                          coords={"chain": idata.posterior.chain, "draw": idata.posterior.draw}))
    out = []
    for comp in ("prior", "likelihood"):
        r = az.psens(idata, component=comp, var_names=list(draws))
        out.append({v: float(np.asarray(r[v] if hasattr(r, "data_vars") else r).max()) for v in draws})
    return out[0], out[1]


def power_scaling(idata, *, model: str, var_names: list[str], terms: dict[str, str] | None = None) -> pd.DataFrame:
    """ArviZ ``psens`` of every variable to power-scaling the prior and the likelihood, with priorsense's
    diagnosis: prior sensitivity >= 0.05 with likelihood sensitivity >= 0.05 is a prior-data conflict, prior
    sensitivity >= 0.05 alone a strong prior or weak likelihood.

    Each sensitivity has a Monte Carlo standard error (``mcse_prior_sensitivity``,
    ``mcse_likelihood_sensitivity``) from a delete-a-block jackknife: the draws of each chain are cut
    into :data:`PSENS_BLOCKS_PER_CHAIN` blocks of consecutive draws (blocks much longer than the
    chains' autocorrelation, so the blocks are nearly independent), psens is recomputed with each
    block left out, and ``MCSE = sqrt((B - 1) / B * sum_j (s_j - mean(s))^2)`` over the ``B`` blocks.
    psens pools the draws of all chains (it ignores the chain structure), so leaving a block out is
    the same computation on fewer draws.

    Examples
    --------
    >>> import arviz as az, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.normal(0.5, 0.3, (2, 500))
    >>> idata = az.from_dict(posterior={"mu": mu}, log_likelihood={"y": -0.5 * (mu - 0.5) ** 2 / 0.09})
    >>> idata.add_groups(log_prior=xr.Dataset({"prior": (("chain", "draw"), -0.5 * mu ** 2)},
    ...                                       coords={"chain": idata.posterior.chain, "draw": idata.posterior.draw}))
    >>> t = power_scaling(idata, model="m", var_names=["mu"])
    >>> bool(t.loc[0, "mcse_prior_sensitivity"] > 0), bool(t.loc[0, "prior_sensitivity"] > 0)
    (True, True)
    """
    draws, lp, ll = _psens_arrays(idata, var_names)
    n_chain, n_draw = lp.shape
    pr, lk = _psens_once(draws, lp, ll)
    # delete-a-block jackknife over blocks of consecutive draws within each chain
    edges = np.linspace(0, n_draw, PSENS_BLOCKS_PER_CHAIN + 1).astype(int)
    jack_p, jack_l = [], []
    if n_draw >= 4 * PSENS_BLOCKS_PER_CHAIN:
        for c in range(n_chain):
            for b in range(PSENS_BLOCKS_PER_CHAIN):
                keep = np.ones((n_chain, n_draw), bool)
                keep[c, edges[b]:edges[b + 1]] = False
                p_j, l_j = _psens_once({v: a[keep] for v, a in draws.items()}, lp[keep], ll[keep])
                jack_p.append(p_j)
                jack_l.append(l_j)
    B = len(jack_p)

    def mcse(jack, v):
        if B < 2:
            return np.nan
        x = np.array([j[v] for j in jack])
        return float(np.sqrt((B - 1) / B * ((x - x.mean()) ** 2).sum()))

    rows = []
    for var in var_names:
        p, l_ = pr[var], lk[var]
        if p >= PSENS_THRESHOLD and l_ >= PSENS_THRESHOLD:
            diag = "prior-data conflict"
        elif p >= PSENS_THRESHOLD:
            diag = "strong prior / weak likelihood"
        else:
            diag = "-"
        rows.append(dict(model=model, term=(terms or {}).get(var, var), prior_sensitivity=p, likelihood_sensitivity=l_,
                         diagnosis=diag, mcse_prior_sensitivity=mcse(jack_p, var),
                         mcse_likelihood_sensitivity=mcse(jack_l, var), n_jackknife_blocks=B,
                         method="ArviZ psens (power-scaling, cumulative Jensen-Shannon distance; "
                                "Kallioinen et al. 2024), threshold 0.05; MCSE: delete-a-block jackknife"))
    return pd.DataFrame(rows)
