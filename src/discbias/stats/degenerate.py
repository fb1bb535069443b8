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
