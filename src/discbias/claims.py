"""The verdict engine: three separate questions per claim, over declared specifications.

A :class:`Claim` declares what the original paper said (``description``, ``paper_value``, the
numbers it printed in ``printed``), the claim's ``kind`` and ``estimand``, its direction
(``+1``/``-1``) and a list of :class:`Specification` (ways of estimating it). Each
specification's ``lookup`` reads the fit stage's result tables and returns a
:class:`SpecResult` (estimate, interval, convergence, posterior probability of the direction
and Monte Carlo errors for MCMC fits) or ``None`` when its inputs are absent.

Kinds of claim (:data:`KINDS`):

* ``replication``: the original paper made the claim with an analysis that the released data can
  re-run; it has a specification with role ``"paper"`` (the paper's own specification);
* ``qualitative``: the paper stated it without an analysis of its own (an abstract's sentence);
* ``extension``: a new analysis or estimand of ours (for example on all 70,000 FFHQ images); its
  verdict goes in the ``extension`` column and is never counted as a reproduction;
* ``hypothesis``: a study's own claim with no original paper behind it (an audit's ``[[claims]]``):
  the robustness question only.

The three questions, each its own column of ``claims.csv`` (:func:`evaluate_claims`):

1. **Reproduction** (``replication`` claims only; :data:`REPRODUCTION`): does the paper's own
   specification on the released file give the printed number? Each printed number (estimate,
   interval bounds) is compared with ours within half a unit of its last printed digit plus, for
   MCMC fits, ``MC_Z`` (3) x sqrt(2) x the Monte Carlo standard error of our number (the printed
   number carries a Monte Carlo error of the same size from the authors' own run, so the
   difference of the two has SD sqrt(2) x MCSE, and beyond 3 of those SDs an exact reproduction
   is called different with probability 0.0027 under normality; see :data:`MC_Z` for the
   derivation):
   ``reproduced`` / ``differs`` / ``not re-runnable`` (the paper's analysis cannot be run on the
   released files) / ``inconclusive`` (the re-run did not converge or is degenerate). A claim whose
   paper printed no number is compared on its printed conclusion (the paper's specification must
   support the claim by its own rule, a 95% interval that excludes 0 in the claimed direction).
2. **Robustness** (``replication`` and ``qualitative`` claims): over the specifications that
   estimate the claim's own estimand (a specification that declares another ``estimand``, e.g.
   within-cell slopes of a mixed model with a cell intercept, is shown as *a different question*
   and does not vote), each one's outcome (:func:`outcome`), the share agreeing, and a decision
   anchored on one primary specification (named, with a written justification, in the study
   configuration's ``[claims.<id>]`` table) against a declared smallest effect size of interest
   (SESOI, with its reference): see :data:`ROBUSTNESS_RULE`.
3. **Extension** (``extension`` claims): the robustness rule, reported in its own column.

Selection on the score (:data:`SELECTION_RULE`): a specification that contrasts groups selected
on the score itself (the top and bottom 100) estimates an extreme-group difference, not the
population association; it votes only for a claim whose estimand is that contrast
(``Claim.selected_on_score``), and is a different question for every other claim.

Decisions for Bayesian fits read the posterior probability of the claimed direction
(``p_direction``) against the interval's level (at 95%: >= 0.975, the equal-tailed interval
excluding 0), not the asymmetric highest-density interval, so that two slopes with the same
posterior probability get the same outcome.

No verdict is read from a fit that did not converge or is degenerate (``SpecResult.degenerate``:
an outcome constant within a grouping factor, a residual variance of ~0, a non-positive-definite
Hessian): such a specification does not vote, and when it is the primary one the verdict is
``inconclusive``.

The engine does not import the analyses: :func:`evaluate_claims` takes the claims it is given
(the pipeline passes every analysis's ``CLAIMS``, configured by :func:`configure_claims`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

KINDS = ("replication", "qualitative", "extension", "hypothesis")
REPRODUCTION = ("reproduced", "differs", "not re-runnable", "inconclusive", "not applicable", "not yet estimated")
ROBUSTNESS = ("robust", "fragile", "contradicted", "negligible", "inconclusive", "not tested", "not yet estimated")
#: Backwards-compatible name: the values of the ``verdict`` column (the robustness or extension verdict).
VERDICTS = ROBUSTNESS
ROLES = ("paper", "robustness", "description")
#: Outcome of one specification.
OUTCOMES = ("supports", "opposite", "includes 0", "negligible", "condition not met", "undetermined", "not converged",
            "degenerate", "missing", "no interval")
#: Outcomes that decide (the others mean "not estimable").
DECISIVE = ("supports", "opposite", "includes 0", "negligible", "condition not met")
#: How far, in standard deviations of the difference of two independent Monte Carlo estimates, a re-run MCMC
#: number may be from the printed one (beyond rounding). A pre-stated rule, fixed before any data are read:
#:
#: * the printed number is ``p = theta + e_a + r`` (``e_a`` the authors' Monte Carlo error, ``r`` the rounding,
#:   ``|r| <= half a unit of the last printed digit``); ours is ``o = theta + e_o``. Both runs sample the same
#:   posterior, and the authors' Monte Carlo standard error is not printed, so it is taken equal to ours
#:   (``MCSE``): ``e_o - e_a`` has standard deviation ``sqrt(2) * MCSE`` (the difference of two independent
#:   estimates with equal variances);
#: * an exact reproduction then has ``|o - p| <= |r| + |e_o - e_a|``, and under normality of the Monte Carlo
#:   errors ``P(|e_o - e_a| > MC_Z * sqrt(2) * MCSE) = P(|Z| > MC_Z) = erfc(MC_Z / sqrt(2))``: for ``MC_Z = 3``,
#:   :data:`MC_FALSE_DIFFERS` = 0.0027 per printed number, about 0.08 false "differs" expected over the ~30
#:   printed numbers of a paper (1.96 would give 0.05 per number, about 1.5 over 30);
#: * 3 is the conventional three-sigma limit, not tuned: no other value was tried on the data. If the authors'
#:   runs were shorter than ours their Monte Carlo error is larger and the tolerance too small, so the rule
#:   errs towards "differs", never towards "reproduced".
MC_Z = 3.0
#: Probability that an exact reproduction is called "differs" by Monte Carlo error alone (per printed number,
#: normal errors): ``P(|Z| > MC_Z)``.
MC_FALSE_DIFFERS = math.erfc(MC_Z / math.sqrt(2.0))
CLAIM_COLUMNS = ["claim_id", "kind", "description", "estimand", "paper_value", "direction", "estimate", "conf_low",
                 "conf_high", "p_direction", "paper_specification", "primary", "primary_label", "primary_justification",
                 "sesoi", "sesoi_units", "sesoi_reference", "n_specifications", "n_voting", "n_supporting", "share_agreeing",
                 "reproduction", "reproduction_reason", "robustness", "extension", "verdict", "rule", "reason",
                 "sentence", "needs"]
SPEC_COLUMNS = ["claim_id", "specification", "label", "role", "required", "estimand", "vote", "primary", "estimate",
                "conf_low", "conf_high", "conf_level", "p_direction", "mcse_estimate", "mcse_low", "mcse_high",
                "sesoi", "converged", "degenerate", "outcome", "supports", "used_for_verdict", "method", "source",
                "note"]

SELECTION_RULE = ("A contrast of groups selected on the score itself (the top and bottom 100 images) estimates an "
                  "extreme-group difference, not the association in the population: it votes only for a claim stated "
                  "about those groups, and is a different question for every other claim.")
ROBUSTNESS_RULE = (
    "Each specification that estimates the claim's own estimand votes; one that estimates another (a different "
    "question), a description, and a fit that did not converge or is degenerate do not. A specification supports the "
    "claim when its 95% interval excludes 0 in the claimed direction (Bayesian fits: posterior probability of the "
    "claimed direction >= 0.975), is opposite when it excludes 0 the other way, and is negligible when its interval "
    "lies inside ±SESOI. robust: the primary specification supports the claim, its interval is not inside ±SESOI, "
    "and every voting specification supports it; fragile: the primary supports it but not every voting "
    "specification does; negligible: the primary's interval lies inside ±SESOI, on either side of 0 (an effect "
    "smaller than the SESOI is practically zero whichever its sign); contradicted: otherwise, the primary, or most "
    "voting specifications, are opposite; inconclusive: otherwise (the primary's interval includes 0, or it, or a "
    "required specification, could not be estimated).")
REPRODUCTION_RULE = (
    "The paper's own specification re-run on the released file; every printed number is compared with ours within "
    f"half a unit of its last printed digit, plus {MC_Z:g} x sqrt(2) Monte Carlo standard errors for MCMC estimates "
    "(the standard deviation of the difference of two independent Monte Carlo estimates is sqrt(2) MCSE; beyond "
    f"{MC_Z:g} of them an exact reproduction is called different with probability {MC_FALSE_DIFFERS:.4f}): "
    "reproduced when all agree, differs otherwise; without a printed number, the paper's conclusion under its own "
    "rule; not re-runnable when the released files cannot run the paper's analysis.")
#: Backwards-compatible name.
RULE = ROBUSTNESS_RULE


@dataclass(frozen=True)
class SpecResult:
    """One specification's estimate of a claimed quantity.

    Parameters
    ----------
    estimate, conf_low, conf_high : float
        Point estimate and interval, in the specification's units (the claim's direction applies).
    converged : bool
        False for a fit that did not converge (never votes).
    method : str
        How the estimate and interval were computed (printed in the specification table).
    source : str
        The result table and rows read.
    supports : bool, optional
        Extra condition beyond the sign (e.g. "red is the largest slope"): ``False`` gives
        ``condition not met`` where the sign alone would support the claim.
    note : str
        Anything the reader should know (warnings, multiplicity).
    conf_level : float
    undetermined : bool
        The specification's own rule cannot separate the answers: outcome ``undetermined``.
    p_positive : float
        Bayesian fits: posterior probability that the quantity is > 0 (NaN otherwise).
    mcse_estimate, mcse_low, mcse_high : float
        Monte Carlo standard errors of the estimate and the bounds (MCMC fits; NaN otherwise).
    sesoi_scale : float
        Multiplies the claim's SESOI into this specification's units (1: same units).
    degenerate : str
        Non-empty when the fit is degenerate (why): it never votes.
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
    p_positive: float = float("nan")
    mcse_estimate: float = float("nan")
    mcse_low: float = float("nan")
    mcse_high: float = float("nan")
    sesoi_scale: float = 1.0
    degenerate: str = ""

    def p_direction(self, direction: int) -> float:
        """Posterior probability of ``direction`` (NaN for a frequentist fit).

        Examples
        --------
        >>> SpecResult(-1.9, -3.8, 0.08, p_positive=0.027).p_direction(-1)
        0.973
        """
        p = self.p_positive
        if p != p:
            return float("nan")
        return round(p if direction > 0 else 1.0 - p, 12)


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
        ``paper``: the original paper's own specification (the reproduction re-runs it; it also
        votes on robustness when it estimates the claim's estimand).
    required : bool
        A required specification whose inputs are absent keeps a claim from ``robust``; an
        optional one (the balanced subset, the authors' file) is then skipped.
    estimand : str, optional
        What it estimates when that is not the claim's estimand (then it does not vote).
    selected_on_score : bool
        It contrasts groups selected on the score (see :data:`SELECTION_RULE`).
    """

    name: str
    label: str
    lookup: Callable[[dict[str, pd.DataFrame]], SpecResult | None]
    role: str = "robustness"
    required: bool = True
    estimand: str | None = None
    selected_on_score: bool = False

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")


@dataclass(frozen=True)
class Claim:
    """A claim and the specifications that test it.

    Parameters
    ----------
    claim_id : str
    description : str
        The claim's statement.
    paper_value : str
        What the paper reports (text, as printed there).
    direction : {+1, -1}
        Sign of the claimed effect in the specifications' units.
    specifications : sequence of Specification
        A ``replication`` claim has exactly one with role ``"paper"``; others have none.
    needs : str
        For a claim the released data cannot test: what it needs (then ``specifications`` is
        empty and every verdict is ``not tested``).
    quantity : str
        What the estimates measure (axis label of the specification curve).
    kind : {"replication", "qualitative", "extension", "hypothesis"}
    estimand : str
        What the claim's voting specifications estimate.
    printed : mapping of str to str
        Numbers the paper printed for its specification, as printed (``estimate``, ``conf_low``,
        ``conf_high``); their last digit sets the rounding tolerance.
    not_rerunnable : str
        Why the paper's analysis cannot be re-run (then the reproduction is ``not re-runnable``).
    primary : str
        Name of the primary specification (default: the paper's, else the first).
    justification : str
        Why the primary specification is primary (from the configuration).
    sesoi : float
        Smallest effect size of interest, in the primary specification's units (0: none declared).
    sesoi_reference : str
        Where the SESOI comes from.
    sesoi_units : str
        The SESOI's units (e.g. "SD of score per SD of the rating").
    selected_on_score : bool
        The claim is stated about groups selected on the score (see :data:`SELECTION_RULE`).
    """

    claim_id: str
    description: str
    paper_value: str
    direction: int = +1
    specifications: Sequence[Specification] = field(default_factory=tuple)
    needs: str = ""
    quantity: str = "estimate"
    kind: str = "replication"
    estimand: str = ""
    printed: Mapping[str, str] = field(default_factory=dict)
    not_rerunnable: str = ""
    primary: str = ""
    justification: str = ""
    sesoi: float = 0.0
    sesoi_reference: str = ""
    selected_on_score: bool = False
    sesoi_units: str = ""

    def __post_init__(self):
        if self.direction not in (+1, -1):
            raise ValueError(f"{self.claim_id}: direction must be +1 or -1")
        if self.kind not in KINDS:
            raise ValueError(f"{self.claim_id}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.sesoi < 0 or self.sesoi != self.sesoi:
            raise ValueError(f"{self.claim_id}: sesoi must be >= 0")
        papers = [s for s in self.specifications if s.role == "paper"]
        if self.needs:
            if self.specifications:
                raise ValueError(f"{self.claim_id}: a not-tested claim (needs=...) has no specifications")
        elif self.kind == "replication" and len(papers) != 1 and not self.not_rerunnable:
            raise ValueError(f"{self.claim_id}: exactly one specification must have role 'paper' ({len(papers)} given)")
        elif self.kind != "replication" and papers:
            raise ValueError(f"{self.claim_id}: a {self.kind} claim has no 'paper' specification (the paper did not "
                             f"run it); give it role 'robustness'")
        elif not self.specifications and not self.not_rerunnable:
            raise ValueError(f"{self.claim_id}: no specifications")
        names = [s.name for s in self.specifications]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.claim_id}: specification names must be unique ({names})")
        if self.primary:
            p = next((s for s in self.specifications if s.name == self.primary), None)
            if p is None:
                raise ValueError(f"{self.claim_id}: primary specification {self.primary!r} is not one of {names}")
            if not self.votes(p):
                raise ValueError(f"{self.claim_id}: the primary specification {p.name!r} must estimate the claim's "
                                 f"estimand (it is {self._why_not(p)})")
        for k in self.printed:
            if k not in ("estimate", "conf_low", "conf_high"):
                raise ValueError(f"{self.claim_id}: printed numbers are estimate, conf_low, conf_high (not {k!r})")

    @property
    def primary_spec(self) -> Specification | None:
        """The primary specification: the configured one, else the paper's if it votes, else the first
        that votes; ``None`` when no specification estimates the claim's estimand."""
        if self.primary:
            return next((s for s in self.specifications if s.name == self.primary), None)
        voting = [s for s in self.specifications if self.votes(s)]
        return next((s for s in voting if s.role == "paper"), voting[0] if voting else None)

    @property
    def paper_spec(self) -> Specification | None:
        return next((s for s in self.specifications if s.role == "paper"), None)

    def votes(self, s: Specification) -> bool:
        """Whether a specification votes on the claim's robustness (same estimand, not a description)."""
        return self._why_not(s) == ""

    def _why_not(self, s: Specification) -> str:
        if s.role == "description":
            return "a description"
        if s.selected_on_score != self.selected_on_score:
            return "a different question (selected on score)" if s.selected_on_score else \
                "a different question (not the score-selected contrast)"
        if s.estimand and s.estimand != self.estimand:
            return "a different question"
        return ""

    @property
    def rule(self) -> str:
        if self.needs:
            return f"not tested: needs {self.needs}"
        return ROBUSTNESS_RULE


# ------------------------------------------------------------------------------------- outcomes


def outcome(res: SpecResult | None, direction: int, sesoi: float = 0.0) -> str:
    """What one specification says about a claim: one of :data:`OUTCOMES`.

    ``sesoi`` is the claim's smallest effect size of interest in the primary specification's
    units (``res.sesoi_scale`` converts it to this specification's).

    Examples
    --------
    >>> outcome(SpecResult(2.0, 1.0, 3.0), +1), outcome(SpecResult(-2.0, -3.0, -1.0), +1)
    ('supports', 'opposite')
    >>> outcome(SpecResult(0.5, -1.0, 2.0), +1), outcome(SpecResult(2.0, 1.0, 3.0, converged=False), +1)
    ('includes 0', 'not converged')
    >>> outcome(SpecResult(2.0, 1.0, 3.0, supports=False), +1), outcome(None, +1)
    ('condition not met', 'missing')
    >>> outcome(SpecResult(0.01, -0.05, 0.07), +1, sesoi=0.1)   # inside ±SESOI: practically 0
    'negligible'
    >>> outcome(SpecResult(-1.9, -3.8, 0.08, p_positive=0.027), -1)  # P(direction) .973 < .975
    'includes 0'
    """
    if res is None:
        return "missing"
    if res.degenerate:
        return "degenerate"
    if not res.converged:
        return "not converged"
    if not np.all(np.isfinite([res.estimate, res.conf_low, res.conf_high])):
        return "no interval"
    if res.undetermined:
        return "undetermined"
    lo, hi = sorted((direction * res.conf_low, direction * res.conf_high))
    tail = (1.0 - res.conf_level) / 2
    pdir = res.p_direction(direction)
    if pdir == pdir:
        credible, opposite = pdir >= 1 - tail, pdir <= tail
    else:
        credible, opposite = lo > 0, hi < 0
    delta = sesoi * res.sesoi_scale
    if credible:
        return "supports" if res.supports is not False else "condition not met"
    if opposite:
        return "opposite"
    if delta > 0 and -delta < lo and hi < delta:
        return "negligible"
    return "includes 0"


def within_sesoi(res: SpecResult | None, sesoi: float) -> bool:
    """The interval lies inside ±SESOI (in the specification's units).

    Examples
    --------
    >>> within_sesoi(SpecResult(0.02, 0.01, 0.03), 0.05), within_sesoi(SpecResult(0.2, 0.1, 0.3), 0.05)
    (True, False)
    """
    if res is None or sesoi <= 0:
        return False
    d = sesoi * res.sesoi_scale
    return bool(-d < res.conf_low and res.conf_high < d)


def robustness_verdict(claim: Claim, outcomes: dict[str, str], results: dict[str, SpecResult | None] | None = None
                       ) -> tuple[str, str]:
    """The robustness (or extension) verdict from the specifications' outcomes, and the reason.

    Parameters
    ----------
    claim : Claim
    outcomes : dict
        Specification name -> outcome (:func:`outcome`).
    results : dict, optional
        Specification name -> SpecResult (for the SESOI check of the primary).

    Examples
    --------
    >>> c = Claim("x", "d", "p", +1, [Specification("paper", "P", lambda r: None, "paper"),
    ...                                Specification("ols", "O", lambda r: None),
    ...                                Specification("mixed", "M", lambda r: None, estimand="within-cell slope")])
    >>> robustness_verdict(c, {"paper": "supports", "ols": "supports", "mixed": "opposite"})[0]
    'robust'
    >>> robustness_verdict(c, {"paper": "supports", "ols": "includes 0"})[0]
    'fragile'
    >>> robustness_verdict(c, {"paper": "opposite", "ols": "includes 0"})[0]
    'contradicted'
    >>> robustness_verdict(c, {"paper": "includes 0", "ols": "supports"})[0]
    'inconclusive'
    """
    if claim.needs:
        return "not tested", f"needs {claim.needs}"
    results = results or {}
    primary = claim.primary_spec
    if primary is None:
        return "inconclusive", (f"no specification on the released data estimates the claim's estimand "
                                f"({claim.estimand or 'as stated'})")
    po = outcomes.get(primary.name, "missing")
    voting = [s for s in claim.specifications if claim.votes(s)]
    decisive = [s for s in voting if outcomes.get(s.name) in DECISIVE]
    agree = [s for s in decisive if outcomes[s.name] == "supports"]
    opp = [s for s in decisive if outcomes[s.name] == "opposite"]
    share = f"{len(agree)} of {len(decisive)} voting specifications support it"
    if po == "missing":
        return "not yet estimated", f"the primary specification ({primary.label}) has not been estimated"
    if po not in DECISIVE:
        why = getattr(results.get(primary.name), "degenerate", "") if po == "degenerate" else ""
        return "inconclusive", (f"the primary specification ({primary.label}) is {po}"
                                + (f" ({why})" if why else "") + ": no verdict is read from it")
    # The SESOI is symmetric: an interval inside ±SESOI is practically zero whichever side of 0 it lies on,
    # so an effect credibly opposite but smaller than the SESOI is negligible, not a contradiction.
    if po == "negligible" or (po in ("supports", "opposite") and within_sesoi(results.get(primary.name), claim.sesoi)):
        side = {"supports": " (in the claimed direction)", "opposite": " (in the opposite direction)"}.get(po, "")
        return "negligible", (f"the primary specification's interval ({primary.label}) lies inside ±SESOI "
                              f"({_num(claim.sesoi)}){side}")
    if po == "opposite" or (decisive and len(opp) * 2 > len(decisive)):
        return "contradicted", (f"credible in the opposite direction under the primary specification ({primary.label})"
                                if po == "opposite" else f"{len(opp)} of {len(decisive)} voting specifications are "
                                                         "credible in the opposite direction")
    if po != "supports":
        return "inconclusive", f"the primary specification ({primary.label}) {po} ({share})"
    failing = [s for s in decisive if outcomes[s.name] != "supports"]
    if failing:
        return "fragile", share + "; not: " + ", ".join(f"{s.label} ({outcomes[s.name]})" for s in failing)
    blocked = [s for s in voting if outcomes.get(s.name) not in DECISIVE
               and (outcomes.get(s.name, "missing") != "missing" or s.required)]
    if blocked:
        return "inconclusive", ("supported where estimated, but not estimable under: "
                                + ", ".join(f"{s.label} ({outcomes.get(s.name, 'missing')})" for s in blocked))
    return "robust", f"all {len(agree)} voting specifications support it"


#: Backwards-compatible name.
def verdict_of(claim: Claim, outcomes: dict[str, str]) -> tuple[str, str]:
    """Alias of :func:`robustness_verdict` (the claim's headline verdict)."""
    return robustness_verdict(claim, outcomes)


# ---------------------------------------------------------------------------------- reproduction


def printed_tolerance(text: str) -> float:
    """Half a unit in the last printed digit of a number printed as ``text``.

    Examples
    --------
    >>> printed_tolerance("-1.9"), printed_tolerance("0.13"), printed_tolerance("+2"), printed_tolerance("1.2e-3")
    (0.05, 0.005, 0.5, 5e-05)
    """
    t = text.strip().replace("\u2212", "-").lstrip("+-")
    mant, _, exp = t.lower().partition("e")
    dec = len(mant.split(".", 1)[1]) if "." in mant else 0
    return 0.5 * 10.0 ** (-dec) * 10.0 ** (int(exp) if exp else 0)


def _parse(text: str) -> float:
    return float(text.strip().replace("\u2212", "-"))


def reproduction_verdict(claim: Claim, res: SpecResult | None) -> tuple[str, str]:
    """Does the paper's specification, re-run, give the printed numbers? ``(verdict, reason)``.

    Examples
    --------
    >>> c = Claim("x", "d", "p", -1, [Specification("paper", "P", lambda r: None, "paper")],
    ...           printed={"estimate": "-1.9", "conf_low": "-3.8", "conf_high": "0.13"})
    >>> reproduction_verdict(c, SpecResult(-1.914, -3.80, 0.128))[0]
    'reproduced'
    >>> v, why = reproduction_verdict(c, SpecResult(-1.914, -3.80, 0.079))
    >>> v, why.split(";")[0]
    ('differs', 'upper bound 0.079 vs printed 0.13: off by 0.051, more than ±0.005 (rounding)')
    """
    if claim.needs:
        return "not applicable", f"not tested: needs {claim.needs}"
    if claim.kind != "replication":
        return "not applicable", {"extension": "an extension: a new analysis, never counted as a reproduction",
                                  "hypothesis": "a hypothesis of this study: there is no printed result to reproduce",
                                  }.get(claim.kind, "the paper states it without an analysis of its own")
    if claim.not_rerunnable:
        return "not re-runnable", claim.not_rerunnable
    paper = claim.paper_spec
    if res is None:
        return "not yet estimated", f"the paper's specification ({paper.label}) has not been estimated"
    if res.degenerate:
        return "inconclusive", f"the re-run of the paper's specification ({paper.label}) is degenerate: {res.degenerate}"
    if not res.converged:
        return "inconclusive", f"the re-run of the paper's specification ({paper.label}) did not converge"
    if not claim.printed:
        o = outcome(res, claim.direction)
        if o == "supports":
            return "reproduced", (f"the paper printed no number; its specification ({paper.label}) gives its conclusion "
                                  f"({_interval(res)})")
        return "differs", (f"the paper printed no number; its specification ({paper.label}) does not give its "
                           f"conclusion ({_interval(res)}: {o})")
    names = {"estimate": "estimate", "conf_low": "lower bound", "conf_high": "upper bound"}
    mcse = {"estimate": res.mcse_estimate, "conf_low": res.mcse_low, "conf_high": res.mcse_high}
    bad, good = [], []
    for key, text in claim.printed.items():
        ours, theirs = float(getattr(res, key)), _parse(text)
        tol_r = printed_tolerance(text)
        m = mcse[key]
        tol_mc = MC_Z * math.sqrt(2.0) * m if m == m else 0.0
        tol = tol_r + tol_mc
        diff = ours - theirs
        z = abs(diff) / (math.sqrt(2.0) * m) if m == m and m > 0 else float("nan")
        why = f"±{_num(tol_r)} (rounding)" + (f" + ±{_num(tol_mc)} (Monte Carlo; the difference is "
                                               f"{z:.1f} Monte Carlo SEs)" if tol_mc else "")
        if not abs(diff) <= tol:
            bad.append(f"{names[key]} {_num(ours)} vs printed {text}: off by {_num(abs(diff))}, more than {why}")
        else:
            good.append(f"{names[key]} {_num(ours)} vs printed {text} (within {why})")
    if bad:
        return "differs", "; ".join(bad + good)
    return "reproduced", "; ".join(good)


# ------------------------------------------------------------------------------------- evaluate


def _num(v: float) -> str:
    """A number for the generated sentences: 3 decimals (trailing zeros dropped) from 0.01 on, 2 significant
    digits below, a true minus sign.

    Examples
    --------
    >>> _num(-1.9140), _num(0.079), _num(0.0042), _num(2.0), _num(float("nan"))
    ('−1.914', '0.079', '0.0042', '2', '—')
    """
    if v is None or v != v:
        return "—"
    a = abs(v)
    if a == 0:
        s = "0"
    elif a < 0.01:
        s = f"{v:.2g}"
        if "e" in s:
            m, e = s.split("e")
            # Unicode superscripts, as the tables write them (text, not Markdown: values are escaped)
            s = f"{m} × 10" + str(int(e)).translate(str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3"
                                                                                "\u2074\u2075\u2076\u2077\u2078\u2079"))
    elif a < 1e5:
        s = f"{v:.3f}".rstrip("0").rstrip(".")
    else:
        s = f"{v:,.0f}"
    return s.replace("-", "\u2212")


def _interval(res: SpecResult) -> str:
    return f"{_num(res.estimate)} [{_num(res.conf_low)}, {_num(res.conf_high)}]"


def _sentence(claim: Claim, row: dict, spec_rows: list[dict], results: dict) -> str:
    """One sentence per claim explaining its verdicts with their numbers (generated, never typed)."""
    if claim.needs:
        return f"Not tested: the released data cannot test it; it needs {claim.needs}."
    parts = []
    if claim.kind == "replication":
        paper = claim.paper_spec
        r = results.get(paper.name) if paper else None
        if row["reproduction"] in ("reproduced", "differs") and r is not None and claim.printed:
            printed = claim.printed
            p = f"{printed.get('estimate', '')}"
            if "conf_low" in printed and "conf_high" in printed:
                p += f" [{printed['conf_low']}, {printed['conf_high']}]"
            parts.append(f"re-running the paper's specification gives {_interval(r)} against the printed "
                         f"{p.replace('-', chr(0x2212))}, {row['reproduction']}"
                         + (f" ({row['reproduction_reason'].split(';')[0]})" if row["reproduction"] == "differs" else ""))
        else:
            parts.append(f"reproduction {row['reproduction']}: {row['reproduction_reason']}")
    prim = claim.primary_spec
    pr = results.get(prim.name) if prim else None
    verdict = row["extension"] if claim.kind == "extension" else row["robustness"]
    if pr is not None and np.isfinite(pr.estimate):
        pdir = pr.p_direction(claim.direction)
        s = f"under the primary specification ({prim.label}) {_interval(pr)}"
        if pdir == pdir:
            s += f", P(claimed direction) = {_num(pdir)}"
        if claim.sesoi > 0:
            s += f", SESOI ±{_num(claim.sesoi * pr.sesoi_scale)}"
        s += f"; {row['n_supporting']} of {row['n_voting']} same-estimand specifications support it"
        # the voting specifications that do not, with their numbers (why the verdict is not robust)
        fail = [x for x in spec_rows if x["used_for_verdict"] and not x["supports"] and not x["primary"]]
        if fail and row["n_voting"] > 0:
            s += " (not: " + "; ".join(
                f"{x['label']} {_num(x['estimate'])} [{_num(x['conf_low'])}, {_num(x['conf_high'])}]"
                + (f", P = {_num(x['p_direction'])}" if x["p_direction"] == x["p_direction"] else "")
                + f", {x['outcome']}" for x in fail) + ")"
        diff = [x["label"] for x in spec_rows if x["vote"].startswith("a different question")]
        if diff:
            s += f" ({', '.join(diff)}: a different question, not voting)"
        parts.append(s + f": {'extension ' if claim.kind == 'extension' else ''}{verdict}")
    else:
        parts.append(f"{'extension ' if claim.kind == 'extension' else 'robustness '}{verdict}: {row['reason']}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def evaluate_claim(claim: Claim, results: dict[str, pd.DataFrame]) -> tuple[dict, list[dict]]:
    """One claim's row of the claims table and its rows of the specification table.

    Examples
    --------
    >>> c = Claim("x", "d", "p", -1, [Specification("paper", "P", lambda r: SpecResult(-2, -3, -1), "paper")],
    ...           printed={"estimate": "-2.0"})
    >>> row, specs = evaluate_claim(c, {})
    >>> row["reproduction"], row["robustness"], row["extension"], specs[0]["supports"]
    ('reproduced', 'robust', 'not applicable', True)
    """
    spec_rows, outcomes, res_by = [], {}, {}
    primary = claim.primary_spec
    for s in claim.specifications:
        res = s.lookup(results)
        res_by[s.name] = res
        o = outcome(res, claim.direction, claim.sesoi)
        outcomes[s.name] = o
        votes = claim.votes(s)
        if not votes:
            vote = claim._why_not(s)
        elif o in DECISIVE:
            vote = "votes"
        elif o == "missing" and not s.required:
            vote = "not available (optional)"
        else:
            vote = f"does not vote ({o})"
        pdir = res.p_direction(claim.direction) if res is not None else np.nan
        spec_rows.append(dict(
            claim_id=claim.claim_id, specification=s.name, label=s.label, role=s.role, required=s.required,
            estimand=s.estimand or claim.estimand, vote=vote, primary=primary is not None and s.name == primary.name,
            estimate=getattr(res, "estimate", np.nan), conf_low=getattr(res, "conf_low", np.nan),
            conf_high=getattr(res, "conf_high", np.nan), conf_level=getattr(res, "conf_level", np.nan),
            p_direction=pdir, mcse_estimate=getattr(res, "mcse_estimate", np.nan),
            mcse_low=getattr(res, "mcse_low", np.nan), mcse_high=getattr(res, "mcse_high", np.nan),
            sesoi=claim.sesoi * res.sesoi_scale if res is not None else claim.sesoi,
            converged=getattr(res, "converged", np.nan), degenerate=getattr(res, "degenerate", ""), outcome=o,
            supports=o == "supports", used_for_verdict=vote == "votes",
            method=getattr(res, "method", ""), source=getattr(res, "source", ""), note=getattr(res, "note", "")))
    verdict, reason = robustness_verdict(claim, outcomes, res_by)
    paper = claim.paper_spec
    rep, rep_reason = reproduction_verdict(claim, res_by.get(paper.name) if paper else None)
    prow = next((r for r in spec_rows if r["primary"]), None)
    used = [r for r in spec_rows if r["used_for_verdict"]]
    n_sup = sum(r["supports"] for r in used)
    ext = claim.kind == "extension"
    row = dict(claim_id=claim.claim_id, kind=claim.kind, description=claim.description, estimand=claim.estimand,
               paper_value=claim.paper_value, direction=claim.direction,
               estimate=prow["estimate"] if prow else np.nan, conf_low=prow["conf_low"] if prow else np.nan,
               conf_high=prow["conf_high"] if prow else np.nan, p_direction=prow["p_direction"] if prow else np.nan,
               paper_specification=paper.label if paper else "",
               primary=primary.name if primary else "", primary_label=primary.label if primary else "",
               primary_justification=claim.justification, sesoi=claim.sesoi, sesoi_units=claim.sesoi_units,
               sesoi_reference=claim.sesoi_reference,
               n_specifications=len(spec_rows), n_voting=len(used), n_supporting=n_sup,
               share_agreeing=n_sup / len(used) if used else np.nan,
               reproduction=rep, reproduction_reason=rep_reason,
               robustness="not applicable" if ext else verdict, extension=verdict if ext else "not applicable",
               verdict=verdict, rule=claim.rule, reason=reason, sentence="", needs=claim.needs)
    row["sentence"] = _sentence(claim, row, spec_rows, res_by)
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


def configure_claims(claims: Sequence[Claim], table: Mapping[str, Mapping] | None, *, file: str = "") -> list[Claim]:
    """Apply a study configuration's ``[claims.<id>]`` tables: primary specification and its
    justification, SESOI and its reference.

    An id that names no claim, or a primary that names no specification of the claim (or one
    that estimates another estimand), is a :class:`~discbias.errors.ConfigError`.

    Examples
    --------
    >>> c = Claim("x", "d", "p", +1, [Specification("paper", "P", lambda r: None, "paper"),
    ...                                Specification("ols", "O", lambda r: None)])
    >>> [c2] = configure_claims([c], {"x": {"primary": "ols", "justification": "why", "sesoi": 0.1,
    ...                                     "sesoi_reference": "Cohen (1988)"}})
    >>> c2.primary_spec.name, c2.sesoi
    ('ols', 0.1)
    """
    from .errors import ConfigError

    table = dict(table or {})
    by = {c.claim_id: c for c in claims}
    for cid in table:
        if cid not in by:
            raise ConfigError(f"[claims.{cid}] names no claim; the claims are {', '.join(by)}", file=file or None,
                              table="claims", key=cid)
    out = []
    for c in claims:
        t = dict(table.get(c.claim_id, {}))
        if not t:
            out.append(c)
            continue
        kw = {k: t[k] for k in ("primary", "justification", "sesoi", "sesoi_units", "sesoi_reference")
              if k in t and t[k] is not None}
        try:
            out.append(replace(c, **kw))
        except ValueError as exc:
            raise ConfigError(str(exc), file=file or None, table=f"claims.{c.claim_id}", key="primary") from None
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
        One row per claim (:data:`CLAIM_COLUMNS`): the three answers (``reproduction``,
        ``robustness``, ``extension``), the headline ``verdict`` (the robustness verdict, or the
        extension verdict of an extension), reasons, the primary specification's estimate,
        interval and posterior probability of the direction, and one generated ``sentence``.
    specifications : DataFrame
        One row per claim x specification (:data:`SPEC_COLUMNS`).

    Examples
    --------
    >>> c = Claim("x", "d", "p", +1, [Specification("paper", "P", lambda r: None, "paper")])
    >>> table, specs = evaluate_claims({}, [c])
    >>> table.loc[0, "verdict"], table.loc[0, "reproduction"], len(specs)
    ('not yet estimated', 'not yet estimated', 1)
    """
    results = getattr(ctx_or_results, "results", ctx_or_results)
    rows, specs = [], []
    for c in claims:
        r, s = evaluate_claim(c, results)
        rows.append(r)
        specs += s
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS), pd.DataFrame(specs, columns=SPEC_COLUMNS)


def verdict_counts(claims: pd.DataFrame) -> dict:
    """Headline counts of the three questions apart (claims that do not ask a question are left out).

    Examples
    --------
    >>> t = pd.DataFrame(dict(kind=["replication", "extension"], reproduction=["reproduced", "not applicable"],
    ...                       robustness=["robust", "not applicable"], extension=["not applicable", "fragile"]))
    >>> verdict_counts(t)
    {'reproduction': {'reproduced': 1}, 'robustness': {'robust': 1}, 'extension': {'fragile': 1}}
    """
    out = {}
    for q in ("reproduction", "robustness", "extension"):
        s = claims[q][claims[q] != "not applicable"] if q in claims else pd.Series(dtype=object)
        out[q] = {str(k): int(v) for k, v in s.value_counts().items()}
    return out


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


def _f(r: pd.Series, col: str, scale: float = 1.0) -> float:
    if col in r.index and r[col] == r[col]:
        try:
            return float(r[col]) * scale
        except (TypeError, ValueError):
            return float("nan")
    return float("nan")


def result_row(table: str, model: str, term: str, *, method: str | None = None, scale: float = 1.0,
               supports: Callable[[pd.Series, dict], bool | None] | None = None,
               sesoi_scale: Callable[[pd.Series, dict], float] | float = 1.0, **where):
    """A lookup reading the row ``(model, term)`` of a result table.

    Reads, where the table has them: ``converged``, ``warnings``, ``conf_level``, ``prob_positive``
    (posterior probability > 0), the Monte Carlo errors ``mcse_mean``, ``mcse_conf_low``,
    ``mcse_conf_high`` and ``degenerate`` (why a fit is degenerate).

    Parameters
    ----------
    table, model, term : str
    method : str, optional
        Method text; default the row's ``method`` column.
    scale : float
        Multiplies estimate and interval (e.g. ``-1`` to flip a difference).
    supports : callable, optional
        ``supports(row, results) -> bool | None``: an extra condition (see :class:`SpecResult`).
    sesoi_scale : float or callable
        The SESOI's conversion into this row's units (``callable(row, results) -> float``).
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
        pp = _f(r, "prob_positive")
        if scale < 0 and pp == pp:
            pp = 1.0 - pp
        ml, mh = _f(r, "mcse_conf_low", abs(scale)), _f(r, "mcse_conf_high", abs(scale))
        if scale < 0:
            ml, mh = mh, ml
        deg = r["degenerate"] if "degenerate" in r.index and isinstance(r["degenerate"], str) else ""
        ss = sesoi_scale(r, results) if callable(sesoi_scale) else float(sesoi_scale)
        return SpecResult(float(r["estimate"]) * scale, min(lo, hi), max(lo, hi), converged=conv,
                          method=method if method is not None else str(r.get("method", "")),
                          source=f"{table}: {model} {term}" + "".join(f" {k}={v}" for k, v in where.items()),
                          supports=supports(r, results) if supports else None, note=warn, conf_level=level,
                          p_positive=pp, mcse_estimate=_f(r, "mcse_mean", abs(scale)), mcse_low=ml, mcse_high=mh,
                          sesoi_scale=ss, degenerate=deg)

    return lookup
