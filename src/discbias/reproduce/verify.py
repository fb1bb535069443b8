"""``discbias verify``: compare a rebuild with a bundle, number by number.

Every results table in the bundle or the rebuild is compared row by row. Rows are matched on a key
found per table (``claim_id`` for claims; ``model`` + ``term`` for tidy results tables; otherwise
the fewest leading identifier columns that make rows unique; row order as a last resort), and
each row is classified from its ``method`` text and columns:

* **posterior** (``method`` mentions Bayes, posterior or HDI, or the row has ``mcse_mean``): the
  estimate, SD and interval bounds must agree within ``posterior_k`` x the combined Monte Carlo
  standard error of the two runs (``sqrt(mcse_bundle^2 + mcse_rebuild^2)``; ``mcse_mean``,
  ``mcse_sd``, ``mcse_conf_low``, ``mcse_conf_high``; any other column ``X`` with an ``mcse_X``
  column); ``prob_positive`` within ``posterior_k``
  x its binomial MCSE (``sqrt(p (1 - p) / ess_bulk)``, combined). Sampler diagnostics (R-hat, ESS,
  MCSE, divergences, ``converged``, ``warnings``) are not compared. The seed of a NUTS sampler
  description (``"NUTS ... seed 20240215"``) is masked wherever text is compared.
* **bootstrap** (``method`` mentions bootstrap or resampling): the point estimate is
  deterministic; the bootstrap SE (``std_error`` or ``boot_se``) and the percentile bounds must
  agree within ``bootstrap_k`` x their resampling error, from the SE and ``n_boot``:
  ``SE / sqrt(2 (B - 1))`` for the SE and ``SE sqrt(p (1 - p) / B) / phi(z_p)`` for a bound at tail
  probability ``p`` (each combined for the two runs, i.e. times sqrt 2).
* **iterative** (``method`` names a fit found by an iterative optimiser: REML/ML mixed models,
  BLUPs, GLMs, quantile regression): ``|a - b| <= max(rtol_iterative * max(|a|, |b|), atol)``,
  ``rtol_iterative = 1e-4``. Such a fit stops where the optimiser's convergence criterion is met,
  so two builds whose floating-point paths differ (another BLAS kernel, another CPU, the same
  code) stop at slightly different points. statsmodels' optimisers stop at scipy's default
  gradient tolerance (1e-5): on the replication's race x gender x hair mixed model the same fit
  stopped with gtol 1e-5 and 1e-9 differs by 4e-5 relative in a variance and 1e-5 in a standard
  error, and a rebuild under OpenBLAS's Haswell kernel moved standard errors by 1.5e-5 (5e-9 on
  other models). 1e-4 is below half a unit of the fourth significant digit, and the paper prints
  two or three, so a printed number cannot change unnoticed. The scale is the
  fit's, not the parameter's: ``max(|a|, |b|)`` is floored at the largest ``|value|`` of the same
  column among the rows of the same model (the first key column), because an optimiser stops at a
  criterion on the whole fit, so a parameter at or near 0 (a variance component at its boundary,
  1e-11 in one build, 1e-13 in another) moves by the criterion's tolerance on the fit's scale.
  Quantities computed from numerical derivatives at the optimum (Satterthwaite and Kenward-Roger
  degrees of freedom, columns ``df``/``*_df``) amplify the optimum's error by the finite-difference
  quotient: ``rtol_derived = 1e-3`` for them (1.1e-4 was seen between kernels on the real data),
  below half a unit of a degree of freedom printed to one decimal up to 50. A bootstrap row whose point estimate is an iterative fit (REML variance components with
  a parametric bootstrap) compares that estimate as an iterative result.
* **deterministic** (every other row): ``|a - b| <= max(rtol * max(|a|, |b|), atol)``, ``rtol =
  1e-9``: closed-form linear algebra (OLS, ANOVA, t-tests, correlations), where another kernel
  changes only the order of floating-point operations (relative effects of order cond(X) x 2^-53,
  about 1e-12 for the replication's designs).

P-values (``p_value``, ``p_*``, ``*_p``) in iterative and deterministic rows are compared on the
log scale: a tail probability such as p = 1e-150 moves with its statistic t as
d log p = -t dt = 2 log p x (dt / t), so ``|log a - log b| <= 2 r |log p| + r`` with the row's
relative tolerance ``r``.

Timings and build stamps (:data:`TIMING`; in ``values.json`` also the machine's CPU count) are never compared.

A number that is an exact copy of a posterior or bootstrap cell of the bundle (the claims table,
``values.json``) inherits that cell's tolerance. Text is compared exactly, except that text
describing posterior summaries (it names a posterior, HDI or Bayesian model) is compared with its
printed numbers masked (they are rounded copies of cells compared in their own columns) and its
divergent-transition counts dropped (sampler diagnostics, as above). Every claim's verdict
must be the same. Defaults (:class:`Tolerances`) can be changed for all tables or per table in the
study configuration's ``[verify]`` table.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..defaults import DEFAULTS
from .bundle import Bundle, BundleError, installed_distributions, project_commit, templates_digest
from ..errors import MissingInputError

#: Columns (regular expressions on the name) of sampler diagnostics, never compared in posterior rows.
DIAGNOSTIC = re.compile(r"(^|_)(r_?hat|ess|ess_bulk|ess_tail|mcse|divergen\w*|converged|warnings|seconds|time|"
                        r"sampling_time|elapsed)($|_)", re.I)
#: Columns that measure floating-point agreement with a reference (our estimate against R's): their
#: value is rounding noise (6.3e-12 under one BLAS kernel, 6.5e-12 under another), never compared;
#: the agreement itself is a result the ledger states as a bound.
NOISE = re.compile(r"(^|_)(rel|abs)_diff$", re.I)
#: Columns of timings and build stamps, never compared in any row.
TIMING = re.compile(r"(seconds|minutes|load_average|(^|_)time($|_)|elapsed|duration|timestamp|build_date|build_stamp|stamp$)", re.I)
#: Keys of ``values.json`` (regular expression on the dotted path) that are not results: timings,
#: dates, build stamps and the software versions (compared in the environment section instead).
VALUES_SKIP = re.compile(r"(seconds|minutes|load_average|(^|\.)cpu_count$|timing|_time($|\.)|timestamp|build_date|stamp|created|^meta\.software\.|^meta\.code_commit\.|"
                         r"^meta\.discbias_version$|"
                         r"^meta\.config\.config$)", re.I)  # last: where the configuration lay on the building machine
#: Keys of ``values.json`` that hold sampler diagnostics (not compared; they change with the seed).
VALUES_DIAGNOSTIC = re.compile(r"(r_?hat|(^|[._])ess|(^|[._])mcse|divergen|converged)", re.I)
#: Degrees of freedom from numerical derivatives at an iterative fit's optimum (see ``rtol_derived``).
_DF = re.compile(r"^(df|.+_df|df_.+|dof)$", re.I)
_POSTERIOR = re.compile(r"bayes|posterior|\bHDI\b", re.I)
_BOOTSTRAP = re.compile(r"bootstrap|resampl", re.I)
_ITERATIVE = re.compile(r"\b(REML|ML|MixedLM|mixed[- ]model|BLUP|GLM|logit|logistic|quantile regression|"
                        r"maximum likelihood|Newton|IRLS)\b", re.I)
_P_VALUE = re.compile(r"^(p_value|p|p_.+|.+_p)$")
#: Text that reports sampler diagnostics ("max R-hat 1.277 > 1.01; min ESS 6 < 400"): compared with its
#: numbers masked, as the diagnostics themselves are not compared.
_DIAGNOSTIC_TEXT = re.compile(r"R-?hat|\bESS\b|divergen", re.I)
_SEED = re.compile(r"(NUTS[^;]*?seed )\d+")
_NUMBER = re.compile(r"[-+\u2212]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_DIVERGENT = re.compile(r";?\s*\d+ divergent transitions?(?: of \d+)?", re.I)
_NBOOT = re.compile(r"(\d+)\s*(?:resamples|replicates)|bootstrap[^()]*\((\d+)\)", re.I)
_TOL_KEYS = ("rtol", "atol", "rtol_iterative", "rtol_derived", "posterior_k", "bootstrap_k")


@dataclass(frozen=True)
class Tolerances:
    """How close two numbers must be.

    Parameters
    ----------
    rtol, atol : float
        Deterministic numbers: ``|a - b| <= max(rtol * max(|a|, |b|), atol)``.
    rtol_iterative : float
        Results of iterative optimisers (mixed models, GLMs, quantile regression): ``rtol`` for them,
        on the scale of the fit (the largest value of the column among the model's rows).
    rtol_derived : float
        Degrees of freedom computed from numerical derivatives at an iterative fit's optimum.
    posterior_k : float
        Posterior summaries: within ``posterior_k`` x the combined MCSE of the two runs.
    bootstrap_k : float
        Bootstrap SEs and percentile bounds: within ``bootstrap_k`` x their combined resampling error.
    tables : dict
        Per-table overrides, ``{table name: {key: value}}``.

    Examples
    --------
    >>> t = Tolerances(tables={"models_rgb": {"rtol": 1e-6}})
    >>> t.for_table("models_rgb").rtol, t.for_table("claims").rtol
    (1e-06, 1e-09)
    """

    rtol: float = DEFAULTS["verify"]["rtol"]
    atol: float = DEFAULTS["verify"]["atol"]
    rtol_iterative: float = DEFAULTS["verify"]["rtol_iterative"]
    rtol_derived: float = DEFAULTS["verify"]["rtol_derived"]
    posterior_k: float = DEFAULTS["verify"]["posterior_k"]
    bootstrap_k: float = DEFAULTS["verify"]["bootstrap_k"]
    tables: dict = field(default_factory=dict, compare=False, hash=False)

    def for_table(self, name: str) -> "Tolerances":
        """The tolerances of one table (its overrides applied)."""
        return replace(self, **self.tables.get(name, {}), tables={})

    @classmethod
    def from_config(cls, config) -> "Tolerances":
        """Read the ``[verify]`` table of a study configuration (every key optional)::

            [verify]
            rtol = 1e-9
            posterior_k = 5
            [verify.tables.models_rgb]
            rtol = 1e-6

        Raises :class:`~discbias.config.ConfigError` naming the file for an unknown key or a
        value that is not a positive number.
        """
        raw = dict((getattr(config, "raw", None) or {}).get("verify", {}))
        where = getattr(config, "path", "the configuration")

        def check(d: dict, ctx: str) -> dict:
            out = {}
            for k, v in d.items():
                if k not in _TOL_KEYS:
                    raise ConfigError(f"{where}: [{ctx}] has unknown key '{k}'; known: {list(_TOL_KEYS)}")
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                    raise ConfigError(f"{where}: [{ctx}] {k} = {v!r}; it must be a positive number")
                out[k] = float(v)
            return out

        tables = raw.pop("tables", {}) or {}
        if not isinstance(tables, dict):
            raise ConfigError(f"{where}: [verify] tables must be a table of tables ([verify.tables.<name>])")
        return cls(**check(raw, "verify"), tables={n: check(dict(t), f"verify.tables.{n}") for n, t in tables.items()})


@dataclass
class VerifyResult:
    """What :func:`verify_build` found; every part is a tidy DataFrame.

    Attributes
    ----------
    tables : DataFrame
        One row per table: rows in bundle and rebuild, compared, matched, differing, missing,
        extra, the key used, the row kinds and notes.
    differences : DataFrame
        One row per differing cell: table, key, column, bundle and rebuild values, absolute
        difference, tolerance, rule. Missing and extra rows appear with ``column`` empty.
    verdicts : DataFrame
        Claims whose verdict changed (or that are missing / extra): ``claim_id``, bundle and
        rebuild verdicts, and ``at_boundary`` (why two correct builds can decide either way; a change
        with it does not count as a mismatch).
    boundary : DataFrame
        Differing decisions (specification outcomes, claim tallies, diagnoses) whose number lies
        within its own tolerance of the threshold, with the reason in ``rule``; not counted.
    environment : DataFrame
        Python, platform and every distribution whose version differs (or that only one has).
    info : dict
        Bundle, build, study, commits and templates' hashes.
    """

    tables: pd.DataFrame
    differences: pd.DataFrame
    verdicts: pd.DataFrame
    environment: pd.DataFrame
    info: dict
    boundary: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def matched(self) -> bool:
        """True when every number and every verdict matched (environment differences do not count;
        nor do decisions and verdicts at a decision boundary, which the report lists)."""
        v = self.verdicts
        unexplained = v if "at_boundary" not in v.columns else v[v["at_boundary"].astype(str).str.strip() == ""]
        return self.differences.empty and unexplained.empty

    @property
    def exit_code(self) -> int:
        """0 when everything matched, 1 when a number, a row or a verdict differs."""
        return 0 if self.matched else 1


# ------------------------------------------------------------------------------------------------
# cells


def _is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, str) and x == "") or x is pd.NA


def _as_number(x):
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    return None


def _num(row: pd.Series | None, col: str) -> float:
    if row is None or col not in row.index:
        return np.nan
    v = _as_number(row[col])
    return np.nan if v is None else v


def row_kind(row: pd.Series) -> str:
    """``"posterior"``, ``"bootstrap"``, ``"iterative"`` or ``"deterministic"`` from a result row's
    method and columns.

    Examples
    --------
    >>> row_kind(pd.Series({"method": "Bayesian linear regression (posterior mean, 95% HDI)"}))
    'posterior'
    >>> row_kind(pd.Series({"method": "percentile bootstrap CI (100 resamples)"}))
    'bootstrap'
    >>> row_kind(pd.Series({"method": "linear mixed model, random intercept for cell (REML; ...)"}))
    'iterative'
    >>> row_kind(pd.Series({"method": "OLS, HC3"}))
    'deterministic'
    """
    method = row.get("method")
    method = "" if _is_missing(method) else str(method)
    if any(np.isfinite(_num(row, c)) for c in row.index if str(c).startswith("mcse_")) or _POSTERIOR.search(method):
        return "posterior"
    if _BOOTSTRAP.search(method):
        return "bootstrap"
    if _ITERATIVE.search(method):
        return "iterative"
    return "deterministic"


def _relative(col: str, a: pd.Series, b: pd.Series | None, r: float, atol: float, rule: str, scale: float = 0.0,
              name: str = "rtol_iterative"):
    """Tolerance of a relative comparison at ``r``: ``(None, rule)`` (compared by :func:`_close`)
    or, for a p-value, an absolute tolerance from its log-scale bound; ``scale`` floors the
    magnitude the relative tolerance applies to (an iterative fit's scale)."""
    if _P_VALUE.match(str(col)):
        pa, pb = _num(a, col), _num(b, col)
        ps = [p for p in (pa, pb) if np.isfinite(p) and 0 < p <= 1]
        if ps:
            p = max(ps)
            delta = 2 * r * abs(math.log(min(ps))) + r
            # no absolute floor: atol would swallow every tail p-value below it
            return p * math.expm1(delta), f"{rule} (p-value: |log a - log b| <= 2 x {r:g} x |log p| + {r:g})"
    if r == 0 or rule == "deterministic":
        return None, rule
    x = max(abs(v) for v in (_num(a, col), _num(b, col)) if np.isfinite(v)) if any(
        np.isfinite(v) for v in (_num(a, col), _num(b, col))) else 0.0
    scale = scale if np.isfinite(scale) else 0.0
    return max(r * max(x, scale), atol), f"{rule}: {name} {r:g}" + (" on the fit's scale" if scale > x else "")


def _n_boot(row: pd.Series) -> float:
    b = _num(row, "n_boot")
    if np.isfinite(b):
        return b
    method = row.get("method")
    m = _NBOOT.search("" if _is_missing(method) else str(method))
    return float(m.group(1) or m.group(2)) if m else np.nan


def _combined(a: float, b: float) -> float:
    """MCSE of the difference of two independent runs (one side's twice if the other lacks it)."""
    if np.isfinite(a) and np.isfinite(b):
        return math.hypot(a, b)
    one = a if np.isfinite(a) else b
    return math.sqrt(2) * one if np.isfinite(one) else np.nan


def _tail(row: pd.Series, col: str) -> float:
    level = _num(row, "conf_level")
    level = level if np.isfinite(level) and 0 < level < 1 else 0.95
    return (1 - level) / 2


def cell_tolerance(kind: str, col: str, a: pd.Series, b: pd.Series | None, tol: Tolerances, scale: float = 0.0):
    """Tolerance for column ``col`` of a row of kind ``kind``: ``(absolute tolerance, rule)``,
    ``(None, rule)`` for a deterministic comparison, or ``None`` when the column is not compared.

    Examples
    --------
    >>> a = pd.Series({"estimate": 1.0, "mcse_mean": 0.01})
    >>> cell_tolerance("posterior", "estimate", a, a, Tolerances())
    (0.0707..., '5 x MCSE (mcse_mean)')
    >>> cell_tolerance("posterior", "r_hat", a, a, Tolerances()) is None
    True
    >>> v = pd.Series({"estimate": 1e-11, "method": "REML"})
    >>> cell_tolerance("iterative", "estimate", v, v, Tolerances(), scale=3.8)
    (0.00038, "iterative fit: rtol_iterative 0.0001 on the fit's scale")
    """
    if TIMING.search(col) or NOISE.search(str(col)):
        return None
    if col == "p_direction":  # a posterior probability (claims tables): its MCSE at the minimum ESS of a converged fit
        p = _num(a, col)
        if np.isfinite(p):
            return tol.posterior_k * math.sqrt(max(p * (1 - p), 1 / 400) / 400), \
                f"{tol.posterior_k:g} x MCSE of a probability at ESS 400"
    if kind == "posterior":
        if DIAGNOSTIC.search(col):
            return None
        src = {"estimate": "mcse_mean", "std_error": "mcse_sd", "conf_low": "mcse_conf_low",
               "conf_high": "mcse_conf_high"}.get(col)
        if src is None and any(r is not None and f"mcse_{col}" in r.index for r in (a, b)):
            src = f"mcse_{col}"  # any other column X with its MCSE in mcse_X (in either build)
        if src is not None:
            m = _combined(_num(a, src), _num(b, src))
            if not np.isfinite(m) and col == "estimate":  # MCSE of a mean from the SD and the ESS
                m = _combined(_num(a, "std_error") / math.sqrt(_num(a, "ess_bulk")),
                              _num(b, "std_error") / math.sqrt(_num(b, "ess_bulk")))
                src = "std_error / sqrt(ess_bulk)"
            if np.isfinite(m):
                return tol.posterior_k * m, f"{tol.posterior_k:g} x MCSE ({src})"
            return None, "deterministic (no MCSE in the table)"
        if col == "prob_positive":
            def binom(r):
                p, ess = _num(r, "prob_positive"), _num(r, "ess_bulk")
                return math.sqrt(max(p * (1 - p), 1 / ess) / ess) if np.isfinite(p) and ess > 0 else np.nan
            m = _combined(binom(a), binom(b) if b is not None else np.nan)
            if np.isfinite(m):
                return tol.posterior_k * m, f"{tol.posterior_k:g} x MCSE (sqrt(p(1-p)/ess_bulk))"
        return None, "deterministic"
    method = a.get("method") if a is not None else None
    iterative_fit = kind == "iterative" or (kind == "bootstrap" and not _is_missing(method)
                                            and bool(_ITERATIVE.search(str(method))))
    if iterative_fit and _DF.match(str(col)):
        return _relative(col, a, b, tol.rtol_derived, tol.atol, "degrees of freedom from numerical derivatives",
                         name="rtol_derived")
    if kind == "bootstrap" and col in ("std_error", "boot_se", "conf_low", "conf_high"):
        se = _num(a, "boot_se") if np.isfinite(_num(a, "boot_se")) else _num(a, "std_error")
        if not np.isfinite(se):
            return None, "deterministic (no bootstrap SE in the table)"
        B = _n_boot(a)
        if not (B > 1):
            return tol.bootstrap_k * se, f"{tol.bootstrap_k:g} x bootstrap SE (n_boot unknown)"
        if col in ("std_error", "boot_se"):
            err = se / math.sqrt(2 * (B - 1))
            rule = "SE/sqrt(2(B-1))"
        else:
            from scipy.stats import norm

            p = _tail(a, col)
            err = se * math.sqrt(p * (1 - p) / B) / norm.pdf(norm.ppf(p))
            rule = "SE sqrt(p(1-p)/B)/phi(z_p)"
        return tol.bootstrap_k * math.sqrt(2) * err, f"{tol.bootstrap_k:g} x resampling error ({rule}, B={B:g})"
    if iterative_fit:
        return _relative(col, a, b, tol.rtol_iterative, tol.atol, "iterative fit", scale)
    return _relative(col, a, b, tol.rtol, tol.atol, "deterministic")


def _fit_scales(df: pd.DataFrame, key: list[str]) -> list[dict[str, float]]:
    """Per row of ``df``: for each numeric column, the largest ``|value|`` among the rows of the same
    model (the first key column; the whole table without a key), the scale of an iterative fit."""
    num = df.select_dtypes("number").abs()
    if not len(num.columns):
        return [{} for _ in range(len(df))]
    if key:
        g = df[key[0]].astype(str).to_numpy()
        scales = num.groupby(g).transform("max")
    else:
        scales = pd.DataFrame([num.max()] * len(df), index=df.index)
    return [{c: float(v) for c, v in row.items() if np.isfinite(v)} for row in scales.to_dict("records")]


def _close(x: float, y: float, atol: float | None, tol: Tolerances) -> bool:
    if atol is None:
        return abs(x - y) <= max(tol.rtol * max(abs(x), abs(y)), tol.atol)
    return abs(x - y) <= atol


def _posterior_text(s: str) -> str:
    """Text describing posterior summaries, as compared: sampler diagnostics ("1 divergent
    transitions") dropped and printed numbers masked."""
    return _NUMBER.sub("#", _DIVERGENT.sub("", s))


def _text(x) -> str:
    """Text as compared: the seed of a NUTS sampler description masked (posteriors are compared
    within their MCSE, so a rebuild with another seed still matches)."""
    s = "" if _is_missing(x) else str(x)
    return _SEED.sub(r"\1*", s)


# ------------------------------------------------------------------------------------------------
# tables

#: Generated prose of the claims tables (compared with numbers masked).
_PROSE = {"sentence", "reason", "reproduction_reason"}
_NOT_KEYS = {"warnings", "method", "description", "rule", "formula", "converged", "verdict", "notes", "note"}


def table_key(df: pd.DataFrame) -> list[str]:
    """The columns that identify a row: ``claim_id``; else ``model`` + ``term`` (+ further
    identifier columns if needed); else the fewest leading identifier columns that are unique.
    An empty list means no key was found (rows are then matched by position).

    Examples
    --------
    >>> table_key(pd.DataFrame({"model": ["m", "m"], "term": ["a", "b"], "estimate": [1.0, 2.0]}))
    ['model', 'term']
    >>> table_key(pd.DataFrame({"item": ["x", "x"], "coefficient": ["a", "b"], "estimate": [1.0, 2.0]}))
    ['item', 'coefficient']
    """
    def unique(cols):
        return bool(cols) and not df.duplicated(subset=cols).any()

    if "claim_id" in df.columns and unique(["claim_id"]):
        return ["claim_id"]
    key = [c for c in ("model", "term") if c in df.columns]
    if unique(key):
        return key
    candidates = [c for c in df.columns if c not in key and c not in _NOT_KEYS and not DIAGNOSTIC.search(c)
                  and (pd.api.types.is_string_dtype(df[c].dtype) or df[c].dtype == object
                       or pd.api.types.is_bool_dtype(df[c]))]
    candidates += [c for c in df.columns if c not in key and c not in candidates and c not in _NOT_KEYS
                   and pd.api.types.is_integer_dtype(df[c])]
    for c in candidates:
        key.append(c)
        if unique(key):
            return key
    return []


def _keys(df: pd.DataFrame, key: list[str]) -> list[str]:
    if not key:
        return [f"row {i + 1}" for i in range(len(df))]
    return [" / ".join("NA" if _is_missing(v) else str(v) for v in vals)
            for vals in df[key].itertuples(index=False, name=None)]


def _inherited_index(ta: dict[str, pd.DataFrame], tb: dict[str, pd.DataFrame],
                     tol: Tolerances) -> dict[float, tuple[float, str]]:
    """Posterior, bootstrap and iterative cells of the bundle by value, with the tolerance of their
    comparison (both builds' MCSE or resampling error, the optimiser's tolerance): copies of them
    elsewhere get that tolerance."""
    index: dict[float, tuple[float, str]] = {}
    for name, a in ta.items():
        t = tol.for_table(name)
        b = tb.get(name)
        key = table_key(a)
        rows_b = {}
        if b is not None and all(c in b.columns for c in key):
            rows_b = {k: i for i, k in enumerate(_keys(b, key))}
        scales = _fit_scales(a, key)
        for k, (_, ra), sc in zip(_keys(a, key), a.iterrows(), scales):
            kind = row_kind(ra)
            if kind == "deterministic":
                continue
            rb = b.iloc[rows_b[k]] if k in rows_b else None
            for col in a.columns:
                v = _as_number(ra[col])
                if v is None or not np.isfinite(v) or v == round(v):
                    continue
                got = cell_tolerance(kind, col, ra, rb, t, sc.get(col, 0.0))
                if got and got[0] is not None:
                    index.setdefault(v, (got[0], f"{got[1]}, as {name}.{col}"))
    return index


def compare_table(name: str, a: pd.DataFrame, b: pd.DataFrame | None, tol: Tolerances,
                  inherited: dict | None = None) -> tuple[dict, list[dict]]:
    """Compare bundle table ``a`` with rebuild table ``b``; returns (summary row, differences).

    Examples
    --------
    >>> a = pd.DataFrame({"model": ["m", "m"], "term": ["x", "y"], "estimate": [1.0, 2.0], "method": "OLS"})
    >>> b = a.assign(estimate=[1.0, 2.5])
    >>> summary, diffs = compare_table("t", a, b, Tolerances())
    >>> summary["matched"], summary["differing"], diffs[0]["key"], diffs[0]["column"]
    (1, 1, 'm / y', 'estimate')
    """
    tol = tol.for_table(name)
    inherited = inherited or {}
    key = table_key(a)
    summary = dict(table=name, key=", ".join(key) or "row order", rows_bundle=len(a),
                   rows_rebuild=0 if b is None else len(b), compared=0, matched=0, differing=0, missing=0, extra=0,
                   posterior=0, bootstrap=0, iterative=0, deterministic=0, notes="")
    diffs: list[dict] = []
    if b is None:
        summary.update(missing=len(a), notes="table missing from the rebuild")
        diffs += [dict(table=name, key=k, column="", bundle="row", rebuild="missing", abs_diff=np.nan,
                       tolerance=np.nan, rule="row missing", kind="") for k in _keys(a, key)]
        return summary, diffs
    notes = []
    missing_cols = [c for c in key if c not in b.columns]
    if missing_cols:
        notes.append(f"key column(s) {missing_cols} missing from the rebuild")
        kb = []
    else:
        kb = _keys(b, key)
    ka = _keys(a, key)
    scales = _fit_scales(a, key)
    ia = {k: i for i, k in enumerate(ka)}
    ib = {k: i for i, k in enumerate(kb)}
    if len(ib) < len(kb):
        notes.append("duplicate keys in the rebuild (first occurrence compared)")
    cols_only_a = [c for c in a.columns if c not in b.columns]
    cols_only_b = [c for c in b.columns if c not in a.columns]
    if cols_only_a:
        notes.append(f"columns only in the bundle: {cols_only_a}")
    if cols_only_b:
        notes.append(f"columns only in the rebuild: {cols_only_b}")
    common = [c for c in a.columns if c in b.columns and c not in key]
    for k, i in ia.items():
        if k not in ib:
            summary["missing"] += 1
            diffs.append(dict(table=name, key=k, column="", bundle="row", rebuild="missing", abs_diff=np.nan,
                              tolerance=np.nan, rule="row missing", kind=""))
            continue
        ra, rb = a.iloc[i], b.iloc[ib[k]]
        kind = row_kind(ra)
        summary[kind] += 1
        summary["compared"] += 1
        row_diffs = []
        for col in cols_only_a:  # a column the rebuild lacks is a difference where the bundle has a value
            if not _is_missing(ra[col]):
                row_diffs.append(dict(table=name, key=k, column=col, bundle=ra[col], rebuild="(no column)",
                                      abs_diff=np.nan, tolerance=np.nan, rule="column missing", kind=kind))
        for col in common:
            x, y = ra[col], rb[col]
            got = cell_tolerance(kind, col, ra, rb, tol, scales[i].get(col, 0.0))
            if got is None:
                continue
            atol, rule = got
            if _is_missing(x) and _is_missing(y):
                continue
            nx, ny = _as_number(x), _as_number(y)
            if nx is not None and ny is not None:
                if np.isnan(nx) and np.isnan(ny):
                    continue
                if atol is None and nx in inherited:
                    atol, rule = inherited[nx]
                if np.isfinite(nx) and np.isfinite(ny) and _close(nx, ny, atol, tol):
                    continue
                if nx == ny:  # equal infinities
                    continue
                shown = atol if atol is not None else max(tol.rtol * max(abs(nx), abs(ny)), tol.atol)
                if atol is None:
                    rule = f"{rule}: rtol {tol.rtol:g}, atol {tol.atol:g}"
                # how many combined Monte Carlo standard errors a posterior number moved
                mult = abs(nx - ny) / (shown / tol.posterior_k) if kind == "posterior" and "MCSE" in rule and shown else np.nan
                row_diffs.append(dict(table=name, key=k, column=col, bundle=nx, rebuild=ny, abs_diff=abs(nx - ny),
                                      tolerance=shown, rule=rule, kind=kind, mcse_multiple=mult))
            else:
                tx, ty = _text(x), _text(y)
                prose = col in _PROSE or (name == "values.json" and str(k).rsplit(".", 1)[-1] in _PROSE)
                if tx != ty and prose and _NUMBER.sub("#", tx) == _NUMBER.sub("#", ty):
                    continue  # generated sentences of the claims tables: their numbers are compared in their columns
                if tx != ty and (_POSTERIOR.search(tx) or _DIAGNOSTIC_TEXT.search(tx)) and \
                        _posterior_text(tx) == _posterior_text(ty):
                    continue  # a description of posterior summaries: its numbers are compared in their columns
                if tx != ty:
                    row_diffs.append(dict(table=name, key=k, column=col, bundle=x, rebuild=y, abs_diff=np.nan,
                                          tolerance=np.nan, rule="text: exact (NUTS seed masked)", kind=kind))
        if row_diffs:
            summary["differing"] += 1
            diffs += row_diffs
        else:
            summary["matched"] += 1
    for k in ib:
        if k not in ia:
            summary["extra"] += 1
            diffs.append(dict(table=name, key=k, column="", bundle="absent", rebuild="row", abs_diff=np.nan,
                              tolerance=np.nan, rule="row only in the rebuild", kind=""))
    summary["notes"] = "; ".join(notes)
    return summary, diffs


def flatten(d, prefix: str = "") -> dict[str, object]:
    """Leaves of a nested dict/list as ``{"a.b.0": value}``.

    Examples
    --------
    >>> flatten({"a": {"b": [1, 2]}, "c": "x"})
    {'a.b.0': 1, 'a.b.1': 2, 'c': 'x'}
    """
    out: dict[str, object] = {}
    items = d.items() if isinstance(d, dict) else enumerate(d)
    for k, v in items:
        path = f"{prefix}{k}"
        if isinstance(v, (dict, list)) and v:
            out.update(flatten(v, path + "."))
        else:
            out[path] = v
    return out


def compare_values(a: dict, b: dict, tol: Tolerances, inherited: dict) -> tuple[dict, list[dict]]:
    """Compare two ``values.json`` trees leaf by leaf (timings, dates, versions and sampler
    diagnostics left out; see :data:`VALUES_SKIP`, :data:`VALUES_DIAGNOSTIC`)."""
    fa = {k: v for k, v in flatten(a).items() if not VALUES_SKIP.search(k) and not VALUES_DIAGNOSTIC.search(k)}
    fb = {k: v for k, v in flatten(b).items() if not VALUES_SKIP.search(k) and not VALUES_DIAGNOSTIC.search(k)}
    ta = pd.DataFrame({"key": list(fa), "value": [json.dumps(v) if isinstance(v, (dict, list)) else v
                                                  for v in fa.values()]})
    tb = pd.DataFrame({"key": list(fb), "value": [json.dumps(v) if isinstance(v, (dict, list)) else v
                                                  for v in fb.values()]})
    summary, diffs = compare_table("values.json", ta, tb, replace(tol, tables={}), inherited)
    summary["notes"] = "; ".join(filter(None, [summary["notes"], "timings, dates, versions and sampler "
                                                                   "diagnostics not compared"]))
    return summary, diffs


def verdict_changes(a: pd.DataFrame, b: pd.DataFrame | None) -> pd.DataFrame:
    """Claims whose verdict differs between the bundle's claims table ``a`` and the rebuild's ``b``.

    Examples
    --------
    >>> a = pd.DataFrame({"claim_id": ["c1", "c2"], "verdict": ["reproduced", "inconclusive"]})
    >>> verdict_changes(a, a.assign(verdict=["reproduced", "fragile"]))["claim_id"].tolist()
    ['c2']
    """
    cols = ["claim_id", "description", "verdict_bundle", "verdict_rebuild"]
    for df, who in ((a, "bundle"), (b, "rebuild")):
        if df is not None and not {"claim_id", "verdict"} <= set(df.columns):
            raise ValueError(f"the {who}'s claims table has no claim_id and verdict columns")
    if b is None:
        b = pd.DataFrame(columns=["claim_id", "verdict"])
    m = a.merge(b[["claim_id", "verdict"]], on="claim_id", how="outer", suffixes=("_bundle", "_rebuild"),
                indicator=True)
    m["verdict_bundle"] = m["verdict_bundle"].where(m["_merge"] != "right_only", "(absent)")
    m["verdict_rebuild"] = m["verdict_rebuild"].where(m["_merge"] != "left_only", "(absent)")
    changed = m[m["verdict_bundle"].astype(str) != m["verdict_rebuild"].astype(str)].copy()
    if "description" not in changed:
        changed["description"] = ""
    return changed[cols].reset_index(drop=True)


def boundary_note(claim_id: str, ta: dict[str, pd.DataFrame], tb: dict[str, pd.DataFrame],
                  inherited: dict[float, tuple[float, str]]) -> str:
    """Why a claim's verdict may change between two correct builds: the interval bounds of its
    specifications (``claims_specifications``) that lie within their own comparison tolerance
    (K x the combined Monte Carlo error for a posterior, the optimiser's tolerance for an iterative
    fit) of 0, the decision boundary. Empty when no bound is that close: then the change is not
    explained by Monte Carlo or floating-point error.

    Examples
    --------
    >>> spec = pd.DataFrame({"claim_id": ["C1"], "specification": ["paper"], "conf_low": [-0.001], "conf_high": [2.0]})
    >>> boundary_note("C1", {"claims_specifications": spec}, {}, {-0.001: (0.02, "5 x MCSE (mcse_conf_low)")})
    'paper: conf_low -0.001 is within 0.02 of 0 (5 x MCSE (mcse_conf_low))'
    """
    notes = []
    for tables in (ta, tb):
        spec = tables.get("claims_specifications")
        if spec is None or "claim_id" not in spec.columns:
            continue
        for _, r in spec[spec["claim_id"].astype(str) == str(claim_id)].iterrows():
            for col in ("conf_low", "conf_high", "estimate"):
                v = _num(r, col)
                if not np.isfinite(v) or v not in inherited:
                    continue
                atol, rule = inherited[v]
                if abs(v) <= atol:
                    name = r.get("specification", "")
                    note = f"{name}: {col} {v:.3g} is within {atol:.3g} of 0 ({rule.split(', as ')[0]})"
                    if note not in notes:
                        notes.append(note)
    return "; ".join(notes)


def environment_differences(bundle: Bundle) -> pd.DataFrame:
    """Python, platform and every distribution whose version differs between the bundle's lock and
    the running environment (``importlib.metadata``)."""
    import platform

    rows = []
    for what, here in (("python", platform.python_version()), ("platform", platform.platform())):
        there = bundle.meta.get(what)
        if there != here:
            rows.append(dict(package=what, bundle=there, here=here))
    lock, mine = bundle.lock(), installed_distributions()
    for name in sorted(set(lock) | set(mine)):
        if lock.get(name) != mine.get(name):
            rows.append(dict(package=name, bundle=lock.get(name, "(not installed)"),
                             here=mine.get(name, "(not installed)")))
    return pd.DataFrame(rows, columns=["package", "bundle", "here"])


@contextlib.contextmanager
def _bundle_table(bundle: Bundle, name: str):
    """A bundle table whose columns have types discbias never writes (claim ids that are numbers, key
    columns of mixed types) cannot be matched with the rebuild's: one error naming the table, not a
    pandas traceback."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise BundleError(f"bundle {bundle.path}: results/{name}.csv cannot be compared with the rebuild's table "
                          f"(its columns have types discbias does not write: {str(exc)[:120]})") from None


#: Decisions taken by comparing a number with a threshold: ``{table: (decision columns, [(number
#: column, threshold), ...])}``. A decision that differs between the builds while one of its numbers
#: lies within its own tolerance (K x the combined Monte Carlo error, the optimiser's tolerance) of
#: the threshold is at a decision boundary: two correct builds can decide either way.
DECISIONS = {
    "claims_specifications": ({"outcome", "supports"}, [("conf_low", 0.0), ("conf_high", 0.0), ("estimate", 0.0)]),
    "models_psens": ({"diagnosis"}, [("prior_sensitivity", 0.05), ("likelihood_sensitivity", 0.05)]),
}
#: Columns of a claim (``claims`` table, ``values.json`` claims) that count or describe its
#: specifications' decisions: at a boundary when one of its specifications is.
CLAIM_TALLIES = {"n_supporting", "share_agreeing", "reason", "sentence", "n_contradicting", "n_voting"}


def _row(df: pd.DataFrame | None, where: dict) -> pd.Series | None:
    if df is None or not all(c in df.columns for c in where):
        return None
    m = np.ones(len(df), bool)
    for c, v in where.items():
        m &= df[c].astype(str).to_numpy() == str(v)
    return df[m].iloc[0] if m.any() else None


def _near(ra, rb, checks, kind_row, tol: Tolerances, inherited: dict) -> str:
    """The number of a row (either build) nearest its threshold in units of its tolerance, as a note,
    when it lies within that tolerance."""
    best = None
    for col, thr in checks:
        for r in (ra, rb):
            v = _num(r, col) if r is not None else np.nan
            if not np.isfinite(v):
                continue
            if v in inherited:
                atol, rule = inherited[v]
            else:
                got = cell_tolerance(row_kind(kind_row), col, ra, rb, tol) if kind_row is not None else None
                if not got or got[0] is None:
                    continue
                atol, rule = got
            if abs(v - thr) <= atol and atol > 0 and (best is None or abs(v - thr) / atol < best[0]):
                best = (abs(v - thr) / atol, f"{col} {v:.3g} is within {atol:.3g} of {thr:g} ({rule.split(', as ')[0]})")
    return best[1] if best else ""


def boundary_reason(diff: dict, ta: dict, tb: dict, tol: Tolerances, inherited: dict) -> str:
    """Why a differing decision (a specification's outcome, a claim's tally, a psens diagnosis) may
    differ between two correct builds: the number it was decided from lies within its tolerance of
    the threshold. Empty when it does not (then the difference counts).

    Examples
    --------
    >>> spec = pd.DataFrame({"claim_id": ["C1"], "specification": ["paper"], "conf_low": [-0.1],
    ...                      "conf_high": [0.01], "outcome": ["includes 0"]})
    >>> d = dict(table="claims_specifications", key="C1 / paper", column="outcome")
    >>> boundary_reason(d, {"claims_specifications": spec}, {}, Tolerances(), {0.01: (0.05, "5 x MCSE")})
    'paper: conf_high 0.01 is within 0.05 of 0 (5 x MCSE)'
    """
    table, key, col = diff.get("table"), str(diff.get("key", "")), str(diff.get("column", ""))
    if table == "values.json":
        parts = key.split(".")
        if len(parts) >= 5 and parts[0] == "claims" and parts[2] == "specifications":
            table, col = "claims_specifications", parts[-1]
            where = dict(claim_id=parts[1], specification=parts[3])
        elif len(parts) == 3 and parts[0] == "claims":
            table, col, where = "claims", parts[2], dict(claim_id=parts[1])
        else:
            return ""
    elif table == "claims_specifications":
        where = dict(zip(("claim_id", "specification"), key.split(" / ", 1)))
    elif table == "claims":
        where = dict(claim_id=key)
    elif table in DECISIONS:
        a = ta.get(table)
        kcols = table_key(a) if a is not None else []
        where = dict(zip(kcols, key.split(" / ")))
    else:
        return ""
    if table == "claims":
        if col not in CLAIM_TALLIES:
            return ""
        return boundary_note(where.get("claim_id", ""), ta, tb, inherited)
    cols, checks = DECISIONS[table]
    if col not in cols:
        return ""
    ra, rb = _row(ta.get(table), where), _row(tb.get(table), where)
    note = _near(ra, rb, checks, ra if ra is not None else rb, tol.for_table(table), inherited)
    if note and table == "claims_specifications":
        note = f"{where.get('specification', '')}: {note}"
    return note


def verify_build(bundle: Bundle, build: str | Path, tol: Tolerances | None = None, *,
                 template_dir: str | Path | None = None) -> VerifyResult:
    """Compare the build folder ``build`` (holding ``results/`` and ``values.json``) with a bundle.

    Parameters
    ----------
    bundle : Bundle
        From :func:`~discbias.reproduce.bundle.read_bundle` (its manifest already checked).
    build : path
        The rebuild's ``build/`` folder.
    tol : Tolerances, optional
    template_dir : path, optional
        Templates of the rebuild, to compare their hash with the bundle's.

    Returns
    -------
    VerifyResult

    Examples
    --------
    >>> from discbias.reproduce import read_bundle
    >>> verify_build(read_bundle("build/bundle/grissom2024-abc1234.zip"), "build").exit_code  # doctest: +SKIP
    0
    """
    tol = tol or Tolerances()
    build = Path(build)
    results = build / "results"
    if not results.is_dir():
        raise MissingInputError(f"{results} does not exist: run `make report` (or pass --build / --rebuild)")
    ta = bundle.tables()
    tb = {p.stem: pd.read_csv(p) for p in sorted(results.glob("*.csv"))}
    inherited = _inherited_index(ta, tb, tol)
    summaries, diffs = [], []
    for name in sorted(set(ta) | set(tb)):
        if name not in ta:
            summaries.append(dict(table=name, key="", rows_bundle=0, rows_rebuild=len(tb[name]), compared=0, matched=0,
                                  differing=0, missing=0, extra=len(tb[name]), posterior=0, bootstrap=0,
                                  iterative=0, deterministic=0, notes="table only in the rebuild"))
            diffs.append(dict(table=name, key="(whole table)", column="", bundle="absent", rebuild=f"{len(tb[name])} rows",
                              abs_diff=np.nan, tolerance=np.nan, rule="table only in the rebuild", kind=""))
            continue
        with _bundle_table(bundle, name):
            s, d = compare_table(name, ta[name], tb.get(name), tol, inherited)
        summaries.append(s)
        diffs += d
    values_b = build / "values.json"
    if values_b.exists():
        s, d = compare_values(bundle.values(), json.loads(values_b.read_text()), tol, inherited)
    else:
        s, d = dict(table="values.json", key="", rows_bundle=len(flatten(bundle.values())), rows_rebuild=0,
                    notes="values.json missing from the rebuild"), [dict(table="values.json", key="(whole file)", column="",
                                                                      bundle="file", rebuild="missing", rule="file missing")]
    summaries.append(s)
    diffs += d
    if "claims" in ta or "claims" in tb:
        with _bundle_table(bundle, "claims"):
            verdicts = verdict_changes(ta.get("claims", pd.DataFrame(columns=["claim_id", "verdict"])),
                                       tb.get("claims"))
    else:  # a study kind without a claims table (the planted-bias study)
        verdicts = pd.DataFrame(columns=["claim_id", "description", "verdict_bundle", "verdict_rebuild"])
    verdicts["at_boundary"] = [boundary_note(c, ta, tb, inherited) for c in verdicts["claim_id"]]
    # decisions that differ because a number sits within its own error of the threshold: listed
    # apart (the report says so), not counted as a difference
    boundary, kept = [], []
    for dd in diffs:
        why = boundary_reason(dd, ta, tb, tol, inherited) if dd.get("column") else ""
        (boundary if why else kept).append(dict(dd, rule=f"at a decision boundary: {why}", kind="boundary") if why else dd)
    if boundary:
        by_table = pd.DataFrame(boundary).groupby("table")["key"].nunique()
        still = pd.DataFrame(kept).groupby("table")["key"].nunique() if kept else pd.Series(dtype=int)
        for s_ in summaries:
            n_b = int(by_table.get(s_["table"], 0))
            if n_b:
                s_["at_boundary"] = n_b
                s_["differing"] = int(still.get(s_["table"], 0))
                s_["matched"] = int(s_.get("compared", 0)) - s_["differing"] - n_b
    diffs = kept
    info = dict(bundle=str(bundle.path), build=str(build), study_id=bundle.meta.get("study_id"),
                title=bundle.meta.get("title"), bundle_commit=bundle.meta.get("commit"),
                bundle_dirty=bundle.meta.get("dirty"), bundle_created=bundle.meta.get("created"),
                templates_bundle=bundle.meta.get("templates_sha256"), templates_rebuild=None)
    git = project_commit(build.parent)
    if values_b.exists():  # the commit that fitted the rebuild's results, when it was recorded
        git = json.loads(values_b.read_text()).get("meta", {}).get("code_commit") or git
    info.update(rebuild_commit=git.get("commit"), rebuild_dirty=git.get("dirty"))
    if template_dir is not None and Path(template_dir).is_dir():
        info["templates_rebuild"] = templates_digest(template_dir)
    summary_cols = ["table", "key", "rows_bundle", "rows_rebuild", "compared", "matched", "differing", "at_boundary",
                    "missing", "extra", "posterior", "bootstrap", "iterative", "deterministic", "notes"]
    diff_cols = ["table", "key", "column", "bundle", "rebuild", "abs_diff", "tolerance", "rule", "kind", "mcse_multiple"]
    return VerifyResult(tables=pd.DataFrame(summaries).reindex(columns=summary_cols),
                        differences=pd.DataFrame(diffs).reindex(columns=diff_cols),
                        verdicts=verdicts, environment=environment_differences(bundle), info=info,
                        boundary=pd.DataFrame(boundary).reindex(columns=diff_cols))


# ------------------------------------------------------------------------------------------------
# report


def md_text(x) -> str:
    r"""Text from a bundle as literal Markdown text (:func:`discbias.report.escape.md_text`, the one
    escaping layer of every document, with straight quotes escaped too): every character Markdown or
    HTML could read as syntax is backslash-escaped, line breaks become spaces, and ``www.`` cannot
    become a link.

    Titles, claim ids, verdicts and member names come from the bundle, which may have been written by
    anyone: in the report they are text, never markup (no ``<script>``, no links, no images).

    Examples
    --------
    >>> print(md_text("<script>alert(1)</script> ![x](/etc/passwd)"))
    \<script\>alert(1)\</script\> \!\[x\](/etc/passwd)
    """
    from ..report.escape import md_text as _md_text

    return _md_text(x, quotes=True)


def _md_table(df: pd.DataFrame, limit: int | None = None) -> str:
    if df.empty:
        return "(none)\n"
    shown = df if limit is None else df.head(limit)

    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.10g}"
        return md_text(v)

    lines = ["| " + " | ".join(md_text(c) for c in shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in shown.itertuples(index=False, name=None)]
    if limit is not None and len(df) > limit:
        lines.append(f"\n... and {len(df) - limit} more (all in `differences.csv`)")
    return "\n".join(lines) + "\n"


def report_markdown(result: VerifyResult, tol: Tolerances) -> str:
    """The verification report as Markdown: status, changed verdicts first, the environment beside
    them, then every table and its differences."""
    i = result.info
    nb = len(result.boundary) + int((result.verdicts.get("at_boundary", pd.Series(dtype=str)).astype(str).str.strip() != "").sum())
    status = (("**MATCH**: every number and every verdict of the bundle was reproduced"
               + (f", except {nb} decision(s) at a decision boundary (listed below: a number within its own "
                  "Monte Carlo or optimiser error of the threshold)." if nb else ".")) if result.matched else
              f"**DIFFERENT**: {len(result.verdicts)} verdict(s) changed, "
              f"{int(result.tables['differing'].fillna(0).sum())} row(s) differ, "
              f"{int(result.tables['missing'].fillna(0).sum())} missing, {int(result.tables['extra'].fillna(0).sum())} extra.")
    t = result.tables
    e = md_text  # every string from the bundle (and the paths) is escaped: text, never markup
    lines = [f"# Verification of {e(Path(i['bundle']).name)}", "",
             f"- Study: {e(i['study_id'])} ({e(i['title'])})",
             f"- Bundle: {e(i['bundle'])}, commit {e(i['bundle_commit'])}{' (uncommitted changes)' if i['bundle_dirty'] else ''}, "
             f"created {e(i['bundle_created'])}",
             f"- Rebuild: {e(i['build'])}, commit {e(i['rebuild_commit'])}{' (uncommitted changes)' if i['rebuild_dirty'] else ''}",
             f"- Templates: {'same hash' if i['templates_rebuild'] == i['templates_bundle'] else 'hash differs or unknown'}"
             f" (bundle {e(str(i['templates_bundle'])[:12])}, rebuild {e(str(i['templates_rebuild'])[:12])})",
             f"- Tolerances: deterministic rtol {tol.rtol:g} (atol {tol.atol:g}); iterative fits rtol {tol.rtol_iterative:g} on the fit's scale (degrees of freedom from numerical derivatives {tol.rtol_derived:g}); "
             f"posterior {tol.posterior_k:g} x MCSE; "
             f"bootstrap {tol.bootstrap_k:g} x resampling error"
             + (f"; per-table overrides: {e(tol.tables)}" if tol.tables else ""),
             f"- Rows compared: {int(t['compared'].fillna(0).sum())}, matched {int(t['matched'].fillna(0).sum())}",
             "", status, "",
             "## Claims whose verdict changed", "",
             "A change whose `at_boundary` column names a bound is one where that bound lies within its Monte "
             "Carlo (or optimiser) tolerance of 0, the decision boundary: two correct builds can decide either way. "
             "An empty `at_boundary` means the change is not explained by Monte Carlo or floating-point error.",
             "", _md_table(result.verdicts),
             "## Decisions at a boundary", "",
             "Decisions that differ while the number they were taken from lies within its own tolerance of the "
             "threshold (not counted as a difference):", "", _md_table(result.boundary),
             "## Environment differences", "",
             "Distributions whose version differs between the bundle's lock and this environment "
             "(not counted as a mismatch):", "", _md_table(result.environment),
             "## Tables", "", _md_table(result.tables),
             "## Differences", "", _md_table(result.differences, limit=500)]
    return "\n".join(lines)


def write_report(result: VerifyResult, tol: Tolerances, out_dir: str | Path) -> list[Path]:
    """Write ``report.md``, ``report.html`` and the tidy ``tables.csv`` / ``differences.csv``."""
    import pypandoc

    from ..results import atomic_write_text, write_table

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = report_markdown(result, tol)
    atomic_write_text(out_dir / "report.md", md)
    # raw HTML and bare-URI links off as well: the escaped text can only ever be text
    from ..report.render import pandoc_path

    pandoc_path()  # pypandoc's own pandoc, never an older one on the PATH
    html = pypandoc.convert_text(md, "html5", format="gfm-raw_html-autolink_bare_uris", extra_args=[
        "--standalone", "--metadata", f"title=discbias verify: {Path(result.info['bundle']).name}"])
    atomic_write_text(out_dir / "report.html", html)
    write_table(result.tables, out_dir / "tables.csv")
    write_table(result.differences, out_dir / "differences.csv")
    write_table(result.verdicts, out_dir / "verdicts.csv")
    write_table(result.boundary, out_dir / "boundary.csv")
    write_table(result.environment, out_dir / "environment.csv")
    return [out_dir / "report.md", out_dir / "report.html"]


__all__ = ["Tolerances", "VerifyResult", "verify_build", "compare_table",
                                                     "table_key", "row_kind", "cell_tolerance", "verdict_changes",
                                                     "environment_differences", "write_report", "report_markdown"]
