"""The replication's verdict engine: one rule for every claim, over a set of specifications.

A :class:`Claim` declares the paper's direction (``+1``/``-1``) and a list of
:class:`Specification`: the paper's specification (role ``"paper"``), robustness specifications
(role ``"robustness"``: centred/standardised, OLS with HC3, mixed or cluster-robust, the
balanced subset, the authors' own file) and descriptive ones (role ``"description"``: listed
but not used for the verdict, e.g. a contrast of groups selected on the score itself). Each
specification's ``lookup`` reads the fit stage's result tables and returns a :class:`SpecResult`
(estimate, interval, convergence) or ``None`` when its inputs are absent. An optional
specification with absent inputs is skipped; a required one makes the verdict ``inconclusive``.

The verdict (:func:`verdict_of`):

* ``reproduced``: the 95% interval excludes 0 in the paper's direction under every
  specification;
* ``fragile``: under the paper's specification, but not under every robustness specification;
* ``not reproduced``: not even under the paper's specification (its interval includes 0 or lies
  on the other side);
* ``inconclusive``: a specification the verdict needs did not converge or is missing, or the
  data cannot separate the answers (no finite interval, or a specification's own rule says
  ``undetermined``);
* ``not tested``: the released data cannot test the claim (it needs the network weights or the
  images); the claim says what it needs;
* ``not yet estimated``: the paper's specification has not been fitted (e.g. before ``fit``).

No verdict is read from a fit that did not converge: an unconverged specification never
supports a claim; it makes the verdict ``inconclusive`` unless converged specifications already
decide it (a converged paper specification that does not support the claim gives ``not
reproduced``; a converged robustness specification that does not gives ``fragile``).

The engine does not import the analyses: :func:`evaluate_claims` takes the claims it is given
(the pipeline passes every analysis's ``CLAIMS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

VERDICTS = ("reproduced", "fragile", "not reproduced", "inconclusive", "not tested", "not yet estimated")
ROLES = ("paper", "robustness", "description")
#: Outcome of one specification.
OUTCOMES = ("supports", "opposite", "includes 0", "condition not met", "undetermined", "not converged", "missing", "no interval")
FAILING = ("opposite", "includes 0", "condition not met")
CLAIM_COLUMNS = ["claim_id", "description", "paper_value", "direction", "estimate", "conf_low", "conf_high",
                 "paper_specification", "n_specifications", "n_supporting", "verdict", "rule", "reason", "needs"]
SPEC_COLUMNS = ["claim_id", "specification", "label", "role", "required", "estimate", "conf_low", "conf_high",
                "conf_level", "converged", "outcome", "supports", "used_for_verdict", "method", "source", "note"]

RULE = ("reproduced: the 95% interval excludes 0 in the paper's direction under every specification; fragile: "
        "under the paper's specification but not under every robustness specification; not reproduced: not under "
        "the paper's specification; inconclusive: a specification needed for the verdict did not converge or is "
        "missing, or the data cannot separate the answers; unconverged fits never support a claim")


@dataclass(frozen=True)
class SpecResult:
    """One specification's estimate of a claimed quantity.

    Parameters
    ----------
    estimate, conf_low, conf_high : float
        Point estimate and interval (in the claim's units; the direction is the claim's).
    converged : bool
        False for a fit that did not converge (never supports a claim).
    method : str
        How the estimate and interval were computed (printed in the specification table).
    source : str
        The result table and rows read.
    supports : bool, optional
        Override of the default rule (interval excludes 0 in the claim's direction), for claims
        whose support needs more than a sign (e.g. "red is the largest slope").
    undetermined : bool
        The data cannot separate support from its absence under this specification's own rule
        (e.g. an interval straddling a minimum effect size): outcome ``undetermined``.
    note : str
        Anything the reader should know (warnings, multiplicity).
    conf_level : float
    """

    estimate: float
    conf_low: float
    conf_high: float
    converged: bool = True
    method: str = ""
    source: str = ""
    supports: bool | None = None
    note: str = ""
    conf_level: float = 0.95
    undetermined: bool = False


@dataclass(frozen=True)
class Specification:
    """One way of estimating a claim.

    Parameters
    ----------
    name : str
        Short id (``paper``, ``ols_hc3``, ``mixed``...).
    label : str
        What a reader sees (figure and table labels).
    lookup : callable
        ``lookup(results: dict[str, DataFrame]) -> SpecResult | None`` (``None``: inputs absent).
    role : {"paper", "robustness", "description"}
    required : bool
        A required specification whose inputs are absent makes the verdict ``inconclusive``; an
        optional one (the balanced subset, the authors' file) is then skipped.
    """

    name: str
    label: str
    lookup: Callable[[dict[str, pd.DataFrame]], SpecResult | None]
    role: str = "robustness"
    required: bool = True

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")


@dataclass(frozen=True)
class Claim:
    """A claim of the paper and the specifications that test it.

    Parameters
    ----------
    claim_id : str
    description : str
        The paper's statement.
    paper_value : str
        What the paper reports (text, as printed there).
    direction : {+1, -1}
        Sign of the claimed effect in the specifications' units.
    specifications : sequence of Specification
        Exactly one with role ``"paper"`` unless the claim is ``not tested``.
    needs : str
        For a claim the released data cannot test: what it needs (then ``specifications`` is empty
        and the verdict is ``not tested``).
    quantity : str
        What the estimates measure (axis label of the specification curve).
    """

    claim_id: str
    description: str
    paper_value: str
    direction: int = +1
    specifications: Sequence[Specification] = field(default_factory=tuple)
    needs: str = ""
    quantity: str = "estimate"

    def __post_init__(self):
        if self.direction not in (+1, -1):
            raise ValueError(f"{self.claim_id}: direction must be +1 or -1")
        papers = [s for s in self.specifications if s.role == "paper"]
        if self.needs:
            if self.specifications:
                raise ValueError(f"{self.claim_id}: a not-tested claim (needs=...) has no specifications")
        elif len(papers) != 1:
            raise ValueError(f"{self.claim_id}: exactly one specification must have role 'paper' ({len(papers)} given)")
        names = [s.name for s in self.specifications]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.claim_id}: specification names must be unique ({names})")

    @property
    def rule(self) -> str:
        if self.needs:
            return f"not tested: needs {self.needs}"
        return RULE


def outcome(res: SpecResult | None, direction: int) -> str:
    """What one specification says about a claim: one of :data:`OUTCOMES`.

    Examples
    --------
    >>> outcome(SpecResult(2.0, 1.0, 3.0), +1), outcome(SpecResult(-2.0, -3.0, -1.0), +1)
    ('supports', 'opposite')
    >>> outcome(SpecResult(0.5, -1.0, 2.0), +1), outcome(SpecResult(2.0, 1.0, 3.0, converged=False), +1)
    ('includes 0', 'not converged')
    >>> outcome(SpecResult(2.0, 1.0, 3.0, supports=False), +1), outcome(None, +1)
    ('condition not met', 'missing')
    """
    if res is None:
        return "missing"
    if not res.converged:
        return "not converged"
    if not np.all(np.isfinite([res.estimate, res.conf_low, res.conf_high])):
        return "no interval"
    if res.undetermined:
        return "undetermined"
    lo, hi = direction * res.conf_low, direction * res.conf_high
    sign_ok = lo > 0 and hi > 0
    if res.supports is not None:
        if res.supports and sign_ok:
            return "supports"
        return "opposite" if (lo < 0 and hi < 0) else ("condition not met" if sign_ok else "includes 0")
    if sign_ok:
        return "supports"
    if lo < 0 and hi < 0:
        return "opposite"
    return "includes 0"


def verdict_of(claim: Claim, outcomes: dict[str, str]) -> tuple[str, str]:
    """The verdict of a claim from its specifications' outcomes, and the reason in words.

    Parameters
    ----------
    claim : Claim
    outcomes : dict
        Specification name -> outcome (:func:`outcome`).

    Returns
    -------
    (verdict, reason)

    Examples
    --------
    >>> c = Claim("x", "d", "p", +1, [Specification("paper", "P", lambda r: None, "paper"),
    ...                                Specification("ols", "O", lambda r: None)])
    >>> verdict_of(c, {"paper": "supports", "ols": "supports"})[0]
    'reproduced'
    >>> verdict_of(c, {"paper": "supports", "ols": "includes 0"})[0]
    'fragile'
    >>> verdict_of(c, {"paper": "includes 0", "ols": "supports"})[0]
    'not reproduced'
    >>> verdict_of(c, {"paper": "supports", "ols": "not converged"})[0]
    'inconclusive'
    """
    if claim.needs:
        return "not tested", f"needs {claim.needs}"
    paper = next(s for s in claim.specifications if s.role == "paper")
    po = outcomes.get(paper.name, "missing")
    if po == "missing":
        return "not yet estimated", "the paper's specification has not been estimated"
    if po == "not converged":
        return "inconclusive", f"the paper's specification ({paper.label}) did not converge"
    if po == "no interval":
        return "inconclusive", f"the paper's specification ({paper.label}) gives no finite interval"
    if po == "undetermined":
        return "inconclusive", f"the data cannot separate the answers under the paper's specification ({paper.label})"
    if po != "supports":
        side = {"opposite": "the 95% interval lies on the other side of 0", "includes 0": "the 95% interval includes 0",
                "condition not met": "the claim's extra condition fails"}[po]
        return "not reproduced", f"under the paper's specification ({paper.label}) {side}"
    rob = [s for s in claim.specifications if s.role == "robustness"]
    failing = [s for s in rob if outcomes.get(s.name) in FAILING]
    if failing:
        return "fragile", "not supported under: " + ", ".join(
            f"{s.label} ({outcomes[s.name]})" for s in failing)
    blocked = [s for s in rob if outcomes.get(s.name) in ("not converged", "no interval", "undetermined")
               or (outcomes.get(s.name, "missing") == "missing" and s.required)]
    if blocked:
        return "inconclusive", "supported where estimated, but not estimable under: " + ", ".join(
            f"{s.label} ({outcomes.get(s.name, 'missing')})" for s in blocked)
    used = 1 + sum(outcomes.get(s.name) == "supports" for s in rob)
    return "reproduced", ("supported under its one specification" if used == 1
                          else f"supported under all {used} specifications")


def evaluate_claim(claim: Claim, results: dict[str, pd.DataFrame]) -> tuple[dict, list[dict]]:
    """One claim's row of the claims table and its rows of the specification table.

    Examples
    --------
    >>> c = Claim("x", "d", "p", -1, [Specification("paper", "P", lambda r: SpecResult(-2, -3, -1), "paper")])
    >>> row, specs = evaluate_claim(c, {})
    >>> row["verdict"], specs[0]["supports"]
    ('reproduced', True)
    """
    spec_rows, outcomes = [], {}
    for s in claim.specifications:
        res = s.lookup(results)
        o = outcome(res, claim.direction)
        outcomes[s.name] = o
        spec_rows.append(dict(
            claim_id=claim.claim_id, specification=s.name, label=s.label, role=s.role, required=s.required,
            estimate=getattr(res, "estimate", np.nan), conf_low=getattr(res, "conf_low", np.nan),
            conf_high=getattr(res, "conf_high", np.nan), conf_level=getattr(res, "conf_level", np.nan),
            converged=getattr(res, "converged", np.nan), outcome=o, supports=o == "supports",
            used_for_verdict=s.role != "description" and o != "missing",
            method=getattr(res, "method", ""), source=getattr(res, "source", ""), note=getattr(res, "note", "")))
    verdict, reason = verdict_of(claim, outcomes)
    paper = next((r for r in spec_rows if r["role"] == "paper"), None)
    used = [r for r in spec_rows if r["used_for_verdict"]]
    row = dict(claim_id=claim.claim_id, description=claim.description, paper_value=claim.paper_value,
               direction=claim.direction,
               estimate=paper["estimate"] if paper else np.nan, conf_low=paper["conf_low"] if paper else np.nan,
               conf_high=paper["conf_high"] if paper else np.nan,
               paper_specification=paper["label"] if paper else "",
               n_specifications=len(used), n_supporting=sum(r["supports"] for r in used),
               verdict=verdict, rule=claim.rule, reason=reason, needs=claim.needs)
    return row, spec_rows


def collect_claims(modules: Iterable) -> list[Claim]:
    """Every ``CLAIMS`` entry of the given modules, in order; a duplicated id is an error.

    Examples
    --------
    >>> import types
    >>> m = types.SimpleNamespace(CLAIMS=[Claim("a", "d", "p", needs="weights")], __name__="m")
    >>> [c.claim_id for c in collect_claims([m])]
    ['a']
    """
    out, seen = [], set()
    for mod in modules:
        for c in getattr(mod, "CLAIMS", []):
            if c.claim_id in seen:
                raise ValueError(f"claim {c.claim_id} is defined twice (second time in {getattr(mod, '__name__', mod)})")
            seen.add(c.claim_id)
            out.append(c)
    return out


def evaluate_claims(ctx_or_results, claims: Sequence[Claim]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate the given claims against the result tables.

    Parameters
    ----------
    ctx_or_results : FitContext or dict of str to DataFrame
    claims : sequence of Claim

    Returns
    -------
    claims : DataFrame
        One row per claim (:data:`CLAIM_COLUMNS`): verdict, reason, the paper specification's
        estimate and interval.
    specifications : DataFrame
        One row per claim x specification (:data:`SPEC_COLUMNS`).

    Examples
    --------
    >>> c = Claim("x", "d", "p", +1, [Specification("paper", "P", lambda r: None, "paper")])
    >>> table, specs = evaluate_claims({}, [c])
    >>> table.loc[0, "verdict"], len(specs)
    ('not yet estimated', 1)
    """
    results = getattr(ctx_or_results, "results", ctx_or_results)
    rows, specs = [], []
    for c in claims:
        r, s = evaluate_claim(c, results)
        rows.append(r)
        specs += s
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS), pd.DataFrame(specs, columns=SPEC_COLUMNS)


# ------------------------------------------------------------------------------------- lookups


def row(results: dict[str, pd.DataFrame], table: str, model: str, term: str, **where) -> pd.Series | None:
    """The result row ``(model, term)`` of ``results[table]`` (and ``column == value`` for each
    keyword), or ``None`` if absent."""
    df = results.get(table)
    if df is None or not len(df) or "model" not in df.columns:
        return None
    hit = df[(df["model"] == model) & (df["term"] == term)]
    for k, v in where.items():
        if k not in hit.columns:
            return None
        hit = hit[hit[k] == v]
    return None if hit.empty else hit.iloc[0]


def _bool(x) -> bool:
    if isinstance(x, str):
        return x.strip().lower() == "true"
    return bool(x) if x == x else False


def result_row(table: str, model: str, term: str, *, method: str | None = None, scale: float = 1.0,
               supports: Callable[[pd.Series, dict], bool | None] | None = None, **where):
    """A lookup reading the row ``(model, term)`` of a result table.

    Parameters
    ----------
    table, model, term : str
    method : str, optional
        Method text; default the row's ``method`` column.
    scale : float
        Multiplies estimate and interval (e.g. ``-1`` to flip a difference).
    supports : callable, optional
        ``supports(row, results) -> bool | None``: an extra condition (see :class:`SpecResult`).
    **where
        Extra column filters (e.g. ``dataset="balanced"``).

    Examples
    --------
    >>> res = {"t": pd.DataFrame([dict(model="m", term="x", estimate=1.0, conf_low=0.5, conf_high=1.5,
    ...                                converged=True, method="OLS")])}
    >>> result_row("t", "m", "x")(res).estimate, result_row("t", "m", "y")(res) is None
    (1.0, True)
    """

    def lookup(results):
        r = row(results, table, model, term, **where)
        if r is None:
            return None
        lo, hi = float(r["conf_low"]) * scale, float(r["conf_high"]) * scale
        conv = _bool(r["converged"]) if "converged" in r.index and r["converged"] == r["converged"] else True
        warn = str(r["warnings"]) if "warnings" in r.index and isinstance(r["warnings"], str) else ""
        level = float(r["conf_level"]) if "conf_level" in r.index and r["conf_level"] == r["conf_level"] else 0.95
        return SpecResult(float(r["estimate"]) * scale, min(lo, hi), max(lo, hi), converged=conv,
                          method=method if method is not None else str(r.get("method", "")),
                          source=f"{table}: {model} {term}" + "".join(f" {k}={v}" for k, v in where.items()),
                          supports=supports(r, results) if supports else None, note=warn, conf_level=level)

    return lookup
