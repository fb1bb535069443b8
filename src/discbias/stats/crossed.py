"""Linear mixed models with crossed random intercepts, e.g. ``(1|rater) + (1|image)`` at the rating level.

Two maintained back ends, one tidy output (the results schema of :mod:`discbias.results`, the
same columns as :func:`discbias.stats.mixed.mixedlm` and :func:`discbias.stats.bayes.posterior_table`):

* ``engine="bambi"`` (default): Bambi on PyMC, NUTS, Bambi's default weakly informative priors.
  Rows are posterior means with highest-density intervals; R-hat, bulk/tail ESS and divergences
  are reported per row and ``converged`` follows :data:`discbias.stats.bayes.MAX_RHAT` and
  :data:`~discbias.stats.bayes.MIN_ESS` (no divergences).
* ``engine="statsmodels"``: REML variance components (``MixedLM`` with one all-encompassing group
  and one variance component per crossed factor, the statsmodels route to crossed effects).
  Fast (seconds) and frequentist (Wald z intervals for the fixed effects); no intervals for the
  variances.

The lme4 equivalent of both is ``lmer(y ~ x + (1|rater) + (1|image), data)``.

Degenerate fits (:mod:`discbias.stats.degenerate`), for both back ends: an outcome constant within
a grouping factor (a score per image at the rating level with ``(1|image)``) is said before
fitting and not fitted (no sampling either); a residual variance of ~0 (posterior mean of the
residual SD for Bambi) or, for statsmodels, a non-positive-definite Hessian is flagged after it.
Either way every row carries the reason in ``degenerate`` and no claim reads a verdict from it.

Every random-effect standard deviation gets a row ``sd(<factor>)`` and the residual one
``sd(residual)``; ``re_share`` (the factor's share of the total variance) and ``re_near_zero``
(share below :data:`discbias.stats.mixed.NEAR_ZERO_SHARE` -- compare with OLS then) are extra
columns. With few levels (three raters) a factor's SD is weakly identified: the row says so in
``warnings``.
"""

from __future__ import annotations

import logging
import re
import time
import warnings

import numpy as np
import pandas as pd

from ..results import result_frame

__all__ = ["crossed_mixed", "parse_random_effects", "ENGINES"]

#: Back ends of :func:`crossed_mixed`.
ENGINES = ("bambi", "statsmodels")
#: Sampler settings of :func:`crossed_mixed` with ``engine="bambi"`` (tests pass smaller ones).
BAMBI_DEFAULTS = dict(draws=1000, tune=1000, chains=4, cores=1, target_accept=0.95, seed=20240215)
#: A factor with fewer levels than this gets a "weakly identified" warning on its SD.
FEW_LEVELS = 5

_RE = re.compile(r"\(\s*1\s*\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")


def parse_random_effects(formula: str) -> tuple[str, list[str]]:
    """Split ``"y ~ x + (1|rater) + (1|image)"`` into the fixed part and the grouping factors.

    Only random intercepts ``(1|factor)`` are supported; anything else inside brackets with a bar
    raises ``ValueError`` saying so.

    Examples
    --------
    >>> parse_random_effects("y ~ x + (1 | rater) + (1|image)")
    ('y ~ x', ['rater', 'image'])
    >>> parse_random_effects("y ~ x")
    ('y ~ x', [])
    """
    factors = _RE.findall(formula)
    fixed = _RE.sub("", formula)
    if "|" in fixed:
        raise ValueError(f"formula {formula!r}: only random intercepts such as (1|rater) are supported, "
                         f"not random slopes; write the term as (1|factor)")
    fixed = re.sub(r"\+\s*(\+\s*)+", "+ ", fixed)
    fixed = re.sub(r"\s*\+\s*$", "", fixed.strip())
    fixed = re.sub(r"~\s*\+\s*", "~ ", fixed)
    if fixed.rstrip().endswith("~"):
        fixed = fixed.rstrip() + " 1"
    return re.sub(r"\s+", " ", fixed).strip(), factors


def _columns(fixed: str, data: pd.DataFrame) -> list[str]:
    return [c for c in data.columns if re.search(rf"(?<![A-Za-z0-9_]){re.escape(str(c))}(?![A-Za-z0-9_])", fixed)]


