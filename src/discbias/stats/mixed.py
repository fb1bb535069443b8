"""Mixed-effects models in the tidy results schema.

* :func:`mixedlm`: a statsmodels ``MixedLM`` random-intercept model (REML by default), with the
  fixed effects and the random-intercept variance as rows, a flag when that variance is near zero
  (the known trap where ``converged=True`` hides a degenerate fit), and the dropped rows. Fixed
  effects are tested with t statistics on Satterthwaite degrees of freedom (as lmerTest), Wald z
  kept beside them (:func:`satterthwaite`).
* :func:`nested_variance_components`: a fast REML fit of ``y = mu + a[cell] + b[image in cell] + e``
  from per-image sufficient statistics, with parametric-bootstrap intervals for the variance
  shares. It is validated against ``MixedLM`` in the tests (same REML criterion).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..progress import progress
from ..results import clean_term, result_frame

#: A random-effect variance below this fraction of the residual variance is flagged as near zero.
NEAR_ZERO_SHARE = 1e-3


def fit_first_converged(mod, methods, *, reml: bool = True, keep_unconverged: bool = False):
    """Fit a statsmodels MixedLM with each optimizer in turn; keep the first converged fit.

    Returns ``(fit, method, rejected)``: the converged fit and its optimizer, or, when none
    converged, ``(None, None, ...)`` (with ``keep_unconverged``: the first fit that ran and None,
    for the caller to report as unconverged), and one line per rejected optimizer saying why.

    Examples
    --------
    >>> import pandas as pd, statsmodels.formula.api as smf
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"g": np.repeat(range(10), 8), "x": rng.normal(size=80)})
    >>> d["y"] = d["x"] + rng.normal(size=10)[d["g"]] + rng.normal(size=80)
    >>> fit, used, rejected = fit_first_converged(smf.mixedlm("y ~ x", d, groups=d["g"]), ("lbfgs", "powell"))
    >>> used, fit.converged
    ('lbfgs', True)
    """
    rejected, first = [], None
    for m in methods:
        try:
            cand = mod.fit(reml=reml, method=m)
        except (np.linalg.LinAlgError, ValueError) as exc:
            rejected.append(f"{m}: {exc}")
            continue
        if np.isfinite(cand.llf) and cand.converged:
            return cand, m, rejected
        # words, not Python values: this text reaches the paper's warnings
        why = "did not converge" if not cand.converged else "log-likelihood not finite"
        rejected.append(f"{m}: {why} (log-likelihood {cand.llf:.6g})")
        first = first or cand
    return (first if keep_unconverged else None), None, rejected


def mixedlm(formula: str, data: pd.DataFrame, groups: str, *, model: str, reml: bool = True,
            conf_level: float = 0.95, method: tuple[str, ...] = ("bfgs", "lbfgs", "powell")) -> tuple[pd.DataFrame, object]:
    """Fit a random-intercept linear mixed model and return ``(tidy, fit)``.

    The equivalent lme4 call is ``lmer(formula + (1 | groups), data, REML = reml)``.

    Parameters
    ----------
    formula : str
        Patsy formula of the fixed effects, e.g. ``"z_score ~ z_masculinity + z_hair_length"``.
    data : DataFrame
    groups : str
        Column naming the grouping factor of the random intercept.
    model : str
        Model id.
    reml : bool
        REML (default, as lme4) or maximum likelihood.
    conf_level : float
        Level of the Wald intervals of the fixed effects.
    method : tuple of str
        Optimizers tried one at a time, in order; the first fit with a finite log-likelihood that
        reports convergence is kept (statsmodels' ``lbfgs`` can return a zero random-effect
        variance with an infinite log-likelihood and ``converged=True``; the tests cover it).

    Returns
    -------
    tidy : DataFrame
        One row per fixed effect and a row ``"Group Var"`` holding the random-intercept variance
        (``estimate``) and the residual variance (column ``residual_var``). Fixed effects:
        ``statistic`` = estimate / SE, tested as t on ``df`` Satterthwaite degrees of freedom
        (``test`` = ``"t (Satterthwaite)"``, as lmerTest's ``summary``; ``p_value`` and the
        ``conf_low/high`` t interval use them; see :func:`satterthwaite`), with the Wald z
        alternative in ``p_value_wald_z``, ``conf_low_wald_z``, ``conf_high_wald_z``. With
        ``reml=False`` the test is Wald z. Extra columns: ``re_var``, ``residual_var``,
        ``re_share`` (random-intercept share of the total variance), ``re_near_zero``.
    fit : MixedLMResults or None
        ``None`` when the model was not fitted because it is degenerate before fitting: the
        outcome is constant within the groups (the random intercepts would absorb all of it), or
        constant, or a predictor is constant or collinear. Then every row carries the reason in
        ``degenerate`` (as does a fit whose residual variance is ~0 or whose Hessian is not
        positive definite), ``converged`` is false and the estimates are missing.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(10), 20); x = rng.normal(size=200)
    >>> y = 1 + 0.5 * x + rng.normal(size=10)[g] + rng.normal(size=200)
    >>> tidy, fit = mixedlm("y ~ x", pd.DataFrame({"y": y, "x": x, "g": g}), "g", model="demo")
    >>> round(float(tidy.set_index("term").loc["x", "estimate"]), 1)
    0.5
    """
    from scipy import stats
    import statsmodels.formula.api as smf

    cols = [c for c in data.columns if c in formula or c == groups]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from ..formulas import check_formula

        mod = smf.mixedlm(check_formula(formula), data=data, groups=data[groups], missing="drop")
        # said before fitting: an outcome constant within the groups (or a constant predictor, a
        # rank-deficient design) leaves nothing for the residual: not fitted, flagged
        pre = _mixed_predegenerate(mod, groups)
        if pre:
            return _not_fitted(mod, formula, groups, model, conf_level, pre, len(data)), None
        fit, used, rejected = fit_first_converged(mod, method, reml=reml, keep_unconverged=True)
        if fit is None:
            raise RuntimeError(f"MixedLM {formula} | {groups}: every optimizer failed ({'; '.join(rejected)})")
    n_used = int(mod.nobs)
    dropped = len(data) - n_used
    warns = sorted({str(w.message).splitlines()[0] for w in caught})
    if rejected:
        warns.append(("optimizer rejected: " if len(rejected) == 1 else "optimizers rejected: ") + "; ".join(rejected) + (f"; kept {used}" if used else "; none converged"))
    if dropped:
        warns.append(f"{dropped} row{'' if dropped == 1 else 's'} dropped for missing values in {sorted(cols)}")
    re_var = float(fit.cov_re.iloc[0, 0])
    scale = float(fit.scale)
    share = re_var / (re_var + scale) if re_var + scale > 0 else np.nan
    near_zero = bool(re_var < NEAR_ZERO_SHARE * scale)
    if near_zero:
        warns.append(f"random-intercept variance near zero ({re_var:.3g} vs residual {scale:.3g}): "
                     "compare with the OLS fit")
    converged = bool(fit.converged) and used is not None
    if not converged:
        warns.append("optimizer did not converge")
    from .degenerate import hessian_degenerate, residual_degenerate

    k_fe = len(fit.fe_params)
    why = "; ".join(filter(None, [residual_degenerate(scale, float(np.var(mod.endog, ddof=1))),
                                  hessian_degenerate(np.asarray(fit.cov_params())[:k_fe, :k_fe])]))
    extra = {}
    if why:
        warns.append(f"degenerate fit: {why}")
        extra["degenerate"] = why
    z = stats.norm.ppf(0.5 + conf_level / 2)
    n_groups = int(len(fit.model.group_labels))
    rows = []
    common = dict(model=model, conf_level=conf_level, n_obs=n_used, n_groups=n_groups, converged=converged,
                  warnings=list(warns), re_var=re_var, residual_var=scale, re_share=share, re_near_zero=near_zero,
                  formula=f"{formula} + (1 | {groups})",
                  method=f"linear mixed model, random intercept for {groups} ({'REML' if reml else 'ML'}; "
                         + ("t tests and CI on Satterthwaite df)" if reml else "Wald z CI)"), **extra)
    fe = fit.fe_params
    bse = fit.bse_fe
    satt = satterthwaite(fit, reml=reml) if reml else None
    if satt is not None and satt["warning"]:
        common["warnings"] = common["warnings"] + [satt["warning"]]
    for j, term in enumerate(fe.index):
        est, se = float(fe[term]), float(bse[term])
        if satt is not None:  # lme4's vcov: sigma^2 (X' V^-1 X)^-1 at the REML optimum (statsmodels' bse_fe
            est, se = float(satt["estimate"][j]), float(satt["std_error"][j])  # differ by up to ~1%)
        wald = dict(p_value_wald_z=2 * stats.norm.sf(abs(est / se)), conf_low_wald_z=est - z * se,
                    conf_high_wald_z=est + z * se)
        if satt is None:   # ML fit: lmerTest's Satterthwaite df are defined for the REML fit; Wald z only
            rows.append(dict(common, term=clean_term(term), estimate=est, std_error=se, statistic=est / se,
                             p_value=wald["p_value_wald_z"], conf_low=wald["conf_low_wald_z"],
                             conf_high=wald["conf_high_wald_z"], df=np.inf, test="Wald z", **wald))
            continue
        df = float(satt["df"][j])
        tq = stats.t.ppf(0.5 + conf_level / 2, df)
        rows.append(dict(common, term=clean_term(term), estimate=est, std_error=se, statistic=est / se,
                         p_value=float(np.exp(np.log(2) + stats.t.logsf(abs(est / se), df))),
                         conf_low=est - tq * se, conf_high=est + tq * se, df=df, test=satt["test"], **wald))
    rows.append(dict(common, term="Group Var", estimate=re_var, std_error=np.nan, statistic=np.nan, p_value=np.nan,
                     conf_low=np.nan, conf_high=np.nan))
    return result_frame(rows), fit


def _mixed_predegenerate(mod, groups: str) -> str:
    """Why a random-intercept model of ``mod``'s rows cannot be fitted meaningfully (else ``""``)."""
    from .degenerate import constant_reason, constant_within, design_degenerate

    y = np.asarray(mod.endog, float)
    outcome = str(mod.endog_names)
    why = design_degenerate(y, mod.exog, list(mod.exog_names), outcome=outcome)
    if why:
        return why
    d = pd.DataFrame({"y": y, "g": np.asarray(mod.groups)})
    if constant_within(d, "y", ["g"]):
        return constant_reason([groups], outcome)
    return ""


