"""Linear models (statsmodels) returned in the tidy results schema."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..results import clean_term, result_frame


def ols(formula: str, data: pd.DataFrame, *, model: str, cov_type: str = "nonrobust",
        conf_level: float = 0.95, cov_kwds: dict | None = None) -> tuple[pd.DataFrame, object]:
    """Fit an OLS model and return ``(tidy, fit)``.

    Rows with missing values in the model's variables are dropped; how many is written in
    ``warnings`` (and ``n_obs`` is the number used). A degenerate fit (constant outcome or
    predictor, rank-deficient design, residual variance ~0; see
    :func:`discbias.stats.degenerate.fit_degenerate`) gets the reason in a ``degenerate`` column
    (and in ``warnings``); :func:`discbias.claims.result_row` keeps it from every verdict.

    Parameters
    ----------
    formula : str
        Patsy formula, e.g. ``"score ~ red_mean + green_mean + blue_mean"``.
    data : DataFrame
    model : str
        Model id.
    cov_type : str
        statsmodels covariance type (``"nonrobust"``, ``"HC3"``, ``"cluster"``...).
    conf_level : float
    cov_kwds : dict, optional
        Passed to ``fit`` (for example ``{"groups": ...}`` for clustered SEs).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=50)}); df["y"] = 2 * df.x + rng.normal(size=50)
    >>> tidy, fit = ols("y ~ x", df, model="demo")
    >>> round(float(tidy.set_index("term").loc["x", "estimate"]), 1)
    1.9
    """
    import statsmodels.formula.api as smf

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from ..formulas import check_formula

        mod = smf.ols(check_formula(formula), data=data, missing="drop")
        fit = mod.fit(cov_type=cov_type, cov_kwds=cov_kwds or None)
    n_used = int(fit.nobs)
    dropped = len(data) - n_used
    warns = [str(w.message) for w in caught]
    if dropped:
        warns.append(f"{dropped} row{'' if dropped == 1 else 's'} dropped for missing values")
    ci = fit.conf_int(1 - conf_level)
    cond = float(np.linalg.cond(mod.exog))
    if cond > 1e8:
        warns.append(f"design matrix condition number {cond:.3g}")
    method = "OLS" + ("" if cov_type == "nonrobust" else f" ({cov_type} standard errors)")
    # a constant outcome or predictor, a rank-deficient design, a perfect fit: flagged, never a verdict
    from .degenerate import fit_degenerate

    why = fit_degenerate(fit, outcome=str(mod.endog_names))
    extra = {}
    if why:
        warns.append(f"degenerate fit: {why}")
        extra["degenerate"] = why
    rows = []
    for term in fit.params.index:
        rows.append(dict(model=model, term=clean_term(term), estimate=fit.params[term], std_error=fit.bse[term],
                         statistic=fit.tvalues[term], p_value=fit.pvalues[term], conf_low=ci.loc[term, 0],
                         conf_high=ci.loc[term, 1], conf_level=conf_level, method=method, n_obs=n_used,
                         n_groups=np.nan, converged=True, warnings=warns, r_squared=fit.rsquared,
                         formula=formula, **extra))
    return result_frame(rows), fit


def anova_type1(fit, *, model: str) -> pd.DataFrame:
    """Sequential (type I) ANOVA of a fitted OLS model with partial eta squared, tidy.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"g": list("ab") * 20, "y": rng.normal(size=40)})
    >>> _, fit = ols("y ~ g", df, model="m")
    >>> anova_type1(fit, model="m")["term"].tolist()
    ['g', 'Residual']
    """
    import statsmodels.api as sm

    tab = sm.stats.anova_lm(fit, typ=1)
    ss_res = float(tab.loc["Residual", "sum_sq"])
    rows = []
    for term, r in tab.iterrows():
        is_res = term == "Residual"
        rows.append(dict(model=model, term=clean_term(term), estimate=np.nan if is_res else r["sum_sq"] / (r["sum_sq"] + ss_res),
                         statistic=r["F"], p_value=r["PR(>F)"], method="type I ANOVA (estimate: partial eta squared)",
                         n_obs=int(fit.nobs), converged=True, warnings="", df=r["df"], sum_sq=r["sum_sq"],
                         mean_sq=r["mean_sq"]))
    return result_frame(rows)