def _prepare(formula: str, data: pd.DataFrame):
    fixed, factors = parse_random_effects(formula)
    if not factors:
        raise ValueError(f"formula {formula!r} has no random intercept; add e.g. + (1|rater) + (1|image)")
    missing = [f for f in factors if f not in data.columns]
    if missing:
        raise ValueError(f"formula {formula!r}: grouping column(s) {missing} not in the data "
                         f"(columns: {', '.join(map(str, data.columns))})")
    cols = sorted(set(_columns(fixed, data)) | set(factors))
    d = data[cols].dropna().copy()
    for f in factors:
        d[f] = d[f].astype(str)
    warns = []
    if len(d) < len(data):
        warns.append(f"{len(data) - len(d)} row{'' if len(data) - len(d) == 1 else 's'} dropped for missing values in {cols}")
    levels = {f: int(d[f].nunique()) for f in factors}
    return fixed, factors, d, warns, levels


def _variance_rows(common: dict, sds: dict[str, float], levels: dict[str, int]) -> list[dict]:
    from .mixed import NEAR_ZERO_SHARE

    total = sum(v ** 2 for v in sds.values())
    resid = sds["residual"] ** 2
    out = []
    for name, sd in sds.items():
        share = sd ** 2 / total if total > 0 else np.nan
        near = bool(name != "residual" and sd ** 2 < NEAR_ZERO_SHARE * resid)
        w = []
        if near:
            w.append(f"variance of {name} near zero ({sd ** 2:.3g} vs residual {resid:.3g}): compare with the OLS fit")
        if name != "residual" and levels.get(name, FEW_LEVELS) < FEW_LEVELS:
            w.append(f"{name} has {levels[name]} levels: its SD is weakly identified")
        out.append(dict(common, term=f"sd({name})", re_share=share, re_near_zero=near,
                        n_groups=levels.get(name, np.nan), extra_warnings=w))
    return out