def _not_fitted(mod, formula, groups, model, conf_level, why, n_rows) -> pd.DataFrame:
    import sys

    print(f"[discbias] {model}: not fitted: {why}", file=sys.stderr)
    common = dict(model=model, conf_level=conf_level, n_obs=int(mod.nobs), n_groups=int(len(np.unique(mod.groups))),
                  converged=False, warnings=[f"degenerate fit: {why}"], re_var=np.nan, residual_var=np.nan,
                  re_share=np.nan, re_near_zero=False, formula=f"{formula} + (1 | {groups})",
                  method=f"linear mixed model, random intercept for {groups}: not fitted (degenerate)", degenerate=why)
    if n_rows > int(mod.nobs):
        common["warnings"].append(f"{n_rows - int(mod.nobs)} rows dropped for missing values")
    rows = [dict(common, term=clean_term(t), estimate=np.nan) for t in mod.exog_names]
    rows.append(dict(common, term="Group Var", estimate=np.nan))
    return result_frame(rows)


#: ``test`` label of the fixed-effect rows of :func:`mixedlm`.
SATTERTHWAITE = "t (Satterthwaite)"


def _group_sums(X: np.ndarray, y: np.ndarray, groups) -> dict:
    codes = pd.factorize(pd.Series(np.asarray(groups)))[0]
    G = codes.max() + 1
    Z = np.zeros((len(y), G))
    Z[np.arange(len(y)), codes] = 1.0
    return dict(n=Z.sum(axis=0), XtX=X.T @ X, Xty=X.T @ y, yty=float(y @ y), Xg=Z.T @ X, yg=Z.T @ y)


