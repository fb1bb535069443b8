"""Degenerate fits: found before fitting where the data show it, flagged after fitting otherwise.

A degenerate fit returns numbers that answer nothing: an outcome constant within a grouping factor
(a score per image modelled at the rating level with ``(1|image)``: the image intercepts absorb
everything, the residual variance is ~0 and the fixed effects are arbitrary), a residual variance
of (nearly) zero, or a non-positive-definite Hessian (the covariance of the estimates is not a
covariance). Each check returns a reason in words; :func:`discbias.claims.result_row` reads the
``degenerate`` column of a result table and such a fit never votes on a claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Residual variance below this share of the outcome's variance counts as zero.
NEAR_ZERO_RESIDUAL = 1e-8


def constant_within(data: pd.DataFrame, outcome: str, factors, *, rtol: float = 1e-10) -> list[str]:
    """The grouping factors within every level of which ``outcome`` is constant (levels with one
    observation do not count; a factor with no level of two or more observations is not listed).

    Examples
    --------
    >>> d = pd.DataFrame({"score": [1.0, 1.0, 2.0, 2.0], "image": [1, 1, 2, 2], "rater": [1, 2, 1, 2]})
    >>> constant_within(d, "score", ["image", "rater"])
    ['image']
    """
    d = data.dropna(subset=[outcome])
    scale = float(d[outcome].abs().max()) if len(d) else 0.0
    tol = rtol * max(scale, 1.0)
    out = []
    for f in factors:
        g = d.groupby(f, observed=True)[outcome]
        n = g.size()
        if not (n > 1).any():
            continue
        spread = (g.max() - g.min())[n > 1]
        if bool((spread <= tol).all()):
            out.append(f)
    return out


def residual_degenerate(resid_var: float, outcome_var: float) -> str:
    """A reason when the residual variance is (nearly) zero relative to the outcome's, else ``""``.

    Examples
    --------
    >>> residual_degenerate(7.3e-12, 4.0) != "", residual_degenerate(0.5, 4.0)
    (True, '')
    """
    if not np.isfinite(resid_var) or not np.isfinite(outcome_var) or outcome_var <= 0:
        return ""
    share = resid_var / outcome_var
    if share < NEAR_ZERO_RESIDUAL:
        return f"residual variance {resid_var:.2g} is ~0 ({share:.1g} of the outcome's variance)"
    return ""


def hessian_degenerate(cov: np.ndarray) -> str:
    """A reason when a covariance of estimates (the inverse Hessian) is not positive definite or not finite.

    Examples
    --------
    >>> hessian_degenerate(np.eye(2)), hessian_degenerate(np.array([[1.0, 2.0], [2.0, 1.0]])) != ""
    ('', True)
    """
    c = np.asarray(cov, float)
    if c.size == 0:
        return ""
    if not np.all(np.isfinite(c)):
        return "the covariance of the estimates (inverse Hessian) is not finite"
    w = np.linalg.eigvalsh((c + c.T) / 2)
    if w.min() <= 1e-14 * max(1.0, abs(w.max())):
        return f"non-positive-definite Hessian (smallest eigenvalue of the covariance {w.min():.2g})"
    return ""


def constant_reason(factors: list[str], outcome: str) -> str:
    """The reason for an outcome constant within grouping factors."""
    return (f"{outcome} is constant within {', '.join(factors)}: the random intercept(s) absorb all of its "
            f"variation, so the fit is degenerate (model {outcome} at the level of {factors[0]} instead)")


def design_degenerate(y, X, names, *, outcome: str = "the outcome", rtol: float = 1e-10) -> str:
    """A reason when a regression's data cannot identify it, else ``""``: the outcome is constant,
    a predictor column (other than the intercept) is constant, or the design matrix is
    rank-deficient (a predictor is a linear combination of the others).

    Said before (or instead of) reading the fit: statsmodels' OLS solves such a design with a
    pseudo-inverse and returns numbers that answer nothing (slopes of 0 with SE 0, or one of two
    collinear columns' arbitrary split).

    Parameters
    ----------
    y : array-like
        The outcome (rows used by the fit).
    X : array-like
        The design matrix (same rows).
    names : sequence of str
        Column names of ``X`` (``Intercept`` is allowed to be constant).
    outcome : str
        The outcome's name, for the reason.

    Examples
    --------
    >>> X = np.c_[np.ones(4), [1.0, 2, 3, 4]]
    >>> design_degenerate([1.0, 2, 2, 3], X, ["Intercept", "x"])
    ''
    >>> design_degenerate([2.0, 2, 2, 2], X, ["Intercept", "x"], outcome="score")
    'the outcome score is constant (2): there is nothing to explain'
    >>> design_degenerate([1.0, 2, 2, 3], np.c_[X, np.full(4, 5.0)], ["Intercept", "x", "z"])
    'predictor z is constant (5): its slope is not identified'
    """
    y = np.asarray(y, float).ravel()
    X = np.asarray(X, float)
    reasons = []
    if len(y) and np.all(np.isfinite(y)):
        if float(np.ptp(y)) <= rtol * max(float(np.abs(y).max()), 1.0):
            reasons.append(f"the outcome {outcome} is constant ({y[0]:.6g}): there is nothing to explain")
    if X.ndim == 2 and X.shape[0] and X.shape[1]:
        const = []
        for j, name in enumerate(names):
            col = X[:, j]
            if str(name) in ("Intercept", "const", "(Intercept)") or not np.all(np.isfinite(col)):
                continue
            if float(np.ptp(col)) <= rtol * max(float(np.abs(col).max()), 1.0):
                const.append((str(name), float(col[0])))
        for name, v in const:
            reasons.append(f"predictor {name} is constant ({v:.6g}): its slope is not identified")
        if not const and np.all(np.isfinite(X)):
            rank = int(np.linalg.matrix_rank(X))
            if rank < X.shape[1]:
                reasons.append(f"the design matrix is rank-deficient (rank {rank} of {X.shape[1]} columns: a "
                               f"predictor is a linear combination of the others), so some slopes are not identified")
    return "; ".join(reasons)


def fit_degenerate(fit, *, outcome: str = "the outcome") -> str:
    """:func:`design_degenerate` of a statsmodels OLS fit, and a residual variance of ~0 (a perfect fit).

    Examples
    --------
    >>> import pandas as pd, statsmodels.formula.api as smf
    >>> d = pd.DataFrame({"x": [1.0, 2, 3, 4, 5], "y": [2.0, 4, 6, 8, 10]})
    >>> fit_degenerate(smf.ols("y ~ x", d).fit()).startswith("residual variance")
    True
    """
    y = np.asarray(fit.model.endog, float)
    why = design_degenerate(y, fit.model.exog, list(fit.model.exog_names), outcome=outcome)
    if why:
        return why
    dfr = float(getattr(fit, "df_resid", 0.0))
    if dfr > 0 and len(y) > 1:
        return residual_degenerate(float(fit.ssr) / dfr, float(np.var(y, ddof=1)))
    return ""