def crossed_mixed(formula: str, data: pd.DataFrame, *, model: str, engine: str = "bambi", conf_level: float = 0.95,
                  draws: int | None = None, tune: int | None = None, chains: int | None = None,
                  seed: int | None = None, target_accept: float | None = None) -> pd.DataFrame:
    """Fit ``y ~ fixed + (1|a) + (1|b) ...`` (crossed random intercepts) and return the tidy table.

    Parameters
    ----------
    formula : str
        lme4-style formula with random intercepts, e.g. ``"rating ~ group + (1|rater) + (1|image)"``.
    data : DataFrame
        One row per observation (a rating), with the grouping columns.
    model : str
        Model id written in every row.
    engine : {"bambi", "statsmodels"}
        Back end (see the module notes).
    conf_level : float
        HDI probability (Bambi) or Wald level (statsmodels).
    draws, tune, chains, seed, target_accept
        NUTS settings (Bambi only; defaults :data:`BAMBI_DEFAULTS`).

    Returns
    -------
    DataFrame
        One row per fixed effect and per ``sd(<factor>)`` / ``sd(residual)``, with the schema
        columns and ``formula``, ``engine``, ``re_share``, ``re_near_zero``, ``group_levels``
        (and for Bambi ``r_hat``, ``ess_bulk``, ``ess_tail``, ``divergences``).
        ``n_groups`` is the factor's number of levels on its SD row and the smallest factor's
        elsewhere.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> img = np.repeat(np.arange(40), 4); rat = np.tile(np.arange(4), 40)
    >>> x = rng.normal(size=40)[img]
    >>> y = 0.5 * x + rng.normal(0, 1, 40)[img] + np.array([-1, 0, 0.5, 1])[rat] + rng.normal(0, 0.3, 160)
    >>> df = pd.DataFrame({"y": y, "x": x, "image": img, "rater": rat})
    >>> t = crossed_mixed("y ~ x + (1|rater) + (1|image)", df, model="demo", engine="statsmodels")
    >>> t["term"].tolist()
    ['Intercept', 'x', 'sd(rater)', 'sd(image)', 'sd(residual)']
    >>> bool(t["converged"].all()), round(float(t.set_index("term").loc["sd(residual)", "estimate"]), 1)
    (True, 0.3)
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    from ..formulas import check_formula

    check_formula(formula)
    fixed, factors, d, warns, levels = _prepare(formula, data)
    if len(d) == 0:
        raise ValueError(f"formula {formula!r}: no complete rows to fit")
    lv = ", ".join(f"{f}: {n}" for f, n in levels.items())
    common = dict(model=model, conf_level=conf_level, n_obs=int(len(d)), n_groups=min(levels.values()),
                  formula=formula, engine=engine, group_levels=lv)
    # said before fitting: an outcome constant within a grouping factor makes the fit degenerate
    from .degenerate import constant_reason, constant_within

    outcome = fixed.split("~")[0].strip()
    const = constant_within(d, outcome, factors) if outcome in d.columns else []
    if const:
        import sys

        import patsy

        why = constant_reason(const, outcome)
        print(f"[discbias] {model}: not fitted: {why}", file=sys.stderr)
        names = patsy.dmatrix(fixed.split("~", 1)[1], d).design_info.column_names
        return result_frame([dict(common, term=n.replace("[T.", "["), estimate=np.nan, method="not fitted (degenerate)",
                                  converged=False, warnings=warns + [why], degenerate=why) for n in names])
    if engine == "statsmodels":
        rows = _fit_statsmodels(fixed, factors, d, warns, levels, common, conf_level)
    else:
        s = dict(BAMBI_DEFAULTS)
        s.update({k: v for k, v in dict(draws=draws, tune=tune, chains=chains, seed=seed,
                                         target_accept=target_accept).items() if v is not None})
        rows = _fit_bambi(formula, fixed, factors, d, warns, levels, common, conf_level, s)
    return result_frame(rows)


def _fit_statsmodels(fixed, factors, d, warns, levels, common, conf_level) -> list[dict]:
    import statsmodels.formula.api as smf
    from .mixed import fit_first_converged
    from scipy import stats

    d = d.assign(_all=1)
    vc = {f: f"0 + C({f})" for f in factors}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = smf.mixedlm(fixed, data=d, groups="_all", vc_formula=vc, re_formula="0")
        fit, _, rejected = fit_first_converged(mod, ("lbfgs", "bfgs", "powell"), reml=True, keep_unconverged=True)
    if fit is None:
        raise RuntimeError(f"crossed MixedLM {fixed}: every optimizer failed ({'; '.join(rejected)})")
    warns = warns + sorted({str(w.message).splitlines()[0] for w in caught})
    if rejected:
        warns.append(("optimizer rejected: " if len(rejected) == 1 else "optimizers rejected: ") + "; ".join(rejected))
    converged = bool(fit.converged) and np.isfinite(fit.llf)
    if not converged:
        warns.append("optimizer did not converge")
    method = ("linear mixed model, crossed random intercepts " + " + ".join(f"(1|{f})" for f in factors)
              + " (statsmodels variance components, REML; Wald z CI)")
    common = dict(common, method=method, converged=converged)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    rows = []
    for term in fit.fe_params.index:
        est, se = float(fit.fe_params[term]), float(fit.bse_fe[term])
        rows.append(dict(common, term=term.replace("[T.", "["), estimate=est, std_error=se, statistic=est / se,
                         p_value=2 * stats.norm.sf(abs(est / se)), conf_low=est - z * se, conf_high=est + z * se,
                         warnings=list(warns)))
    sds = {f: float(np.sqrt(max(v, 0.0))) for f, v in zip(mod.exog_vc.names, fit.vcomp)}
    sds = {f: sds[f] for f in factors}
    sds["residual"] = float(np.sqrt(fit.scale))
    from .degenerate import hessian_degenerate, residual_degenerate

    k = len(fit.fe_params)
    why = "; ".join(filter(None, [residual_degenerate(float(fit.scale), float(np.var(mod.endog, ddof=1))),
                                  hessian_degenerate(np.asarray(fit.cov_params())[:k, :k])]))
    if why:
        warns = warns + [f"degenerate fit: {why}"]
        rows = [dict(r, warnings=list(warns), degenerate=why) for r in rows]
        common = dict(common, degenerate=why)
    for r in _variance_rows(common, sds, levels):
        w = r.pop("extra_warnings")
        name = r["term"][3:-1]
        rows.append(dict(r, estimate=sds[name], warnings=list(warns) + w))
    return rows


def _fit_bambi(formula, fixed, factors, d, warns, levels, common, conf_level, s) -> list[dict]:
    import arviz as az
    import bambi as bmb

    from .bayes import posterior_table

    loggers = [logging.getLogger(n) for n in ("pymc", "pymc.sampling.mcmc", "pytensor", "bambi")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bm = bmb.Model(fixed + "".join(f" + (1|{f})" for f in factors), d)
            idata = bm.fit(draws=s["draws"], tune=s["tune"], chains=s["chains"], cores=s["cores"],
                           random_seed=s["seed"], target_accept=s["target_accept"], progressbar=False,
                           compute_convergence_checks=False)
    finally:
        for lg, lv in zip(loggers, old):
            lg.setLevel(lv)
    seconds = time.perf_counter() - t0
    post = idata.posterior
    # flatten every fixed-effect variable (categorical terms have a level dimension) into scalars
    flat, names = {}, {}
    resp = bm.response_component.term.name
    for var in post.data_vars:
        if "|" in var or var == "sigma" or var.endswith("_log__") or var == f"{resp}_mean" or var == "mu":
            continue
        arr = np.asarray(post[var])
        if arr.ndim == 2:
            flat[var], names[var] = arr, var
        else:
            dim = [x for x in post[var].dims if x not in ("chain", "draw")][0]
            for k, lev in enumerate(post[var][dim].values):
                key = f"{var}__{k}"
                flat[key], names[key] = arr[..., k], f"{var}[{lev}]"
    sd_vars = {f: f"1|{f}_sigma" for f in factors}
    for f, v in sd_vars.items():
        flat[f"sd_{f}"] = np.asarray(post[v])
    flat["sd_residual"] = np.asarray(post["sigma"])
    div = np.asarray(idata.sample_stats["diverging"])
    flat_id = az.from_dict(posterior=flat, sample_stats={"diverging": div})
    flat_id.attrs["sampling_seconds"] = seconds
    method = (f"Bayesian linear mixed model, crossed random intercepts " + " + ".join(f"(1|{f})" for f in factors)
              + f" (Bambi {bmb.__version__} on PyMC, default priors; NUTS {s['chains']} x {s['draws']} after "
              f"{s['tune']} tuning, seed {s['seed']}; posterior mean, {int(conf_level * 100)}% HDI)")
    terms = dict(names)
    terms.update({f"sd_{f}": f"sd({f})" for f in factors})
    terms["sd_residual"] = "sd(residual)"
    tab = posterior_table(flat_id, terms, model=common["model"], method=method, n_obs=common["n_obs"],
                          hdi_prob=conf_level, warnings_=warns,
                          extra=dict(formula=formula, engine="bambi", group_levels=common["group_levels"]))
    tab["n_groups"] = common["n_groups"]
    sds = {f: float(tab.set_index("term").loc[f"sd({f})", "estimate"]) for f in factors}
    sds["residual"] = float(tab.set_index("term").loc["sd(residual)", "estimate"])
    extra = {r["term"]: r for r in _variance_rows({}, sds, levels)}
    from .degenerate import residual_degenerate

    outcome = fixed.split("~")[0].strip()
    why = residual_degenerate(sds["residual"] ** 2, float(np.var(d[outcome].to_numpy(float), ddof=1))) \
        if outcome in d.columns else ""
    rows = tab.to_dict("records")
    if why:
        for r in rows:
            r["degenerate"] = why
            r["warnings"] = "; ".join(filter(None, [str(r["warnings"]), f"degenerate fit: {why}"]))
    for r in rows:
        e = extra.get(r["term"])
        r["warnings"] = [w for w in str(r["warnings"]).split("; ") if w]
        if e is not None:
            r.update(re_share=e["re_share"], re_near_zero=e["re_near_zero"], n_groups=e["n_groups"])
            r["warnings"] += e["extra_warnings"]
        else:
            r.update(re_share=np.nan, re_near_zero=False)
    return rows
