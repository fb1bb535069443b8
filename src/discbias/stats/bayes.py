"""Bayesian regressions of the 2024 paper, in PyMC with NUTS, returned in the tidy results schema.

The priors follow the authors' public scripts (repository ``acgrissom/projects``,
``ganfaces/scripts/rgb_linear_regression.py`` and ``ordinal_linear_regression.py``):

* :func:`rgb_bayes` (the paper's colour model): ``score ~ Normal(b0 + sum_c b_c x_c, sigma)``,
  ``b0 ~ Normal(mean(score), sigma_0)``, ``b_c ~ Normal(0, sigma_c)``, every ``sigma_*`` (and the
  residual ``sigma``) ``~ HalfStudentT(nu=10, sigma=1)``.
* :func:`elicited_bayes` (the paper's Figure 7 model): ``b_c ~ StudentT(nu, mu_c, sigma_c)``,
  ``mu_c ~ Normal(0, sigma_c)``, ``sigma_c ~ HalfStudentT(10, 1)`` (femininity shares
  masculinity's ``sigma_c``), one ``nu ~ HalfCauchy(2)`` for all slopes and the intercept,
  ``b0 ~ StudentT(nu, mu_0, s_0)``, ``mu_0 ~ Normal(mean(score), sigma_0)``,
  ``sigma_0, s_0 ~ HalfStudentT(10, 1)``, residual ``sigma ~ HalfNormal(sd(score))``. (The script
  also creates an unused ``HalfCauchy("sigma", 10)``; it does not enter the likelihood and has no
  effect on the other parameters' posterior, so it is left out.) With ``spec="centred"`` the
  predictors are centred and the intercept gets a weakly informative ``Normal(mean(score),
  2.5 sd(score))`` prior; the slope priors are unchanged.

The hyper-means ``mu_c`` and ``mu_0`` are sampled non-centred (``mu = sigma * z``). The RGB model
samples intercept and slopes in OLS-whitened coordinates (:func:`_whitened_coefficients`) with the
priors added as potentials. :func:`elicited_bayes` offers four coordinate systems
(``parametrization``): whitened; ``whitened_mixture`` (the intercept's Student-t prior as its
normal scale mixture, ``b0 = mu_0 + s_0 z / sqrt(lam)``, ``z ~ N(0, 1)``,
``lam ~ Gamma(nu/2, nu/2)``, and the slopes OLS-whitened given ``b0``); ``centred_intercept``
(the centred-predictor intercept sampled flat, the paper's intercept prior on the implied
uncentred intercept, a unit-Jacobian linear map; slopes non-centred as location + scale x
standard Student-t); and fully ``noncentred``. Each is the same posterior, with a geometry NUTS
handles differently (a test checks that each has the paper model's density up to a constant; a
gated slow test that the samples agree within Monte Carlo error). Every fit reports R-hat, bulk/tail
ESS, divergences and its sampling time; ``converged`` needs R-hat <= 1.01, ESS >= 400 and no
divergence on every reported parameter.

Degenerate data are refused before sampling with a ``ValueError`` that names the column (a
constant outcome or predictor, or a predictor that is a linear combination of the others: the
whitening is singular and the posterior answers nothing); a fit whose residual SD is ~0 relative
to the outcome's is flagged in a ``degenerate`` column, which keeps it from every verdict.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..defaults import DEFAULTS
from ..progress import follow_progress
from ..results import result_frame

#: Sampler settings of the pipeline (``make report``); tests pass smaller ones.
#: 2,000 tuning steps and target_accept 0.95: at 1,000 / 0.8 the RGB model had 6 divergent transitions
#: on the released data (heavy-tailed intercept prior far from the uncentred intercept); at these
#: settings it has none.
#: (The values live in :data:`discbias.defaults.DEFAULTS`, shared with the configuration schema.)
SAMPLER_DEFAULTS = {k: v for k, v in DEFAULTS["models"].items() if k != "n_boot"}
#: NUTS implementations: nutpie (PyMC model compiled with numba, sampled in Rust; about 2x faster
#: here on the Figure 7 model) or PyMC's own sampler.
SAMPLERS = ("nutpie", "pymc")
#: A fit is called converged when every reported parameter has R-hat <= this, bulk and tail ESS
#: >= ``MIN_ESS`` and there are no divergent transitions.
MAX_RHAT = 1.01
MIN_ESS = 400


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings: draws and tuning steps per chain, chains, worker processes, seed."""

    draws: int = SAMPLER_DEFAULTS["draws"]
    tune: int = SAMPLER_DEFAULTS["tune"]
    chains: int = SAMPLER_DEFAULTS["chains"]
    cores: int = SAMPLER_DEFAULTS["cores"]
    target_accept: float = SAMPLER_DEFAULTS["target_accept"]
    seed: int = SAMPLER_DEFAULTS["seed"]
    init: str = "jitter+adapt_diag"
    sampler: str = SAMPLER_DEFAULTS["sampler"]
    #: "diag" (diagonal mass matrix) or "low_rank" (nutpie's low-rank modified mass matrix, which
    #: adapts to the few strongly correlated directions of a posterior; nutpie only)
    mass_matrix: str = "diag"

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, not {self.sampler!r}")
        if self.mass_matrix not in ("diag", "low_rank"):
            raise ValueError(f"mass_matrix must be 'diag' or 'low_rank', not {self.mass_matrix!r}")
        if self.mass_matrix == "low_rank" and self.sampler != "nutpie":
            raise ValueError("mass_matrix='low_rank' needs sampler='nutpie'")

    def describe(self) -> str:
        mm = ", low-rank modified mass matrix" if self.mass_matrix == "low_rank" else ""
        return (f"NUTS ({self.sampler}{mm}), {self.chains} chains x {self.draws} draws after {self.tune} tuning steps, "
                f"target_accept {self.target_accept}, seed {self.seed}")