def _reml_parts(phi: np.ndarray, s: dict):
    """REML deviance (-2 log-likelihood, without its constant) of ``y = X b + a[g] + e`` at
    ``phi = (log var(a), log var(e))``, and the fixed effects' covariance ``(X' V^-1 X)^-1``."""
    s_a, s_e = np.exp(phi)
    w = s_a / (s_e + s["n"] * s_a)                      # per group, V_g^-1 = (I - w 11') / s_e
    XVX = (s["XtX"] - (s["Xg"].T * w) @ s["Xg"]) / s_e
    XVy = (s["Xty"] - (s["Xg"].T * w) @ s["yg"]) / s_e
    yVy = (s["yty"] - float((w * s["yg"]) @ s["yg"])) / s_e
    n = s["n"]
    logdet_v = float(((n - 1) * np.log(s_e) + np.log(s_e + n * s_a)).sum())
    sign, logdet_x = np.linalg.slogdet(XVX)
    C = np.linalg.inv(XVX)
    beta = C @ XVy
    dev = logdet_v + logdet_x + yVy - float(beta @ XVy)
    return dev, C, beta


def _num_grad(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central differences, one Richardson step (error O(h^4))."""
    def d(step):
        out = []
        for i in range(len(x)):
            e = np.zeros_like(x)
            e[i] = step
            out.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * step))
        return np.array(out)
    return (4 * d(h / 2) - d(h)) / 3


def satterthwaite(fit, *, reml: bool = True, L: np.ndarray | None = None) -> dict:
    """Satterthwaite degrees of freedom of fixed-effect contrasts of a random-intercept MixedLM.

    As ``lmerTest`` computes them: for a contrast ``L b`` with variance
    ``v(theta) = L C(theta) L'`` (``C = (X' V^-1 X)^-1``, theta the variance parameters),
    ``df = 2 v^2 / (g' A g)`` where ``g`` is the gradient of ``v`` with respect to theta and ``A``
    the asymptotic covariance of theta, twice the inverse Hessian of the REML deviance
    (-2 log-likelihood). Both are numerical derivatives (central differences with a Richardson
    step) at the REML estimate, here in log-variance coordinates (``df`` does not depend on the
    coordinates at an interior optimum). The variance parameters are re-optimised from
    statsmodels' estimates on the same REML criterion so that the derivatives are taken at the optimum.

    When the random-intercept variance is at (or numerically near) zero the Hessian is singular
    and the model is an OLS fit: ``df`` is then the residual df ``n - p`` and ``test`` says so.

    Parameters
    ----------
    fit : statsmodels MixedLMResults
        A random-intercept fit (one random effect per group).
    reml : bool
        Must be True (the degrees of freedom are defined from the REML criterion).
    L : ndarray, optional
        Contrast matrix (rows = contrasts); the identity (each coefficient) by default.

    Returns
    -------
    dict
        ``df`` (array, one per contrast), ``std_error`` (array, ``sqrt(v)`` at the optimum, as
        lme4's ``vcov``), ``estimate`` (array, ``L b`` with the GLS fixed effects at the optimum),
        ``theta`` (random-intercept and residual variances), ``vcov_theta`` (covariance of the
        log variances), ``test`` (label for the ``test`` column) and ``warning`` ("" or why the
        fallback was used).

    Examples
    --------
    >>> import statsmodels.formula.api as smf
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(8), 15); x = rng.normal(size=120); w = rng.normal(size=8)[g]
    >>> u = rng.normal(size=8)[g]  # group effect not explained by w
    >>> d = pd.DataFrame({"y": 1 + 0.5 * x + w + u + rng.normal(size=120), "x": x, "w": w, "g": g})
    >>> fit = smf.mixedlm("y ~ x + w", d, groups=d["g"]).fit(reml=True)
    >>> s = satterthwaite(fit)
    >>> s["test"], bool(s["df"][1] > 100), bool(s["df"][2] < 10)   # within-group x, between-group w
    ('t (Satterthwaite)', True, True)
    """
    from scipy import optimize

    if not reml:
        raise ValueError("satterthwaite: Satterthwaite df are defined for the REML fit; refit with reml=True")
    if fit.cov_re.shape != (1, 1):
        raise ValueError(f"satterthwaite: only random-intercept models (one variance), not {fit.cov_re.shape}")
    X = np.asarray(fit.model.exog, float)
    y = np.asarray(fit.model.endog, float)
    groups = np.concatenate([np.full(len(fit.model.row_indices[g]), i) for i, g in enumerate(fit.model.group_labels)])
    order = np.concatenate([fit.model.row_indices[g] for g in fit.model.group_labels])
    sums = _group_sums(X[order], y[order], groups)
    p = X.shape[1]
    L = np.eye(p) if L is None else np.atleast_2d(np.asarray(L, float))
    re_var, scale = float(fit.cov_re.iloc[0, 0]), float(fit.scale)
    n = len(y)
    if re_var < NEAR_ZERO_SHARE * scale:
        _, C, beta = _reml_parts(np.log([max(re_var, 1e-300), scale]), sums)
        df = np.full(len(L), float(n - np.linalg.matrix_rank(X)))
        return dict(df=df, std_error=np.sqrt(np.einsum("ij,jk,ik->i", L, C, L)), estimate=L @ beta,
                    theta=np.array([re_var, scale]),
                    vcov_theta=np.full((2, 2), np.nan), test="t (residual df: random-intercept variance at zero)",
                    warning="Satterthwaite df undefined with a zero random-intercept variance; t on the residual df")
    dev = lambda ph: _reml_parts(ph, sums)[0]  # noqa: E731
    res = optimize.minimize(dev, np.log([re_var, scale]), method="BFGS", jac=lambda ph: _num_grad(dev, ph),
                            options=dict(gtol=1e-9))
    phi = res.x if res.fun <= dev(np.log([re_var, scale])) else np.log([re_var, scale])
    H = _num_grad(lambda ph: _num_grad(dev, ph, 1e-3), phi, 1e-3)
    H = (H + H.T) / 2
    warning = ""
    try:
        np.linalg.cholesky(H)
        A = 2 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        A = np.full((2, 2), np.nan)
        warning = "REML Hessian of the variance parameters not positive definite: Satterthwaite df undefined"
    v = lambda ph: np.einsum("ij,jk,ik->i", L, _reml_parts(ph, sums)[1], L)  # noqa: E731
    v0 = v(phi)
    g = _num_grad(v, phi)                       # shape (2, n_contrasts)
    df = 2 * v0 ** 2 / np.einsum("ai,ab,bi->i", g, A, g)
    beta = _reml_parts(phi, sums)[2]
    return dict(df=df, std_error=np.sqrt(v0), estimate=L @ beta, theta=np.exp(phi), vcov_theta=A, test=SATTERTHWAITE,
                warning=warning)


# ----------------------------------------------------------------------------------------------
# Nested variance components: y = mu + a[cell] + b[image] + e, REML from sufficient statistics.


def _image_stats(data: pd.DataFrame, value: str, image: str, cell: str) -> pd.DataFrame:
    g = data.groupby(image, sort=True)
    cells = g[cell].nunique()
    if (cells > 1).any():
        bad = cells[cells > 1].index[0]
        raise ValueError(f"image {bad!r} appears in more than one {cell!r}; images must be nested in cells")
    v = data[value].astype(float)
    st = pd.DataFrame({"n": g[value].count(), "mean": g[value].mean(), "cell": g[cell].first()})
    ss = (v ** 2).groupby(data[image], sort=True).sum()
    st["within_ss"] = np.maximum(ss - st["n"] * st["mean"] ** 2, 0.0)
    return st[st["n"] > 0]


def _reml_negloglik(theta: np.ndarray, n, ybar, wss, cell_idx, n_cells: int) -> float:
    s_a, s_b, s_e = np.exp(theta)
    d = s_e + n * s_b                      # per image
    w = n / d                              # 1' V_i^-1 1
    logdet = ((n - 1) * np.log(s_e) + np.log(d)).sum()
    quad_i = (wss + n * ybar ** 2) / s_e - s_b * (n * ybar) ** 2 / (s_e * d)   # y' V_i^-1 y
    A = np.bincount(cell_idx, w, n_cells)
    B = np.bincount(cell_idx, w * ybar, n_cells)
    Q = np.bincount(cell_idx, quad_i, n_cells)
    k = s_a / (1 + s_a * A)
    # A - k A^2 = A / (1 + s_a A) and B - k A B = B / (1 + s_a A): the same algebra without the
    # cancellation of A - k A^2 when s_a A is large (at s_a = e^30 the difference of two nearly equal
    # numbers lost most digits: the criterion was off by 0.006, enough to mislead a line search)
    one_v_one = (A / (1 + s_a * A)).sum()
    one_v_y = (B / (1 + s_a * A)).sum()
    y_v_y = (Q - k * B ** 2).sum()
    logdet += np.log1p(s_a * A).sum()
    quad = y_v_y - one_v_y ** 2 / one_v_one
    return 0.5 * (logdet + np.log(one_v_one) + quad)


def _fit_reml(n, ybar, wss, cell_idx, n_cells, start=None):
    from scipy import optimize

    total = np.var(ybar) if len(ybar) > 1 else 1.0
    within = wss.sum() / max((n - 1).sum(), 1)
    x0 = np.log(np.maximum(start if start is not None else [total / 3, total / 3, within], 1e-6))
    # BFGS on log variances (L-BFGS-B is several times slower here for three parameters)
    res = optimize.minimize(_reml_negloglik, x0, args=(n, ybar, wss, cell_idx, n_cells), method="BFGS")
    ok = bool(res.success)
    if not ok:  # BFGS often stops on "precision loss" at the optimum; confirm with Nelder-Mead from there
        res2 = optimize.minimize(_reml_negloglik, res.x, args=(n, ybar, wss, cell_idx, n_cells), method="Nelder-Mead",
                                 options=dict(xatol=1e-7, fatol=1e-9, maxiter=4000))
        ok = bool(res2.success) and np.isfinite(res2.fun)
        if res2.fun < res.fun or not np.isfinite(res.fun):
            res = res2
    if not np.isfinite(res.fun):
        # BFGS's first line search can step into overflow (exp of a huge log variance) from a start at
        # the boundary and never return (seen in a bootstrap refit); refit with the log variances
        # bounded to [-30, log(1000 x the data's variance)] from the default start
        hi = float(np.log(1e3 * max(total + within, 1e-12)))
        x1 = np.log(np.maximum([total / 3, total / 3, within], 1e-6))
        res3 = optimize.minimize(_reml_negloglik, np.minimum(x1, hi), args=(n, ybar, wss, cell_idx, n_cells),
                                 method="L-BFGS-B", bounds=[(-30.0, hi)] * 3)
        ok = bool(res3.success) and np.isfinite(res3.fun)
        res = res3
    s = np.exp(np.clip(res.x, -30, 30))
    # the mean at the optimum
    s_a, s_b, s_e = s
    d = s_e + n * s_b
    w = n / d
    A = np.bincount(cell_idx, w, n_cells)
    B = np.bincount(cell_idx, w * ybar, n_cells)
    mu = (B / (1 + s_a * A)).sum() / (A / (1 + s_a * A)).sum()
    return s, mu, ok, -float(res.fun)


def nested_variance_components(data: pd.DataFrame, value: str = "value", image: str = "image", cell: str = "cell", *,
                               model: str = "nested_vc", n_boot: int = 200, seed: int = 0,
                               conf_level: float = 0.95) -> pd.DataFrame:
    """Variance components of ``value`` between cells, between images within cells and within images.

    Fits ``value ~ 1 + (1 | cell) + (1 | cell:image)`` by REML (the lme4 call), using only the
    per-image count, mean and within-image sum of squares (so it is fast on 40,000 ratings), and
    gives parametric-bootstrap percentile intervals (``n_boot`` simulated data sets from the fitted
    model, refitted) for each variance and its share of the total.

    Parameters
    ----------
    data : DataFrame
        Long table, one row per rating.
    value, image, cell : str
        Columns: the rating, the rated image (nested in cells), the design cell.
    model : str
        Model id.
    n_boot : int
        Bootstrap replicates (0 for none).
    seed : int
    conf_level : float

    Returns
    -------
    DataFrame
        Rows ``var(cell)``, ``var(image)``, ``var(residual)`` (``estimate`` = variance) and
        ``share(cell)``, ``share(image)``, ``share(residual)``, plus ``(Intercept)``; columns
        ``n_obs`` (ratings), ``n_groups`` (cells), ``n_images``. A value constant within images
        (or cells) is not fitted: every row says why in ``degenerate`` (as does a fit whose
        residual variance is ~0).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> cell = np.repeat(np.arange(6), 200); image = np.repeat(np.arange(300), 4)
    >>> y = rng.normal(0, 1, 6)[cell] + rng.normal(0, 1, 300)[image] + rng.normal(0, 1, 1200)
    >>> vc = nested_variance_components(pd.DataFrame({"value": y, "image": image, "cell": cell}), n_boot=0)
    >>> vc["term"].tolist()[:3]
    ['var(cell)', 'var(image)', 'var(residual)']
    """
    need = {value, image, cell} - set(data.columns)
    if need:
        raise KeyError(f"nested_variance_components: missing columns {sorted(need)}")
    d = data[[value, image, cell]]
    n_missing = int(d[value].isna().sum())
    d = d.dropna()
    from .degenerate import constant_reason, constant_within, residual_degenerate

    const = constant_within(d, value, [image, cell])
    if const or (len(d) and float(np.ptp(d[value].to_numpy(float))) == 0.0):
        # said before fitting: a value constant within images (or cells) leaves a residual variance of 0
        why = (constant_reason(const, value) if const else f"{value} is constant: there is nothing to explain")
        import sys

        print(f"[discbias] {model}: not fitted: {why}", file=sys.stderr)
        common = dict(model=model, conf_level=conf_level, method="REML nested variance components: not fitted (degenerate)",
                      n_obs=int(len(d)), n_groups=int(d[cell].nunique()), n_images=int(d[image].nunique()),
                      converged=False, warnings=[f"degenerate fit: {why}"], n_boot=0, degenerate=why)
        return result_frame([dict(common, term=t, estimate=np.nan) for t in
                             ("var(cell)", "var(image)", "var(residual)", "share(cell)", "share(image)",
                              "share(residual)", "(Intercept)")])
    st = _image_stats(d, value, image, cell)
    codes, uniques = pd.factorize(st["cell"])
    n = st["n"].to_numpy(float)
    ybar = st["mean"].to_numpy(float)
    wss = st["within_ss"].to_numpy(float)
    n_cells = len(uniques)
    s, mu, ok, ll = _fit_reml(n, ybar, wss, codes, n_cells)
    warns = []
    if n_missing:
        warns.append(f"{n_missing} missing rating{'' if n_missing == 1 else 's'} dropped")
    if not ok:
        warns.append("REML optimizer did not report success")
    for nm, v in zip(("cell", "image"), s[:2]):
        if v < NEAR_ZERO_SHARE * s.sum():
            warns.append(f"var({nm}) near zero (boundary)")
    boot = np.full((n_boot, 4), np.nan)
    if n_boot:
        rng = np.random.default_rng(seed)
        for b in progress(range(n_boot), desc=f"bootstrap {model}", unit="fit"):
            a = rng.normal(0, np.sqrt(s[0]), n_cells)[codes]
            u = rng.normal(0, np.sqrt(s[1]), len(n))
            yb = mu + a + u + rng.normal(0, np.sqrt(s[2] / n))
            wb = s[2] * rng.chisquare(np.maximum(n - 1, 1e-12)) * (n > 1)
            sb, mub, okb, _ = _fit_reml(n, yb, wb, codes, n_cells, start=s)
            # a refit whose variance ran off to the optimiser's upper clip (e^30), or that stopped
            # without converging away from the boundary, is not a draw from the bootstrap
            # distribution: dropped and counted, never averaged in. A variance heading to 0 is a
            # boundary estimate: on log variances the optimiser cannot converge there (the criterion
            # is flat towards -inf), so "not converged" with a component near zero is kept as 0.
            at_boundary = bool(np.any(sb < NEAR_ZERO_SHARE * sb.sum()))
            if (okb or at_boundary) and np.all(np.isfinite(sb)) and np.all(sb < np.exp(29.0)) and np.isfinite(mub):
                boot[b] = [*sb, mub]
        n_failed = int(np.isnan(boot[:, 0]).sum())
        if n_failed:
            warns.append(f"{n_failed} of {n_boot} bootstrap refits did not converge (dropped)")
    alpha = 1 - conf_level
    method = (f"REML nested variance components (cell, image within cell, residual); "
              f"{'parametric bootstrap percentile CI, ' + str(n_boot) + ' replicates' if n_boot else 'no CI'}")
    why = residual_degenerate(float(s[2]), float(np.var(d[value].to_numpy(float), ddof=1)))
    if why:
        warns.append(f"degenerate fit: {why}")
    common = dict(model=model, conf_level=conf_level, method=method, n_obs=int(n.sum()), n_groups=n_cells,
                  n_images=int(len(n)), converged=ok, warnings=list(warns), loglik_reml=ll, n_boot=n_boot,
                  **(dict(degenerate=why) if why else {}))
    rows = []
    total = s.sum()

    def ci(x):
        x = x[np.isfinite(x)]
        if not len(x):
            return np.nan, np.nan
        return float(np.quantile(x, alpha / 2)), float(np.quantile(x, 1 - alpha / 2))

    labels = ["cell", "image", "residual"]
    for j, nm in enumerate(labels):
        lo, hi = ci(boot[:, j])
        rows.append(dict(common, term=f"var({nm})", estimate=float(s[j]), std_error=float(np.nanstd(boot[:, j], ddof=1)) if n_boot > 1 else np.nan,
                         conf_low=lo, conf_high=hi))
    shares = boot[:, :3] / boot[:, :3].sum(axis=1, keepdims=True)
    for j, nm in enumerate(labels):
        lo, hi = ci(shares[:, j])
        rows.append(dict(common, term=f"share({nm})", estimate=float(s[j] / total),
                         std_error=float(np.nanstd(shares[:, j], ddof=1)) if n_boot > 1 else np.nan, conf_low=lo, conf_high=hi))
    lo, hi = ci(boot[:, 3])
    rows.append(dict(common, term="(Intercept)", estimate=float(mu), std_error=float(np.nanstd(boot[:, 3], ddof=1)) if n_boot > 1 else np.nan,
                     conf_low=lo, conf_high=hi))
    return result_frame(rows)


def cell_marginal_means(fit, data: pd.DataFrame, cells: list[str], *, model: str, at: dict[str, float],
                        conf_level: float = 0.95) -> pd.DataFrame:
    """Estimated marginal mean of each design cell from a fitted OLS or MixedLM model.

    Each cell's mean is predicted with the other covariates held at ``at`` (e.g. their sample
    means). For OLS, the interval is the Wald interval of the linear prediction. For a
    random-intercept MixedLM, the cell mean adds the cell's predicted random intercept (BLUP);
    its variance is approximated as the variance of the fixed part plus the conditional variance
    of the BLUP, ``(1/var_re + n_cell/var_resid)^-1`` (uncertainty of the variance parameters
    ignored, as in ``lme4``'s ``predict``-based intervals).

    Parameters
    ----------
    fit : statsmodels results (OLS or MixedLM)
    data : DataFrame
        One row per cell with the design columns, and ``n`` (rows of the data in that cell).
    cells : list of str
        Design columns that identify a cell.
    model : str
    at : dict
        Values of the continuous covariates.
    conf_level : float

    Returns
    -------
    DataFrame
        Tidy rows, ``term`` = ``"race:gender:hair"`` label of the cell, plus the design columns.

    Examples
    --------
    >>> import statsmodels.formula.api as smf
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"g": list("ab") * 50, "x": rng.normal(size=100)}); df["y"] = (df.g == "b") + rng.normal(size=100)
    >>> f = smf.ols("y ~ g + x", df).fit()
    >>> cell_marginal_means(f, pd.DataFrame({"g": ["a", "b"], "n": [50, 50]}), ["g"], model="m", at={"x": 0.0})["term"].tolist()
    ['a', 'b']
    """
    from scipy import stats

    z = stats.norm.ppf(0.5 + conf_level / 2)
    grid = data.copy()
    for k, v in at.items():
        grid[k] = v
    is_mixed = hasattr(fit, "cov_re")
    rows = []
    if is_mixed:
        import patsy

        mdata = fit.model.data
        design_info = getattr(mdata, "design_info", None) or mdata.model_spec
        X = np.asarray(patsy.build_design_matrices([design_info], grid, return_type="dataframe")[0])
        fe = fit.fe_params.to_numpy()
        cov = fit.cov_params().iloc[:len(fe), :len(fe)].to_numpy()
        re_var = float(fit.cov_re.iloc[0, 0])
        try:
            re = fit.random_effects
        except (ValueError, np.linalg.LinAlgError):  # singular (zero) random-effect variance: BLUPs are 0
            re = {}
        scale = float(fit.scale)
        group_col = fit.model.data.frame.columns  # unused but keeps intent clear
        del group_col
        for i, (_, g) in enumerate(grid.iterrows()):
            label = ":".join(str(g[c]) for c in cells)
            blup = float(np.asarray(re[label])[0]) if label in re else 0.0
            n_c = float(g["n"])
            cond_var = 1.0 / (1.0 / re_var + n_c / scale) if re_var > 1e-12 else 0.0
            est = float(X[i] @ fe) + blup
            se = float(np.sqrt(X[i] @ cov @ X[i] + cond_var))
            rows.append(dict({c: g[c] for c in cells}, model=model, term=label, estimate=est, std_error=se,
                             conf_low=est - z * se, conf_high=est + z * se, conf_level=conf_level, n=g["n"],
                             method="mixed-model cell mean: fixed part + BLUP (Wald, approximate)",
                             n_obs=int(fit.nobs), converged=bool(fit.converged)))
    else:
        pred = fit.get_prediction(grid).summary_frame(alpha=1 - conf_level)
        for i, (_, g) in enumerate(grid.iterrows()):
            label = ":".join(str(g[c]) for c in cells)
            rows.append(dict({c: g[c] for c in cells}, model=model, term=label, estimate=float(pred["mean"].iloc[i]),
                             std_error=float(pred["mean_se"].iloc[i]), conf_low=float(pred["mean_ci_lower"].iloc[i]),
                             conf_high=float(pred["mean_ci_upper"].iloc[i]), conf_level=conf_level, n=g["n"],
                             method="OLS cell mean at covariate means (t CI)", n_obs=int(fit.nobs), converged=True))
    return result_frame(rows)


# ==============================================================================================
# Highest-REML policy (moved from discbias.analyses.ffhq_strat; the 70k FFHQ stratified model).
#
# A second MixedLM fitting policy, kept apart from :func:`mixedlm` on purpose: :func:`mixedlm`
# keeps the first optimizer that converges with a finite log-likelihood; this block fits with
# every optimizer and keeps the highest REML log-likelihood, because on the 70k FFHQ data L-BFGS
# alone stops at a zero cell variance (a boundary point with a lower likelihood) while reporting
# convergence. Results of ``s1x_mixed`` depend on this exact policy: do not merge the two
# without re-checking those estimates.
# ==============================================================================================

#: Optimizer sequences tried by :func:`mixedlm_highest_reml`; the fit with the highest REML log-likelihood is kept.
MIXED_OPTIMIZERS = (("lbfgs",), ("powell",))


def mixedlm_highest_reml(formula: str, data: pd.DataFrame, groups, *,
                         optimizers: tuple[tuple[str, ...], ...] = MIXED_OPTIMIZERS) -> tuple[object, tuple, list[str]]:
    """Fit a random-intercept MixedLM (REML) with each optimizer sequence; keep the highest log-likelihood.

    Parameters
    ----------
    formula : str
        Patsy formula of the fixed effects.
    data : DataFrame
        Complete rows (no missing-value handling is done here).
    groups : array-like
        The grouping factor of the random intercept (one value per row).
    optimizers : tuple of tuple of str
        Each entry is one ``method=`` list for ``MixedLMResults.fit``.

    Returns
    -------
    fit : MixedLMResults
        The fit with the highest finite REML log-likelihood (a singular fit with an infinite
        log-likelihood ranks last).
    best : tuple of str
        Its optimizer sequence.
    warnings : list of str
        The kept fit's warnings, then one line for each other optimizer that stopped elsewhere
        (another log-likelihood or cell variance), so a reader sees the disagreement.

    Raises
    ------
    RuntimeError
        Every optimizer failed (naming each failure).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(10), 20); x = rng.normal(size=200)
    >>> d = pd.DataFrame({"y": 1 + 0.5 * x + rng.normal(size=10)[g] + rng.normal(size=200), "x": x, "g": g})
    >>> fit, best, warns = mixedlm_highest_reml("y ~ x", d, d["g"])
    >>> best in MIXED_OPTIMIZERS, round(float(fit.fe_params["x"]), 1)
    (True, 0.5)
    """
    import statsmodels.formula.api as smf

    from ..formulas import check_formula

    mod = smf.mixedlm(check_formula(formula), data, groups=groups)
    fits, caught_all = [], {}
    for opt in optimizers:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                f = mod.fit(reml=True, method=list(opt))
            except (np.linalg.LinAlgError, ValueError) as exc:
                caught_all[opt] = [f"{'+'.join(opt)} failed: {exc}"]
                continue
        # A singular fit can report an infinite log-likelihood: rank it last.
        fits.append((float(f.llf) if np.isfinite(f.llf) else -np.inf, opt, f, float(f.llf)))
        caught_all[opt] = sorted({str(w.message).splitlines()[0] for w in caught})
    if not fits:
        raise RuntimeError(f"MixedLM failed with every optimizer: {caught_all}")
    llf, best, fit, _ = max(fits, key=lambda t: t[0])
    warns = list(caught_all[best])
    for other_llf, opt, other, raw_llf in fits:
        if opt != best and (llf - other_llf > 1e-3 or abs(float(other.cov_re.iloc[0, 0]) - float(fit.cov_re.iloc[0, 0]))
                            > 1e-3 * max(float(fit.cov_re.iloc[0, 0]), 1e-12)):
            warns.append(f"optimizer {'+'.join(opt)} stopped elsewhere (cell variance {float(other.cov_re.iloc[0, 0]):.3g}, "
                         + (f"REML log-likelihood {raw_llf:.2f}, " if np.isfinite(raw_llf)
                            else "REML log-likelihood not finite (a singular fit), ")
                         + f"{'converged' if other.converged else 'not converged'}); kept {'+'.join(best)} "
                         f"(variance {float(fit.cov_re.iloc[0, 0]):.3g}, log-lik {llf:.2f})")
    return fit, best, warns
