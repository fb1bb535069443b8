"""Dose-response models of probe scores: score ~ spline(level) + (1 + level | base image).

One linear mixed model (statsmodels ``MixedLM``, REML) per probe and input protocol: a natural
cubic regression spline of the level (patsy ``cr``, centred) as fixed effects, and a random
intercept and a random linear slope on the level per base image. Reported per model:

* the fixed effects, and a joint Wald test that the spline terms are all zero (does the level
  matter at all?);
* ``slope_at_level_0``: the derivative of the population curve at the original image (delta
  method, exact because the curve is linear in the coefficients);
* ``argmax_level``: the level of the probed range that maximises the population curve, with a
  parametric-bootstrap interval (coefficients drawn from their estimated normal distribution);
  ``at_edge`` says when it lies at the end of the probed range (the true maximum may lie beyond);
* the random-effect variances and the residual variance;
* honest diagnostics in ``converged`` and ``warnings``: optimiser warnings, a fall-back from
  random slopes to random intercepts, near-zero random-effect variances (singular fits), and the
  largest difference between the mixed model's and OLS's fitted population curves.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..results import result_frame


def _spline_formula(n_levels: int, spline_df: int | None) -> str:
    if n_levels < 2:
        raise ValueError("a dose-response model needs at least two distinct levels")
    if n_levels <= 3:
        return "score ~ level" if n_levels == 2 else "score ~ level + I(level ** 2)"
    k = spline_df or min(4, n_levels - 1)
    k = max(3, min(k, n_levels - 1))
    return f"score ~ cr(level, df={k}, constraints='center')"


def _fit_mixed(d: pd.DataFrame, exog: pd.DataFrame, random_slopes: bool):
    import statsmodels.api as sm

    msgs = []
    res = None
    exog_re = pd.DataFrame({"Intercept": 1.0, "level": d["level"].to_numpy()}, index=d.index) if random_slopes else None
    for method in ("lbfgs", "powell", "nm"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                m = sm.MixedLM(d["score"], exog, groups=d["base"], exog_re=exog_re)
                res = m.fit(reml=True, method=method)
            except (np.linalg.LinAlgError, ValueError) as exc:
                msgs.append(f"{method}: {type(exc).__name__}: {exc}")
                res = None
                continue
        w = sorted({f"{type(c.message).__name__}: {str(c.message).splitlines()[0]}" for c in caught})
        if res is not None and res.converged:
            return res, w + msgs
        msgs.extend(f"{method}: {x}" for x in w)
        msgs.append(f"{method}: did not converge")
    return res, msgs


def fit_dose_response(df: pd.DataFrame, *, probe: str, protocol: str, spline_df: int | None = None,
                      n_boot: int = 2000, grid_n: int = 201, seed: int = 0,
                      conf_level: float = 0.95, slope_points: dict[str, float] | None = None,
                      model_name: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the dose-response mixed model of one probe under one protocol.

    Parameters
    ----------
    df : DataFrame
        Probe scores with columns ``probe, protocol, base, level, score`` (other rows ignored).
    probe, protocol : str
    spline_df : int, optional
        Degrees of freedom of the level spline (default ``min(4, n_levels - 1)``).
    n_boot : int
        Parametric-bootstrap draws for the argmax interval.
    slope_points : dict of str to float, optional
        Derivatives of the population curve to report (term name -> level); default
        ``{"slope_at_level_0": 0.0}`` (only points inside the probed range are reported).

    Returns
    -------
    tidy : DataFrame
        Rows in the results schema (model ``probe:<probe>:<protocol>``).
    curve : DataFrame
        The population curve on a grid: ``probe, protocol, level, estimate, conf_low, conf_high``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lv = np.repeat(np.linspace(-2, 2, 9)[None], 6, 0)
    >>> base = np.repeat(np.arange(6)[:, None], 9, 1)
    >>> score = -(lv - 0.5) ** 2 + rng.normal(0, 1, 6)[base] + rng.normal(0, .1, lv.shape)
    >>> d = pd.DataFrame(dict(probe="exposure", protocol="nvidia", base=base.ravel(), level=lv.ravel(), score=score.ravel()))
    >>> tidy, curve = fit_dose_response(d, probe="exposure", protocol="nvidia", n_boot=200)
    >>> r = tidy.set_index("term").loc["argmax_level"]
    >>> bool(abs(r["estimate"] - 0.5) < 0.15), bool(r["conf_low"] <= r["estimate"] <= r["conf_high"])
    (True, True)
    """
    d = df[(df["probe"] == probe) & (df["protocol"] == protocol)][["base", "level", "score"]].dropna().copy()
    d["base"] = d["base"].astype(str)
    model = model_name or f"probe:{probe}:{protocol}"
    n_levels = d["level"].nunique()
    formula = _spline_formula(n_levels, spline_df)
    n_groups = d["base"].nunique()
    warn: list[str] = []
    re = "~level"
    method = "MixedLM (REML): spline of level, random intercept and slope on level by base image"
    if n_groups < 2:
        raise ValueError(f"{model}: needs at least two base images for random effects (got {n_groups})")
    from patsy import build_design_matrices, dmatrix

    exog = dmatrix(formula.split("~", 1)[1], d, return_type="dataframe")
    design_info = exog.design_info
    res, w = _fit_mixed(d, exog, True)
    warn += w
    if res is None or not res.converged:
        warn.append("random slopes dropped: the random-slope model did not converge; refitted with random intercepts only")
        res, w = _fit_mixed(d, exog, False)
        warn += w
        re = None
        method = "MixedLM (REML): spline of level, random intercept by base image"
    if res is None:
        raise RuntimeError(f"{model}: no mixed model could be fitted: {'; '.join(warn)}")
    converged = bool(res.converged)
    fe = res.fe_params
    names = list(fe.index)
    cov = res.cov_params().loc[names, names].to_numpy()
    beta = fe.to_numpy()
    def X(levels):
        return np.asarray(build_design_matrices([design_info], pd.DataFrame({"level": levels}))[0])

    # Singular random effects and the OLS comparison (see DESIGN.md's traps).
    cov_re = np.atleast_2d(np.asarray(res.cov_re))
    scale = float(res.scale)
    for i, nm in enumerate(res.cov_re.index if hasattr(res.cov_re, "index") else range(len(cov_re))):
        if cov_re[i, i] < 1e-6 * max(scale, 1e-12):
            warn.append(f"singular fit: random-effect variance of {nm} is near zero")
    import statsmodels.api as sm

    ols = sm.OLS(d["score"], exog).fit()
    lo, hi = float(d["level"].min()), float(d["level"].max())
    grid = np.linspace(lo, hi, grid_n)
    Xg = X(grid)
    pred = Xg @ beta
    ols_pred = Xg @ ols.params.to_numpy()
    ols_diff = float(np.max(np.abs(pred - ols_pred)))
    sd = float(d["score"].std()) or 1.0
    if ols_diff > 0.1 * sd:
        warn.append(f"the mixed model's population curve differs from OLS by up to {ols_diff:.3g} (>{0.1:.0%} of the score SD)")
    z = stats.norm.ppf(0.5 + conf_level / 2)
    ev = np.linalg.eigvalsh((cov + cov.T) / 2)
    if ev.min() < -1e-10 * max(abs(ev.max()), 1e-300):
        warn.append(f"the fixed effects' covariance is not positive semi-definite (smallest eigenvalue {ev.min():.3g}): "
                    "standard errors and intervals that depend on it are undefined (NaN) or unreliable")
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.einsum("ij,jk,ik->i", Xg, cov, Xg))
    curve = pd.DataFrame(dict(probe=probe, protocol=protocol, level=grid, estimate=pred, std_error=se,
                              conf_low=pred - z * se, conf_high=pred + z * se))
    rows = []
    common = dict(model=model, conf_level=conf_level, method=method, n_obs=len(d), n_groups=n_groups,
                  converged=converged, formula=formula, re_formula=re or "~1", ols_max_abs_diff=ols_diff)
    with np.errstate(invalid="ignore"):
        bse = np.sqrt(np.diag(cov))
    for nm, b, s in zip(names, beta, bse):
        zz = b / s if s > 0 else np.nan
        rows.append(dict(term=nm, estimate=b, std_error=s, statistic=zz, p_value=2 * stats.norm.sf(abs(zz)),
                         conf_low=b - z * s, conf_high=b + z * s, **common))
    # Joint Wald test of the level terms.
    idx = [i for i, nm in enumerate(names) if nm != "Intercept"]
    try:
        bw = beta[idx]
        chi2 = float(bw @ np.linalg.solve(cov[np.ix_(idx, idx)], bw))
        rows.append(dict(term="wald_level_joint", estimate=chi2, statistic=chi2, p_value=stats.chi2.sf(chi2, len(idx)),
                         df=len(idx), **common))
    except np.linalg.LinAlgError as exc:
        warn.append(f"joint Wald test failed: {exc}")
    # Slope at the original (level 0), when 0 is in the range.
    for term, at in (slope_points if slope_points is not None else {"slope_at_level_0": 0.0}).items():
        if not lo <= at <= hi:
            warn.append(f"{term}: {at:.4g} lies outside the probed range [{lo:.4g}, {hi:.4g}]; not estimated")
            continue
        h = 1e-4 * (hi - lo)
        g = (X(np.array([at + h]))[0] - X(np.array([at - h]))[0]) / (2 * h)
        with np.errstate(invalid="ignore"):
            sl, sls = float(g @ beta), float(np.sqrt(g @ cov @ g))
        rows.append(dict(term=term, at=at, estimate=sl, std_error=sls, statistic=sl / sls if sls else np.nan,
                         p_value=2 * stats.norm.sf(abs(sl / sls)) if sls else np.nan, conf_low=sl - z * sls,
                         conf_high=sl + z * sls, **common))
    # Argmax of the population curve, with a parametric bootstrap interval.
    am = float(grid[np.argmax(pred)])
    rng = np.random.default_rng(seed)
    try:
        with warnings.catch_warnings():  # a covariance that is not PSD is already in the warnings above
            warnings.filterwarnings("ignore", "covariance is not symmetric positive-semidefinite", RuntimeWarning)
            draws = rng.multivariate_normal(beta, cov, size=n_boot, method="eigh")
        boot = grid[np.argmax(draws @ Xg.T, axis=1)]
        q = np.quantile(boot, [0.5 - conf_level / 2, 0.5 + conf_level / 2])
        edge_share = float(np.mean((boot == lo) | (boot == hi)))
    except (np.linalg.LinAlgError, ValueError) as exc:
        q, edge_share = (np.nan, np.nan), np.nan
        warn.append(f"argmax bootstrap failed: {exc}")
    rows.append(dict(term="argmax_level", estimate=am, conf_low=q[0], conf_high=q[1],
                     at_edge=bool(am in (lo, hi)), boot_share_at_edge=edge_share,
                     **{**common, "method": method + "; interval: parametric bootstrap of the fixed effects"}))
    rows.append(dict(term="max_minus_original", estimate=float(pred.max() - (X(np.array([0.0]))[0] @ beta)) if lo <= 0 <= hi else np.nan,
                     **common))
    # Variance components.
    re_names = list(res.cov_re.index) if hasattr(res.cov_re, "index") else [f"re{i}" for i in range(len(cov_re))]
    for i, nm in enumerate(re_names):
        rows.append(dict(term=f"var({nm} | base)", estimate=float(cov_re[i, i]), **common))
    rows.append(dict(term="residual variance", estimate=scale, **common))
    out = result_frame(rows)
    out["warnings"] = "; ".join(dict.fromkeys(warn))
    out["probe"], out["protocol"] = probe, protocol
    return out, curve