def _check(df: pd.DataFrame, y: str, xs: list[str], who: str) -> tuple[pd.DataFrame, list[str]]:
    missing = [c for c in [y, *xs] if c not in df.columns]
    if missing:
        raise KeyError(f"{who}: missing columns {missing}")
    used = df[[y, *xs]].apply(pd.to_numeric, errors="coerce")
    bad = used.isna().any(axis=1)
    warns = []
    if bad.any():
        warns.append(f"{int(bad.sum())} row{'' if int(bad.sum()) == 1 else 's'} dropped for missing values")
    from .degenerate import design_degenerate

    d = used[~bad]
    why = design_degenerate(d[y].to_numpy(float), np.c_[np.ones(len(d)), d[xs].to_numpy(float)], ["Intercept", *xs],
                            outcome=y)
    if why:
        # the sampler would fail (a singular whitening) or sample a posterior that answers nothing
        raise ValueError(f"{who}: the model is degenerate before sampling: {why}; not sampled")
    return d, warns


def _flag_residual(tidy: pd.DataFrame, yv: np.ndarray) -> pd.DataFrame:
    """Flag a fit whose residual SD (posterior mean) is ~0 relative to the outcome's: ``degenerate`` on every row."""
    from .degenerate import residual_degenerate

    sig = tidy.loc[tidy["term"] == "sigma", "estimate"]
    if not len(sig) or len(yv) < 2:
        return tidy
    why = residual_degenerate(float(sig.iloc[0]) ** 2, float(np.var(yv, ddof=1)))
    if why:
        tidy = tidy.copy()
        tidy["degenerate"] = why
        tidy["warnings"] = [f"{w}; degenerate fit: {why}" if w else f"degenerate fit: {why}" for w in tidy["warnings"]]
    return tidy


def _sample(model, settings: SamplerSettings):
    """Sample ``model``; the wall-clock seconds are stored in ``idata.attrs["sampling_seconds"]``."""
    import time

    t0 = time.perf_counter()
    idata = _sample_inner(model, settings)
    idata.attrs["sampling_seconds"] = time.perf_counter() - t0
    return idata


def _sample_inner(model, settings: SamplerSettings):
    import pymc as pm

    loggers = [logging.getLogger(n) for n in ("pymc", "pymc.sampling.mcmc", "pytensor")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with model, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if settings.sampler == "nutpie":
                return _sample_nutpie(model, settings)
            return pm.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains, cores=settings.cores,
                             random_seed=settings.seed, progressbar=False,
                             target_accept=settings.target_accept, compute_convergence_checks=False,
                             init=settings.init)
    finally:
        for lg, lv in zip(loggers, old):
            lg.setLevel(lv)


