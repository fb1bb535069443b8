"""The replication's claims table: one row per claim of the paper, filled from result tables.

Each analysis module may define ``CLAIMS``: a list of :class:`Claim`. A claim's ``evaluate``
reads the result tables of the fit stage and returns a :class:`Estimate` (or ``None`` while the
model that would estimate it is not fitted, giving the verdict ``not yet estimated``). The
verdict rule is code (``verdict``), and its wording (``rule``) is printed in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not yet estimated")
CLAIM_COLUMNS = ["claim_id", "description", "paper_value", "estimate", "conf_low", "conf_high", "verdict",
                 "rule", "source"]


@dataclass(frozen=True)
class Estimate:
    """Our estimate of a claimed quantity, its interval and the verdict."""

    estimate: float
    conf_low: float
    conf_high: float
    verdict: str
    source: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    """A claim of the paper and how to check it.

    Parameters
    ----------
    claim_id : str
    description : str
        The paper's statement.
    paper_value : str
        What the paper reports (text, as printed there).
    rule : str
        The verdict rule in words (the code is in ``evaluate``).
    evaluate : callable
        ``evaluate(results: dict[str, DataFrame]) -> Estimate | None``.
    """

    claim_id: str
    description: str
    paper_value: str
    rule: str
    evaluate: Callable[[dict[str, pd.DataFrame]], Estimate | None]


def sign_rule(estimate: float, low: float, high: float, expected_sign: int) -> str:
    """The usual verdict: ``reproduced`` if the interval excludes 0 on the paper's side,
    ``not reproduced`` if it excludes 0 on the other side, else ``inconclusive``.

    Examples
    --------
    >>> sign_rule(2.0, 1.0, 3.0, +1), sign_rule(-2.0, -3.0, -1.0, +1), sign_rule(0.5, -1.0, 2.0, +1)
    ('reproduced', 'not reproduced', 'inconclusive')
    """
    if not np.all(np.isfinite([estimate, low, high])):
        return "inconclusive"
    if expected_sign * low > 0 and expected_sign * high > 0:
        return "reproduced"
    if expected_sign * low < 0 and expected_sign * high < 0:
        return "not reproduced"
    return "inconclusive"


def row(results: dict[str, pd.DataFrame], table: str, model: str, term: str) -> pd.Series | None:
    """The result row ``(model, term)`` of ``results[table]``, or ``None`` if absent."""
    df = results.get(table)
    if df is None or not len(df):
        return None
    hit = df[(df["model"] == model) & (df["term"] == term)]
    return None if hit.empty else hit.iloc[0]


def sign_estimate(results: dict[str, pd.DataFrame], table: str, model: str, term: str, expected_sign: int,
                  source: str) -> Estimate | None:
    """The common claim: the row ``(model, term)`` judged by :func:`sign_rule`; ``None`` if absent.

    Examples
    --------
    >>> res = {"t": pd.DataFrame([dict(model="m", term="x", estimate=1.0, conf_low=0.5, conf_high=1.5)])}
    >>> sign_estimate(res, "t", "m", "x", +1, "t: m x").verdict
    'reproduced'
    """
    r = row(results, table, model, term)
    if r is None:
        return None
    return Estimate(r["estimate"], r["conf_low"], r["conf_high"],
                    sign_rule(r["estimate"], r["conf_low"], r["conf_high"], expected_sign), source)


def all_claims() -> list[Claim]:
    """Every claim defined by the registered analyses, in order."""
    from .analyses import ANALYSES

    out, seen = [], set()
    for a in ANALYSES:
        for c in getattr(a, "CLAIMS", []):
            if c.claim_id in seen:
                raise ValueError(f"claim {c.claim_id} is defined twice (second time in {a.__name__})")
            seen.add(c.claim_id)
            out.append(c)
    return out


def evaluate_claims(ctx_or_results) -> pd.DataFrame:
    """Evaluate every claim against the result tables; returns the claims table.

    Parameters
    ----------
    ctx_or_results : FitContext or dict of str to DataFrame

    Examples
    --------
    >>> bool(evaluate_claims({})["verdict"].eq("not yet estimated").all())
    True
    """
    results = getattr(ctx_or_results, "results", ctx_or_results)
    rows = []
    for c in all_claims():
        est = c.evaluate(results)
        base = dict(claim_id=c.claim_id, description=c.description, paper_value=c.paper_value, rule=c.rule)
        if est is None:
            rows.append(dict(base, estimate=np.nan, conf_low=np.nan, conf_high=np.nan, verdict="not yet estimated",
                             source=""))
        else:
            rows.append(dict(base, estimate=est.estimate, conf_low=est.conf_low, conf_high=est.conf_high,
                             verdict=est.verdict, source=est.source))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
