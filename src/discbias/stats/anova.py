"""Linear models and ANOVA tables the way R's ``lm()`` / ``anova()`` / ``car::Anova()`` compute them.

R orders the terms of a formula by their order (main effects, then two-way interactions, ...),
keeping the written order within an order, so ``y ~ race * hair + luminance`` is fitted as
``race, hair, luminance, race:hair``. patsy (and so statsmodels' ``anova_lm(typ=1)``) keeps
``race, hair, race:hair, luminance`` instead, and a sequential (type I) ANOVA depends on that
order. :func:`lm_anova` builds the design with patsy (treatment contrasts, levels sorted, as R's
default factor coding), puts the terms in R's order, and computes:

* type I (sequential) sums of squares, as ``anova(lm(...))``;
* type II sums of squares (each term adjusted for every term that does not contain it), as
  ``car::Anova(lm(...), type = 2)``;

both from nested least-squares fits, so rank-deficient designs are handled as R does (an
aliased column adds no degree of freedom). Results are tidy frames in the package's schema.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from ..results import result_frame

_TERM_SPLIT = re.compile(r"\s*\+\s*")


def r_terms(rhs: str) -> list[str]:
    """Expand the right-hand side of an R formula into its terms, in R's order.

    Supports ``+``, ``*`` and ``:`` (what the 2024 paper's scripts use). ``a * b`` expands to
    ``a, b, a:b``; terms are ordered by their order (number of variables), stably.

    Examples
    --------
    >>> r_terms("race * hair_length + luminance")
    ['race', 'hair_length', 'luminance', 'race:hair_length']
    >>> r_terms("a*b*c")
    ['a', 'b', 'c', 'a:b', 'a:c', 'b:c', 'a:b:c']
    """
    from itertools import combinations

    out: list[tuple[str, ...]] = []
    for chunk in _TERM_SPLIT.split(rhs.strip()):
        if not chunk:
            raise ValueError(f"empty term in formula right-hand side {rhs!r}")
        if "*" in chunk:
            vars_ = [v.strip() for v in chunk.split("*")]
            expanded = [c for k in range(1, len(vars_) + 1) for c in combinations(vars_, k)]
        else:
            expanded = [tuple(v.strip() for v in chunk.split(":"))]
        for t in expanded:
            if any(not re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", v) for v in t):
                raise ValueError(f"unsupported term {':'.join(t)!r} in {rhs!r}: use plain column names with + * :")
            if not any(set(t) == set(o) for o in out):
                out.append(t)
    out.sort(key=len)  # stable: keeps the written order within an order, as R's terms()
    return [":".join(t) for t in out]


def _parse(formula: str) -> tuple[str, list[str]]:
    if "~" not in formula:
        raise ValueError(f"formula {formula!r} has no '~'")
    lhs, rhs = formula.split("~", 1)
    return lhs.strip(), r_terms(rhs)


def _design(formula: str, data: pd.DataFrame):
    """(y, X, column blocks per term in R order, R column names, categorical variables)."""
    import patsy

    response, terms = _parse(formula)
    variables = sorted({v for t in terms for v in t.split(":")} | {response})
    missing = [v for v in variables if v not in data.columns]
    if missing:
        raise KeyError(f"formula {formula!r}: column(s) {missing} not in the data (columns: {list(data.columns)})")
    frame = data[variables].dropna()
    cats = [v for v in variables if v != response and not pd.api.types.is_numeric_dtype(frame[v])]
    levels = {v: sorted(frame[v].astype(str).unique()) for v in cats}
    for v in cats:
        frame[v] = frame[v].astype(str)
    rhs = " + ".join(":".join(f"C({v}, Treatment, levels=L_{v})" if v in cats else v for v in t.split(":"))
                     for t in terms)
    env = {f"L_{v}": lv for v, lv in levels.items()}
    X = patsy.dmatrix(rhs, frame, eval_env=patsy.EvalEnvironment([env, {"Treatment": patsy.Treatment, "C": patsy.builtins.C}]),
                      return_type="dataframe", NA_action="raise")
    info = X.design_info
    blocks: dict[str, list[int]] = {"(Intercept)": list(range(*info.term_slices[info.terms[0]].indices(X.shape[1])))}
    r_names = ["(Intercept)"]
    # patsy term names are written with C(...): map them back to our terms by their variable sets
    by_vars = {frozenset(t.split(":")): t for t in terms}
    order = []
    for term in info.terms[1:]:
        vars_ = frozenset(re.sub(r"C\((\w[\w.]*),.*", r"\1", f.name()) for f in term.factors)
        name = by_vars[vars_]
        sl = info.term_slices[term]
        blocks[name] = list(range(*sl.indices(X.shape[1])))
        order.append(name)
    # R's column names: var + level for each factor of a column, joined by ':'
    col_r = []
    for c in X.columns:
        if c == "Intercept":
            col_r.append("(Intercept)")
            continue
        parts = []
        for p in c.split(":"):
            m = re.match(r"C\((\w[\w.]*),.*\)\[T\.(.*)\]$", p)
            parts.append(f"{m[1]}{m[2]}" if m else p)
        col_r.append(":".join(parts))
    cols = blocks["(Intercept)"] + [i for t in terms for i in blocks[t]]
    y = frame[response].to_numpy(float)
    Xr = X.to_numpy(float)[:, cols]
    names_r = [col_r[i] for i in cols]
    col_term = ["(Intercept)"] * len(blocks["(Intercept)"]) + [t for t in terms for _ in blocks[t]]
    return y, Xr, terms, col_term, names_r, frame, len(data) - len(frame)


def _rss_rank(y: np.ndarray, X: np.ndarray) -> tuple[float, int]:
    if X.shape[1] == 0:
        return float(y @ y), 0
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r), int(np.linalg.matrix_rank(X))


def _package_term(r_name: str, cats: set[str]) -> str:
    if r_name == "(Intercept)":
        return "Intercept"
    out = []
    for p in r_name.split(":"):
        v = next((c for c in sorted(cats, key=len, reverse=True) if p.startswith(c) and p != c), None)
        out.append(f"{v}[{p[len(v):]}]" if v else p)
    return ":".join(out)


def lm_anova(formula: str, data: pd.DataFrame, *, model: str, typ: tuple[int, ...] = (1, 2),
             cov_type: str = "nonrobust", conf_level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit ``lm(formula)`` as R does; return the coefficient table and the ANOVA table(s).

    Parameters
    ----------
    formula : str
        R formula with plain column names, ``+``, ``*`` and ``:``, e.g.
        ``"discriminator_score ~ race * hair_length + luminance"``. Non-numeric columns are
        factors with treatment contrasts and sorted levels (R's default).
    data : DataFrame
        Rows with a missing value in a model variable are dropped (said in ``warnings``).
    model : str
        Model id; the ANOVA rows get ``<model>`` too, with ``anova_type`` 1 or 2.
    typ : tuple of int
        Which ANOVA types to compute: 1 (sequential, ``anova()``), 2 (``car::Anova(type = 2)``).
    cov_type : str
        Coefficient standard errors: ``"nonrobust"`` (R's ``summary.lm``) or a statsmodels
        heteroskedasticity-robust type (``"HC3"``...). The ANOVA tables are always classical.
    conf_level : float

    Returns
    -------
    coef : DataFrame
        One row per coefficient (tidy schema; ``term`` in package notation such as
        ``race[black]:hair_length[short]``, ``r_term`` as R names it, ``r_squared``, ``formula``).
    anova : DataFrame
        One row per term and a ``Residual`` row per type: ``statistic`` = F, ``df``, ``sum_sq``,
        ``mean_sq``, ``estimate`` = partial eta squared, ``anova_type``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"g": rng.choice(["a", "b", "c"], 60), "h": rng.choice(["x", "y"], 60),
    ...                   "z": rng.normal(size=60)})
    >>> d["y"] = (d.g == "b") * 1.0 + d.z + rng.normal(size=60)
    >>> coef, an = lm_anova("y ~ g * h + z", d, model="demo")
    >>> an[an.anova_type == 1]["term"].tolist()
    ['g', 'h', 'z', 'g:h', 'Residual']
    >>> coef["r_term"].tolist()[:3]
    ['(Intercept)', 'gb', 'gc']
    """
    from scipy import stats

    import statsmodels.api as sm

    y, X, terms, col_term, names_r, frame, dropped = _design(formula, data)
    n = len(y)
    warns = []
    if dropped:
        warns.append(f"{dropped} row{'' if dropped == 1 else 's'} dropped for missing values")
    rss_full, rank_full = _rss_rank(y, X)
    if rank_full < X.shape[1]:
        warns.append(f"rank-deficient design: rank {rank_full} < {X.shape[1]} columns")
    df_res = n - rank_full
    if df_res <= 0:
        raise ValueError(f"{model}: {n} rows leave no residual degrees of freedom for {X.shape[1]} columns")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = sm.OLS(y, X).fit(cov_type=cov_type)
    warns += [str(w.message) for w in caught if "rank-deficient" not in str(w.message)]
    ci = np.asarray(fit.conf_int(1 - conf_level))
    pvals = np.asarray(fit.pvalues, float)
    if cov_type == "nonrobust":
        # as R's 2 * pt(-|t|, df): through the log survival function, so tiny p-values do not underflow to 0
        pvals = np.exp(np.log(2) + stats.t.logsf(np.abs(np.asarray(fit.tvalues, float)), df_res))
    cats = {v for t in terms for v in t.split(":") if not pd.api.types.is_numeric_dtype(frame[v])}
    method = "OLS (lm)" + ("" if cov_type == "nonrobust" else f" ({cov_type} standard errors)")
    rows = [dict(model=model, term=_package_term(r, cats), r_term=r, estimate=fit.params[i], std_error=fit.bse[i],
                 statistic=fit.tvalues[i], p_value=pvals[i], conf_low=ci[i, 0], conf_high=ci[i, 1],
                 conf_level=conf_level, method=method, n_obs=n, n_groups=np.nan, converged=True, warnings=list(warns),
                 r_squared=fit.rsquared, df_resid=df_res, formula=formula)
            for i, r in enumerate(names_r)]
    coef = result_frame(rows)

    col_term = np.asarray(col_term)

    def cols_of(ts) -> np.ndarray:
        return np.isin(col_term, ["(Intercept)", *ts])

    mse = rss_full / df_res
    an_rows = []
    for t_ in typ:
        if t_ not in (1, 2):
            raise ValueError(f"ANOVA type must be 1 or 2, not {t_!r}")
        for k, term in enumerate(terms):
            if t_ == 1:
                base = terms[:k]
            else:
                mine = set(term.split(":"))
                base = [o for o in terms if o != term and not mine < set(o.split(":"))]
            rss0, r0 = _rss_rank(y, X[:, cols_of(base)])
            rss1, r1 = _rss_rank(y, X[:, cols_of([*base, term])])
            ss, df = rss0 - rss1, r1 - r0
            F = (ss / df) / mse if df > 0 else np.nan
            an_rows.append(dict(model=model, term=term, estimate=ss / (ss + rss_full) if df > 0 else np.nan,
                                statistic=F, p_value=float(np.exp(stats.f.logsf(F, df, df_res))) if df > 0 else np.nan,
                                df=df, sum_sq=ss, mean_sq=ss / df if df > 0 else np.nan, anova_type=t_))
        an_rows.append(dict(model=model, term="Residual", estimate=np.nan, statistic=np.nan, p_value=np.nan,
                            df=df_res, sum_sq=rss_full, mean_sq=mse, anova_type=t_))
    for r in an_rows:
        kind = "type I (sequential, R term order)" if r["anova_type"] == 1 else "type II (car::Anova)"
        r.update(method=f"{kind} ANOVA (estimate: partial eta squared)", n_obs=n, n_groups=np.nan, converged=True,
                 warnings=list(warns), formula=formula)
    return coef, result_frame(an_rows)