def _sample_nutpie(model, settings: SamplerSettings):
    """nutpie's NUTS on ``model`` as ``pm.sample(nuts_sampler="nutpie")`` runs it (same compiled model,
    same seed derivation, so the same draws), in the background, with a progress bar of the draws
    of all chains (tuning included) on stderr (:func:`discbias.progress.follow_progress`)."""
    import nutpie
    from pymc.sampling.mcmc import _get_seeds_per_chain

    compiled = nutpie.compile_pymc_model(model)
    kw = dict(low_rank_modified_mass_matrix=True) if settings.mass_matrix == "low_rank" else {}
    sampler = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                            target_accept=settings.target_accept, seed=_get_seeds_per_chain(settings.seed, 1)[0],
                            progress_bar=False, blocking=False, **kw)

    total = settings.chains * (settings.tune + settings.draws)

    def count():
        draws, _ = sampler._sampler.inspect().get_arrow_trace()  # nutpie's trace so far (no public count)
        return sum(b.num_rows for b in draws)

    def finished():
        try:
            return bool(sampler.is_finished)
        except TimeoutError:  # nutpie's answer while the chains still run
            return False
        except Exception:  # noqa: BLE001 - a failed sampler: wait() below raises its error
            return True

    follow_progress(count, finished, total, desc=f"NUTS {settings.chains} chains", unit="draw", every=1.0)
    return sampler.wait()


