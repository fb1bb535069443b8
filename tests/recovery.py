"""Recovery checks that do not depend on one seed's interval or one sampler path.

A check "the 95% interval contains the truth" fails 1 time in 20 by design, and for MCMC its bound
moves with the sampler's path (another BLAS kernel, another CPU): a test written that way passes on
the machine it was tuned on and fails on the next. :func:`assert_recovers` instead bounds the
distance from the truth by ``K`` standard errors plus ``K`` Monte Carlo standard errors:

* For a consistent estimator (or a posterior that concentrates, Bernstein-von Mises) whose reported
  standard error / posterior SD is ``se``, ``(estimate - truth) / se`` is close to N(0, 1), so
  P(|z| > K) = 2 * Phi(-K) = 6.3e-5 for K = 4.
* An MCMC estimate adds its Monte Carlo error: ``|mean_hat - mean| <= K * mcse`` fails with
  probability 6.3e-5 as well; the two bounds add.
* A test with ``m`` such checks fails with probability at most ``m * 1.3e-4`` (union bound): below
  0.001 for m <= 7. Tests that make more checks pass a larger ``k`` (``k_for(m)``).
"""

from __future__ import annotations

import math

from scipy import stats


def k_for(m: int, alpha: float = 1e-3) -> float:
    """The ``K`` for which ``m`` two-sided checks fail together with probability at most ``alpha``
    (Bonferroni; each check has two terms, estimate and Monte Carlo error)."""
    return float(stats.norm.isf(alpha / (4 * m)))


def assert_recovers(estimate: float, truth: float, se: float, mcse: float = 0.0, k: float = 4.0, what: str = ""):
    """Assert ``|estimate - truth| <= k * se + k * mcse`` (see the module docstring for why)."""
    assert math.isfinite(estimate) and math.isfinite(se) and se > 0, (what, estimate, se)
    bound = k * se + k * (mcse if math.isfinite(mcse) else 0.0)
    assert abs(estimate - truth) <= bound, f"{what}: |{estimate} - {truth}| > {k:g} SE ({se}) + {k:g} MCSE ({mcse})"