def fit_all(df: pd.DataFrame, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`fit_dose_response` for every probe (except uniform fields) and protocol in ``df``.

    A model that cannot be fitted gives one row with ``converged = False`` and the reason.
    """
    tidy, curves = [], []
    for (probe, protocol), _ in df[df["probe"] != "uniform_field"].groupby(["probe", "protocol"], sort=True):
        try:
            t, c = fit_dose_response(df, probe=probe, protocol=protocol, **kw)
        except (ValueError, RuntimeError) as exc:
            t = result_frame([dict(model=f"probe:{probe}:{protocol}", term="argmax_level", converged=False,
                                   warnings=str(exc), probe=probe, protocol=protocol)])
            c = pd.DataFrame()
        tidy.append(t)
        curves.append(c)
    return pd.concat(tidy, ignore_index=True), pd.concat(curves, ignore_index=True)


def field_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Scores of the uniform colour fields by protocol, lightness and hue, with the best cell flagged.

    Examples
    --------
    >>> d = pd.DataFrame(dict(probe="uniform_field", protocol="nvidia", field_lightness=[20., 80.],
    ...                       field_hue=[0., 0.], score=[1.0, 2.0]))
    >>> field_summary(d)["is_max"].tolist()
    [False, True]
    """
    f = df[df["probe"] == "uniform_field"][["protocol", "field_lightness", "field_hue", "score"]].copy()
    f["is_max"] = f.groupby("protocol")["score"].transform("max") == f["score"]
    return f.sort_values(["protocol", "field_lightness", "field_hue"]).reset_index(drop=True)