def _ols_whitening(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients (intercept first) and the Cholesky factor of their covariance."""
    X1 = np.column_stack([np.ones(len(X)), X])
    beta, *_ = np.linalg.lstsq(X1, y, rcond=None)
    resid = y - X1 @ beta
    s2 = float(resid @ resid) / max(len(y) - X1.shape[1], 1)
    return beta, np.linalg.cholesky(s2 * np.linalg.inv(X1.T @ X1))


def _whitened_given_intercept(X: np.ndarray, y: np.ndarray, b0):
    """Slopes in OLS-whitened coordinates given the intercept ``b0`` (call inside a model).

    As :func:`_whitened_coefficients` with the intercept ordered first in the Cholesky factor
    ``L``: the intercept depends on the first whitened coordinate alone, ``b0 = ols_0 + L_00
    theta_0``, so ``theta_0`` is replaced by ``(b0 - ols_0) / L_00`` with ``b0`` sampled in its own
    coordinates (by the caller), and the slopes are ``ols + L @ (theta_0, theta_rest)`` with flat
    ``theta_rest``. The map ``(b0, theta_rest) -> (b0, slopes)`` is linear (constant Jacobian).
    """
    import pymc as pm
    import pytensor.tensor as pt

    beta, L = _ols_whitening(X, y)
    rest = pm.Flat("theta", shape=len(beta) - 1)
    theta = pt.concatenate([pt.reshape((b0 - beta[0]) / L[0, 0], (1,)), rest])
    coefs = pm.math.constant(beta) + pm.math.dot(pm.math.constant(L), theta)
    return coefs[1:]


def _whitened_coefficients(X: np.ndarray, y: np.ndarray):
    """Intercept and slopes as ``ols + L @ theta`` with flat ``theta`` (call inside a model).

    ``L`` is the Cholesky factor of the OLS covariance of the coefficients. The priors are then
    added as ``Potential`` terms on the coefficients, so the posterior is exactly the model's
    (a linear map has a constant Jacobian); only the coordinates NUTS moves in change, which
    removes the strong intercept-slope and between-channel correlations of uncentred predictors.
    """
    import pymc as pm

    beta, L = _ols_whitening(X, y)
    theta = pm.Flat("theta", shape=len(beta))
    return pm.math.constant(beta) + pm.math.dot(pm.math.constant(L), theta)


def posterior_table(idata, terms: dict[str, str], *, model: str, method: str, n_obs: int,
                    hdi_prob: float = 0.95, extra: dict | None = None, warnings_: list[str] | None = None) -> pd.DataFrame:
    """Tidy posterior summary: mean, SD, HDI, R-hat, bulk/tail ESS and divergences per parameter.

    Parameters
    ----------
    idata : arviz.InferenceData
    terms : dict
        Posterior variable name -> term name in the table (in this order).
    model, method : str
    n_obs : int
    hdi_prob : float
    extra : dict, optional
        Extra columns for every row.
    warnings_ : list of str, optional
        Warnings known before sampling (dropped rows).

    Returns
    -------
    DataFrame
        ``estimate`` = posterior mean, ``std_error`` = posterior SD, ``conf_low/high`` = HDI,
        ``p_value`` empty, extra columns ``r_hat``, ``ess_bulk``, ``ess_tail``, ``divergences``,
        ``prob_positive`` (posterior probability that the parameter is > 0),
        ``sampling_seconds`` (wall-clock time of the sampler, when recorded), and the Monte Carlo
        standard errors (ArviZ) ``mcse_mean`` (of ``estimate``), ``mcse_sd`` (of ``std_error``),
        ``mcse_conf_low`` / ``mcse_conf_high`` (of the HDI bounds: the MCSE of the quantile at
        each bound's tail probability in the draws) that ``discbias verify`` uses as tolerances. ``converged`` is
        true when every listed parameter has R-hat <= 1.01, ESS >= 400 and no divergences.

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> idata = az.from_dict(posterior={"b": rng.normal(1, 0.1, (2, 500))},
    ...                      sample_stats={"diverging": np.zeros((2, 500), bool)})
    >>> t = posterior_table(idata, {"b": "x"}, model="m", method="demo", n_obs=10)
    >>> round(float(t.loc[0, "estimate"]), 1), bool(t.loc[0, "converged"])
    (1.0, True)
    """
    import arviz as az

    names = list(terms)
    summ = az.summary(idata, var_names=names, hdi_prob=hdi_prob, round_to="none", kind="all")
    hdi_cols = [c for c in summ.columns if c.startswith("hdi_")]
    div = int(np.asarray(idata.sample_stats["diverging"]).sum()) if "diverging" in idata.sample_stats else 0
    n_draws = int(idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"])
    warns = list(warnings_ or [])
    if div:
        warns.append(f"{div} divergent transition{'' if div == 1 else 's'} of {n_draws}")
    worst_rhat = float(summ["r_hat"].max())
    low_ess = float(min(summ["ess_bulk"].min(), summ["ess_tail"].min()))
    if not np.isfinite(worst_rhat) or worst_rhat > MAX_RHAT:
        warns.append(f"max R-hat {worst_rhat:.3f} > {MAX_RHAT}")
    if low_ess < MIN_ESS:
        warns.append(f"min ESS {low_ess:.0f} < {MIN_ESS}")
    converged = bool(div == 0 and np.isfinite(worst_rhat) and worst_rhat <= MAX_RHAT and low_ess >= MIN_ESS)
    rows = []
    post = idata.posterior
    for var, term in terms.items():
        s = summ.loc[var]
        draws = np.asarray(post[var]).ravel()
        # MCSE of each HDI bound: that of the quantile at the bound's tail probability in the draws
        p_lo = float(np.clip((draws <= float(s[hdi_cols[0]])).mean(), 1 / len(draws), 1 - 1 / len(draws)))
        p_hi = float(np.clip((draws <= float(s[hdi_cols[1]])).mean(), 1 / len(draws), 1 - 1 / len(draws)))
        mcse_lo = float(az.mcse(idata, var_names=[var], method="quantile", prob=p_lo)[var])
        mcse_hi = float(az.mcse(idata, var_names=[var], method="quantile", prob=p_hi)[var])
        rows.append(dict(model=model, term=term, estimate=float(s["mean"]), std_error=float(s["sd"]),
                         statistic=np.nan, p_value=np.nan, conf_low=float(s[hdi_cols[0]]),
                         conf_high=float(s[hdi_cols[1]]), conf_level=hdi_prob,
                         method=method, n_obs=n_obs, n_groups=np.nan, converged=converged, warnings=list(warns),
                         r_hat=float(s["r_hat"]), ess_bulk=float(s["ess_bulk"]), ess_tail=float(s["ess_tail"]),
                         divergences=div, n_draws=n_draws, prob_positive=float((draws > 0).mean()),
                         mcse_mean=float(s["mcse_mean"]), mcse_sd=float(s["mcse_sd"]),
                         mcse_conf_low=mcse_lo, mcse_conf_high=mcse_hi,
                         sampling_seconds=float(idata.attrs.get("sampling_seconds", np.nan)), **(extra or {})))
    return result_frame(rows)


def rgb_bayes(df: pd.DataFrame, y: str = "score", xs: tuple[str, ...] = ("red_mean", "green_mean", "blue_mean"), *,
              model: str = "rgb_bayes", settings: SamplerSettings | None = None) -> tuple[pd.DataFrame, object]:
    """The paper's Bayesian regression of score on the colour channel means (normal likelihood).

    Parameters
    ----------
    df : DataFrame
    y : str
        Outcome column.
    xs : tuple of str
        Predictor columns (uncentred, as in the paper).
    model : str
        Model id.
    settings : SamplerSettings, optional

    Returns
    -------
    tidy : DataFrame
        Rows for ``Intercept``, each predictor and ``sigma`` (see :func:`posterior_table`).
    idata : arviz.InferenceData

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"r": rng.uniform(0, 10, 200)}); df["y"] = 5 + 0.5 * df.r + rng.normal(size=200)
    >>> tidy, _ = rgb_bayes(df, "y", ("r",), settings=SamplerSettings(200, 200, 2, 1))  # doctest: +SKIP
    """
    import pymc as pm

    settings = settings or SamplerSettings()
    xs = list(xs)
    d, warns = _check(df, y, xs, model)
    yv = d[y].to_numpy(float)
    X = d[xs].to_numpy(float)
    with pm.Model() as m:
        sigma_c = pm.HalfStudentT("sigma_c", nu=10, sigma=1, shape=len(xs))
        sigma_0 = pm.HalfStudentT("sigma_0", nu=10, sigma=1)
        coefs = _whitened_coefficients(X, yv)
        b0, b = coefs[0], coefs[1:]
        pm.Potential("prior_b0", pm.logp(pm.Normal.dist(mu=float(yv.mean()), sigma=sigma_0), b0))
        pm.Potential("prior_b", pm.logp(pm.Normal.dist(mu=0.0, sigma=sigma_c), b).sum())
        sigma = pm.HalfStudentT("sigma", nu=10, sigma=1)
        pm.Normal("y", mu=b0 + pm.math.dot(X, b), sigma=sigma, observed=yv)
        pm.Deterministic("b0", b0)
        for j in range(len(xs)):
            pm.Deterministic(f"b_{j}", b[j])
    idata = _sample(m, settings)
    terms = {"b0": "Intercept", **{f"b_{j}": x for j, x in enumerate(xs)}, "sigma": "sigma"}
    method = ("Bayesian linear regression, paper's priors (posterior mean, 95% HDI); " + settings.describe())
    tidy = posterior_table(idata, terms, model=model, method=method, n_obs=len(d), warnings_=warns,
                           extra=dict(formula=f"{y} ~ {' + '.join(xs)}", spec="paper"))
    return _flag_residual(tidy, yv), idata


PARAMETRIZATIONS = ("centred_intercept", "noncentred", "whitened", "whitened_mixture", "scale_mixture",
                    "scale_mixture_ci")


def elicited_model(yv: np.ndarray, X: np.ndarray, xs: list[str], idx: np.ndarray, *, spec: str = "paper",
                   parametrization: str = "whitened_mixture"):
    """The PyMC model of :func:`elicited_bayes` (not sampled), in the given coordinates.

    Parameters
    ----------
    yv : ndarray
        Outcome.
    X : ndarray
        Predictors (n x k), already centred for ``spec="centred"``.
    xs : list of str
        Predictor names (length k).
    idx : ndarray of int
        For each predictor, the index of the ``sigma_c`` it uses (shared scales).
    spec, parametrization : str
        As in :func:`elicited_bayes`.

    Returns
    -------
    pymc.Model
        Deterministics ``b0``, ``b_0`` ... ``b_{k-1}`` hold the intercept and slopes in every
        parametrization (the tests compare the models' densities through them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(1, 7, (50, 2)); y = 150 + X @ [1.0, -1.0] + rng.normal(0, 5, 50)
    >>> m = elicited_model(y, X, ["a", "b"], np.array([0, 0]))
    >>> sorted(v.name for v in m.deterministics)
    ['b0', 'b_0', 'b_1', 'mu_0', 'mu_c']
    """
    import pymc as pm

    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, not {parametrization!r}")
    own = list(range(int(np.max(idx)) + 1))
    if parametrization in ("scale_mixture", "scale_mixture_ci"):
        return _scale_mixture_model(yv, X, xs, idx, own, spec=spec, flat_centred=parametrization == "scale_mixture_ci")
    nc = parametrization in ("noncentred", "centred_intercept")
    ci = parametrization == "centred_intercept"
    mix = parametrization == "whitened_mixture"
    xbar = X.mean(axis=0)
    with pm.Model() as m:
        nu = pm.HalfCauchy("nu", beta=2)
        sigma_c = pm.HalfStudentT("sigma_c", nu=10, sigma=1, shape=len(own))
        s = sigma_c[idx]
        z_mu = pm.Normal("z_mu", 0, 1, shape=len(xs))
        mu_c = pm.Deterministic("mu_c", s * z_mu)
        if mix:
            # the intercept's Student-t prior as its normal scale mixture (b0 = mu_0 + s_0 z / sqrt(lam),
            # z ~ N(0, 1), lam ~ Gamma(nu/2, nu/2): marginally t(nu, mu_0, s_0)), non-centred; the slopes
            # in OLS-whitened coordinates given b0, their t priors as potentials
            if spec == "paper":
                sigma_0 = pm.HalfStudentT("sigma_0", nu=10, sigma=1)
                z0 = pm.Normal("z0", 0, 1)
                mu_0 = pm.Deterministic("mu_0", float(yv.mean()) + sigma_0 * z0)
                s_0 = pm.HalfStudentT("s_0", nu=10, sigma=1)
                lam0 = pm.Gamma("lam0", alpha=nu / 2, beta=nu / 2)
                b0 = mu_0 + s_0 * pm.Normal("z_b0", 0, 1) / pm.math.sqrt(lam0)
            else:
                b0 = float(yv.mean()) + 2.5 * float(yv.std()) * pm.Normal("z_b0", 0, 1)
            b = _whitened_given_intercept(X, yv, b0)
            pm.Potential("prior_b", pm.logp(pm.StudentT.dist(nu=nu, mu=mu_c, sigma=s), b).sum())
        elif nc:
            w = pm.StudentT("w", nu=nu, mu=0, sigma=1, shape=len(xs))
            b = mu_c + s * w
        else:
            coefs = _whitened_coefficients(X, yv)
            b0, b = coefs[0], coefs[1:]
            pm.Potential("prior_b", pm.logp(pm.StudentT.dist(nu=nu, mu=mu_c, sigma=s), b).sum())
        if mix:
            pass
        elif spec == "paper":
            sigma_0 = pm.HalfStudentT("sigma_0", nu=10, sigma=1)
            z0 = pm.Normal("z0", 0, 1)
            mu_0 = pm.Deterministic("mu_0", float(yv.mean()) + sigma_0 * z0)
            s_0 = pm.HalfStudentT("s_0", nu=10, sigma=1)
            if ci:
                c0 = pm.Flat("c0", initval=float(yv.mean()))
                b0 = c0 - pm.math.dot(pm.math.constant(xbar), b)
                pm.Potential("prior_b0", pm.logp(pm.StudentT.dist(nu=nu, mu=mu_0, sigma=s_0), b0))
            elif nc:
                b0 = mu_0 + s_0 * pm.StudentT("w0", nu=nu, mu=0, sigma=1)
            else:
                pm.Potential("prior_b0", pm.logp(pm.StudentT.dist(nu=nu, mu=mu_0, sigma=s_0), b0))
        elif ci:
            c0 = pm.Flat("c0", initval=float(yv.mean()))
            b0 = c0 - pm.math.dot(pm.math.constant(xbar), b)
            pm.Potential("prior_b0", pm.logp(pm.Normal.dist(mu=float(yv.mean()), sigma=2.5 * float(yv.std())), b0))
        elif nc:
            b0 = pm.Normal("b0_raw", mu=float(yv.mean()), sigma=2.5 * float(yv.std()))
        else:
            pm.Potential("prior_b0", pm.logp(pm.Normal.dist(mu=float(yv.mean()), sigma=2.5 * float(yv.std())), b0))
        pm.Deterministic("b0", b0)
        sigma = pm.HalfNormal("sigma", sigma=float(yv.std(ddof=1)))
        pm.Normal("y", mu=b0 + pm.math.dot(X, b), sigma=sigma, observed=yv)
        for j in range(len(xs)):
            pm.Deterministic(f"b_{j}", b[j])
    return m


def _gamma_precision(name: str, nu, shape):
    """``lam ~ Gamma(nu/2, rate=nu/2)`` sampled as ``v = log(lam) a / sqrt(1 + a)``, ``a = nu/2`` (call in a model).

    The log of a Gamma(a, a) variable has a left tail ``exp(a log lam)``: for small ``a`` (heavy
    tails, small ``nu``) it spreads over tens of units, for large ``a`` it shrinks to ``N(0, 1/a)``,
    so ``nu`` and ``log lam`` form a funnel. Scaled by ``a / sqrt(1 + a)`` (about ``a`` for small
    ``a``, ``sqrt(a)`` for large) the coordinate ``v`` has a scale of about 1 whatever ``nu`` is.
    ``v`` is flat and the Gamma density of ``lam(v)`` with the log-Jacobian ``log lam + log(c)``,
    ``c = sqrt(1 + a) / a``, is added as a potential: a change of variables at fixed ``nu``, so the
    joint density of ``(nu, lam)`` is exactly the model's. Returns ``lam`` (a Deterministic).
    """
    import pymc as pm
    import pytensor.tensor as pt

    a = nu / 2
    c = pm.math.sqrt(1 + a) / a
    kw = {} if shape is None else dict(shape=shape)
    v = pm.Flat(f"v_{name}", **kw)
    log_lam = c * v
    lam = pm.Deterministic(name, pm.math.exp(log_lam))
    # log Gamma(a, a) density at lam plus the log-Jacobian log(lam) + log(c), in log space (no underflow)
    lp = a * pm.math.log(a) - pt.gammaln(a) + a * log_lam - a * lam + pm.math.log(c)
    pm.Potential(f"prior_{name}", lp.sum() if shape is not None else lp)
    return lam


def _scale_mixture_model(yv, X, xs, idx, own, *, spec: str, flat_centred: bool):
    """The model of :func:`elicited_model` with every Student-t prior as a non-centred normal scale mixture.

    A Student-t ``t(nu, mu, s)`` is the marginal of ``mu + s z / sqrt(lam)`` with ``z ~ N(0, 1)``
    and ``lam ~ Gamma(nu/2, rate=nu/2)``; so the slopes are ``b_c = mu_c + sigma_c z_c / sqrt(lam_c)``
    and (paper's specification) the intercept ``b0 = mu_0 + s_0 z_b0 / sqrt(lam0)``. The shared
    ``nu`` then enters only the Gamma densities of the ``lam`` (no funnel between ``nu`` and the
    coefficients). With ``flat_centred`` the intercept of the centred predictors is sampled flat
    and the paper's intercept prior is the mixture's normal density on the implied uncentred
    intercept (a unit-Jacobian linear map, as ``centred_intercept``).
    """
    import pymc as pm

    xbar = X.mean(axis=0)
    k = len(xs)
    with pm.Model() as m:
        nu = pm.HalfCauchy("nu", beta=2)
        sigma_c = pm.HalfStudentT("sigma_c", nu=10, sigma=1, shape=len(own))
        s = sigma_c[idx]
        z_mu = pm.Normal("z_mu", 0, 1, shape=k)
        mu_c = pm.Deterministic("mu_c", s * z_mu)
        lam = _gamma_precision("lam", nu, k)
        z_b = pm.Normal("z_b", 0, 1, shape=k)
        b = mu_c + s * z_b / pm.math.sqrt(lam)
        if spec == "paper":
            sigma_0 = pm.HalfStudentT("sigma_0", nu=10, sigma=1)
            z0 = pm.Normal("z0", 0, 1)
            mu_0 = pm.Deterministic("mu_0", float(yv.mean()) + sigma_0 * z0)
            s_0 = pm.HalfStudentT("s_0", nu=10, sigma=1)
            lam0 = _gamma_precision("lam0", nu, None)
            if flat_centred:
                c0 = pm.Flat("c0", initval=float(yv.mean()))
                b0 = c0 - pm.math.dot(pm.math.constant(xbar), b)
                pm.Potential("prior_b0", pm.logp(pm.Normal.dist(mu=mu_0, sigma=s_0 / pm.math.sqrt(lam0)), b0))
            else:
                b0 = mu_0 + s_0 * pm.Normal("z_b0", 0, 1) / pm.math.sqrt(lam0)
        elif flat_centred:
            c0 = pm.Flat("c0", initval=float(yv.mean()))
            b0 = c0 - pm.math.dot(pm.math.constant(xbar), b)
            pm.Potential("prior_b0", pm.logp(pm.Normal.dist(mu=float(yv.mean()), sigma=2.5 * float(yv.std())), b0))
        else:
            b0 = float(yv.mean()) + 2.5 * float(yv.std()) * pm.Normal("z_b0", 0, 1)
        pm.Deterministic("b0", b0)
        sigma = pm.HalfNormal("sigma", sigma=float(yv.std(ddof=1)))
        pm.Normal("y", mu=b0 + pm.math.dot(X, b), sigma=sigma, observed=yv)
        for j in range(k):
            pm.Deterministic(f"b_{j}", b[j])
    return m


def elicited_bayes(df: pd.DataFrame, y: str, xs: list[str], *, shared_scale: dict[str, str] | None = None,
                   spec: str = "paper", model: str = "elicited_bayes", settings: SamplerSettings | None = None,
                   parametrization: str = "centred_intercept") -> tuple[pd.DataFrame, object]:
    """The paper's Figure 7 model: score on per-image mean ratings with Student-t slopes.

    Parameters
    ----------
    df : DataFrame
    y : str
        Outcome column.
    xs : list of str
        Predictor columns.
    shared_scale : dict, optional
        ``{predictor: other}``: ``predictor`` uses ``other``'s ``sigma_c`` (the paper ties
        femininity to masculinity).
    spec : {"paper", "centred"}
        ``"paper"``: uncentred predictors, t intercept centred on the mean score with scale
        ``~HalfStudentT(10, 1)``. ``"centred"``: centred predictors and a
        ``Normal(mean(y), 2.5 sd(y))`` intercept (the slopes' priors unchanged).
    model : str
    settings : SamplerSettings, optional
    parametrization : {"centred_intercept", "noncentred", "whitened", "whitened_mixture"}
        Coordinates NUTS samples in; the model (priors and likelihood) is the same.
        ``"centred_intercept"`` (default): the intercept of the *centred* predictors ``c0`` (which
        the data pin down) is sampled with a flat density, the paper's intercept prior is put
        on the implied uncentred intercept ``b0 = c0 - mean(x) . b`` (a linear change of variables
        with unit Jacobian, so the posterior is the same) and the slopes are non-centred as below.
        ``"noncentred"``: each Student-t coefficient as location + scale x a standard Student-t
        draw (``b_c = mu_c + sigma_c w_c``, ``b0 = mu_0 + s_0 w_0``, ``w ~ StudentT(nu, 0, 1)``):
        the rating slopes and the paper's uncentred intercept are weakly identified relative to
        their prior scales, where the centred form has funnels that leave R-hat > 1.01.
        ``"whitened"``: intercept and slopes in OLS-whitened coordinates with the priors as
        potentials (:func:`_whitened_coefficients`). ``"whitened_mixture"``: the intercept's
        Student-t prior as its normal scale mixture, non-centred (``b0 = mu_0 + s_0 z /
        sqrt(lam)``, ``z ~ N(0, 1)``, ``lam ~ Gamma(nu/2, nu/2)``; marginally the same t), the
        slopes OLS-whitened given ``b0`` (:func:`_whitened_given_intercept`) with their priors
        as potentials: for a heavy-tailed intercept posterior (prior core vs data far from it).

    Returns
    -------
    tidy : DataFrame
        Rows ``Intercept``, each predictor, ``sigma`` and ``nu``.
    idata : arviz.InferenceData

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"m": rng.uniform(1, 7, 200), "f": rng.uniform(1, 7, 200)})
    >>> df["y"] = 150 - 2 * df.m + rng.normal(0, 5, 200)
    >>> tidy, _ = elicited_bayes(df, "y", ["m", "f"], shared_scale={"f": "m"},
    ...                          settings=SamplerSettings(200, 200, 2, 1))  # doctest: +SKIP
    """
    if spec not in ("paper", "centred"):
        raise ValueError(f"spec must be 'paper' or 'centred', not {spec!r}")
    settings = settings or SamplerSettings()
    shared_scale = dict(shared_scale or {})
    for k, v in shared_scale.items():
        if k not in xs or v not in xs:
            raise ValueError(f"shared_scale {k!r} -> {v!r}: both must be predictors ({xs})")
    d, warns = _check(df, y, xs, model)
    yv = d[y].to_numpy(float)
    X = d[xs].to_numpy(float)
    means = X.mean(axis=0)
    if spec == "centred":
        X = X - means
    own = [x for x in xs if x not in shared_scale]
    idx = np.array([own.index(shared_scale.get(x, x)) for x in xs])
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, not {parametrization!r}")
    m = elicited_model(yv, X, xs, idx, spec=spec, parametrization=parametrization)
    idata = _sample(m, settings)
    terms = {"b0": "Intercept", **{f"b_{j}": x for j, x in enumerate(xs)}, "sigma": "sigma", "nu": "nu"}
    what = ("paper's specification (uncentred predictors, t intercept centred on the mean score)" if spec == "paper"
            else "centred predictors, weakly informative Normal intercept")
    method = (f"Bayesian regression with Student-t slopes, {what} (posterior mean, 95% HDI); sampled "
              f"{dict(centred_intercept='with the centred-predictor intercept and non-centred slopes', noncentred='non-centred', whitened='in OLS-whitened coordinates', whitened_mixture='with the intercept non-centred as a normal scale mixture and the slopes OLS-whitened given it', scale_mixture='with every Student-t prior as a non-centred normal scale mixture', scale_mixture_ci='with every Student-t prior as a non-centred normal scale mixture and the centred-predictor intercept')[parametrization]}; " + settings.describe())
    tidy = posterior_table(idata, terms, model=model, method=method, n_obs=len(d), warnings_=warns,
                           extra=dict(formula=f"{y} ~ {' + '.join(xs)}", spec=spec))
    if spec == "centred":
        tidy["predictor_mean"] = tidy["term"].map(dict(zip(xs, means)))
    return _flag_residual(tidy, yv), idata
