"""Study 2: scraped faces by race x gender x hair, crowd-rated on perceived axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import Claim, SpecResult, Specification, result_row, row
from ..results import result_frame
from ..stats.groups import cell_summary, welch_ttest
from ..stats.mixed import mixedlm
from ..stats.anova import lm_anova
from ..stats.cr2 import cluster_table
from ..stats.regression import ols
from ..studies.grissom2024 import read_study2

LEVELS = {"race": ["Asian", "Black", "White"], "gender": ["men", "women"], "hair": ["long", "short"]}
RGB = "score ~ red_mean + green_mean + blue_mean"
ANOVA = "score ~ race * hair + luminance"


def measure(ctx):
    a = read_study2(ctx.raw("study2_images"), expected_rows=ctx.expected_rows("study2_images"),
                    on_invalid=ctx.on_invalid, table_prefix="study2")
    tables, issues = dict(a.tables), [a.issues]
    if ctx.config.has_role("study2_aggregated"):
        b = read_study2(ctx.raw("study2_aggregated"), expected_rows=ctx.expected_rows("study2_aggregated"),
                        on_invalid=ctx.on_invalid, table_prefix="study2agg")
        tables.update(b.tables)
        issues.append(b.issues)
    return tables, pd.concat(issues, ignore_index=True)


#: Men's race x hair models whose marginal means compare Black long-haired men with the other cells:
#: (model id, formula, covariance type, description).
BLACK_LONG_SPECS = [
    ("s2_black_long_emm", "score ~ C(race) * C(hair) + luminance", "nonrobust",
     "the paper's ANOVA model (race x hair + luminance), OLS"),
    ("s2_black_long_emm_hc3", "score ~ C(race) * C(hair) + luminance", "HC3", "the same model, HC3 SEs"),
    ("s2_black_long_emm_colour", "score ~ C(race) * C(hair) + luminance + red_mean + green_mean", "HC3",
     "adjusted for luminance and colour (red, green means), HC3 SEs"),
]


def cell_contrasts(data: pd.DataFrame, formula: str, cov_type: str, *, model: str,
                   target: tuple[str, str] = ("Black", "long"), factors: tuple[str, str] = ("race", "hair"),
                   conf_level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimated marginal means of the cells of two factors and the target cell's contrasts.

    The OLS model is fitted with statsmodels; each cell's marginal mean is the prediction with
    the numeric covariates at their sample means, and each contrast target - other cell is a
    linear hypothesis tested with ``results.t_test`` on the difference of the two cells' design
    rows (patsy builds the rows; no coefficient is handled by hand). Holm's adjustment runs over
    the target's contrasts with every other cell; the contrast with the *next-lowest* cell (the
    other cell of lowest marginal mean) is flagged ``next_lowest``: "the target cell is the
    lowest" holds at level 5% when that contrast's 95% interval lies below 0 (an
    intersection-union test: every contrast must be negative, and the closest one decides).

    Parameters
    ----------
    data : DataFrame
    formula : str
        Patsy formula with ``C(<factor>)`` terms and numeric covariates.
    cov_type : str
        ``"nonrobust"`` or a heteroskedasticity-robust type (``"HC3"``).
    model : str
    target : tuple
        Levels of ``factors`` of the target cell.
    factors : tuple of str
    conf_level : float

    Returns
    -------
    emm : DataFrame
        One row per cell (``term`` = ``"<level>:<level>"``), estimate and Wald interval.
    contrasts : DataFrame
        One row per other cell, ``term`` = ``"<target> - <cell>"``, with ``p_holm``,
        ``next_lowest``, ``multiple_testing``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"race": np.repeat(["A", "B"], 60), "hair": np.tile(["long", "short"], 60),
    ...                   "lum": rng.uniform(size=120)})
    >>> d["score"] = 10 - 5 * ((d.race == "B") & (d.hair == "long")) + d.lum + rng.normal(size=120)
    >>> emm, con = cell_contrasts(d, "score ~ C(race) * C(hair) + lum", "HC3", model="m", target=("B", "long"))
    >>> con.loc[con["next_lowest"], "term"].item(), bool(con.loc[con["next_lowest"], "conf_high"].item() < 0)
    ('B:long - A:long', True)
    """
    import patsy
    import statsmodels.formula.api as smf
    from statsmodels.stats.multitest import multipletests

    fit_ = smf.ols(formula, data=data, missing="drop").fit(cov_type=cov_type)
    d = data.loc[fit_.model.data.row_labels] if hasattr(fit_.model.data, "row_labels") else data
    covs = [c for c in d.columns if c not in factors and c in formula and pd.api.types.is_numeric_dtype(d[c])
            and c != formula.split("~")[0].strip()]
    present = d.groupby(list(factors), observed=True).size().rename("n").reset_index()
    grid = present.copy()
    for c in covs:
        grid[c] = float(d[c].mean())
    mdata = fit_.model.data
    design_info = getattr(mdata, "design_info", None) or mdata.model_spec
    X = np.asarray(patsy.build_design_matrices([design_info], grid, return_type="dataframe")[0])
    labels = [":".join(str(r[f]) for f in factors) for _, r in grid.iterrows()]
    at = ", ".join(f"{c.replace('_', ' ')} = {d[c].mean():.3g}" for c in covs)  # words, not column ids
    method = (f"OLS ({cov_type} covariance) estimated marginal means at {at or 'no covariates'}; "
              "statsmodels t_test of the design-row difference")
    common = dict(model=model, conf_level=conf_level, method=method, n_obs=int(fit_.nobs), converged=True,
                  warnings="", formula=formula, cov_type=cov_type)
    t = fit_.t_test(X)
    ci = np.asarray(t.conf_int(alpha=1 - conf_level))
    emm = result_frame([dict(term=lab, estimate=float(t.effect[i]), std_error=float(np.asarray(t.sd).ravel()[i]),
                             statistic=float(np.asarray(t.tvalue).ravel()[i]), p_value=np.nan, conf_low=ci[i, 0],
                             conf_high=ci[i, 1], n=int(grid["n"].iloc[i]), **common) for i, lab in enumerate(labels)])
    tgt = ":".join(target)
    if tgt not in labels:
        raise ValueError(f"{model}: target cell {tgt} has no data")
    k = labels.index(tgt)
    others = [i for i in range(len(labels)) if i != k]
    rows = []
    for i in others:
        tc = fit_.t_test((X[k] - X[i])[None, :])
        c = np.asarray(tc.conf_int(alpha=1 - conf_level))[0]
        rows.append(dict(term=f"{tgt} - {labels[i]}", estimate=float(np.ravel(tc.effect)[0]),
                         std_error=float(np.ravel(tc.sd)[0]), statistic=float(np.ravel(tc.tvalue)[0]),
                         p_value=float(np.ravel(tc.pvalue)[0]), conf_low=c[0], conf_high=c[1], other=labels[i],
                         other_emm=float(t.effect[i]), **common))
    con = result_frame(rows)
    con["p_holm"] = multipletests(con["p_value"], method="holm")[1]
    con["next_lowest"] = con["other_emm"] == con["other_emm"].min()
    con["multiple_testing"] = (f"Holm over the {len(con)} contrasts of {tgt} with the other cells; 'lowest' is an "
                               "intersection-union test decided by the next-lowest cell's unadjusted 95% interval")
    con["df_resid"] = float(fit_.df_resid)
    return emm, con


COLOURS = ("red_mean", "green_mean", "blue_mean")


def colour_margin(fit, data: pd.DataFrame, *, model: str, clusters=None, conf_level: float = 0.95) -> pd.DataFrame:
    """Standardised contrasts of the red slope against the green and blue slopes of an OLS fit.

    "Red is the strongest positive colour predictor" needs red's slope to exceed both others on a
    common scale: slopes are standardised (``b * sd(x) / sd(score)``, SDs of the fit's rows) and
    ``red - green`` and ``red - blue`` tested with the fit's covariance (or CR2 with t(G - 1) when
    ``clusters`` is given). The claim's quantity is the *margin*, the smaller of the two contrasts;
    its interval is ``[min(lows), min(highs)]``, whose lower bound excludes 0 exactly when both
    contrasts' intervals do (an intersection-union test, no multiplicity adjustment needed).

    Returns rows ``red - green``, ``red - blue`` and ``red margin`` (results schema).

    Examples
    --------
    >>> import statsmodels.formula.api as smf
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame(rng.normal(size=(200, 3)) * 30 + 120, columns=list(COLOURS))
    >>> d["score"] = 0.05 * d.red_mean - 0.01 * d.green_mean + rng.normal(size=200)
    >>> t = colour_margin(smf.ols(RGB, d).fit(), d, model="m")
    >>> t["term"].tolist(), bool(t.set_index("term").loc["red margin", "conf_low"] > 0)
    (['red - green', 'red - blue', 'red margin'], True)
    """
    from scipy import stats as st

    from ..stats.cr2 import contrast_cr2

    names = list(fit.model.exog_names)
    rows_used = fit.model.data.row_labels if getattr(fit.model.data, "row_labels", None) is not None else data.index
    d = data.loc[rows_used]
    sy = float(d["score"].std(ddof=1))
    f = {c: float(d[c].std(ddof=1)) / sy for c in COLOURS}
    L = np.zeros((2, len(names)))
    for k, other in enumerate(("green_mean", "blue_mean")):
        L[k, names.index("red_mean")] = f["red_mean"]
        L[k, names.index(other)] = -f[other]
    if clusters is not None:
        cl = pd.Series(np.asarray(clusters), index=data.index).loc[rows_used].to_numpy()
        est, se, df = contrast_cr2(fit, cl, L)
        q = st.t.ppf(0.5 + conf_level / 2, df)
        lo, hi = est - q * se, est + q * se
        p = 2 * st.t.sf(np.abs(est / se), df)
        method = f"standardised contrast of OLS slopes, CR2 cluster-robust SE, t({df})"
    else:
        t = fit.t_test(L)
        est, se = np.ravel(t.effect), np.ravel(t.sd)
        ci = np.asarray(t.conf_int(alpha=1 - conf_level))
        lo, hi, p = ci[:, 0], ci[:, 1], np.ravel(t.pvalue)
        method = f"standardised contrast of OLS slopes ({fit.cov_type} covariance)"
    rows = [dict(model=model, term=term, estimate=float(est[k]), std_error=float(se[k]), p_value=float(p[k]),
                 conf_low=float(lo[k]), conf_high=float(hi[k]), conf_level=conf_level, method=method,
                 n_obs=int(fit.nobs), converged=True, warnings="")
            for k, term in enumerate(("red - green", "red - blue"))]
    k = int(np.argmin(est))
    rows.append(dict(model=model, term="red margin", estimate=float(est.min()), std_error=float(se[k]),
                     conf_low=float(lo.min()), conf_high=float(hi.min()), conf_level=conf_level,
                     method=method + "; margin = the smaller contrast, interval [min of lows, min of highs] "
                                     "(intersection-union test)",
                     n_obs=int(fit.nobs), converged=True, warnings=""))
    return result_frame(rows)


def fit(ctx):
    im = ctx.measures["study2_images"]
    im = im[im["valid"]].copy()
    cells = cell_summary(im, "score", ["race", "gender", "hair"], LEVELS)
    ctx.results["study2_cell_means"] = cells

    rgb, rgb_fit = ols(RGB, im, model="rgb_ols")
    rgb_hc3, rgb_hc3_fit = ols(RGB, im, model="rgb_ols_hc3", cov_type="HC3")
    ctx.results["study2_rgb_ols"] = pd.concat([rgb, rgb_hc3], ignore_index=True)
    ctx.add_model("rgb_ols", "OLS of score on mean red, green, blue (Study 2 images)", RGB, rgb)
    ctx.add_model("rgb_ols_hc3", "As rgb_ols, HC3 robust standard errors", RGB, rgb_hc3)
    rgb_cl = cluster_table(rgb_fit, im["cell"].to_numpy(), model="rgb_ols_cluster", formula=RGB)
    ctx.results["study2_rgb_contrast"] = pd.concat([
        colour_margin(rgb_fit, im, model="rgb_ols"), colour_margin(rgb_hc3_fit, im, model="rgb_ols_hc3"),
        colour_margin(rgb_fit, im, model="rgb_ols_cluster", clusters=im["cell"].to_numpy())], ignore_index=True)
    rgb_mx, _ = mixedlm(RGB, im, "cell", model="rgb_mixed")
    ctx.results["study2_rgb_grouped"] = pd.concat([rgb_cl, rgb_mx], ignore_index=True)
    ctx.add_model("rgb_ols_cluster", "As rgb_ols, SEs clustered by the race x gender x hair cell", RGB, rgb_cl)
    ctx.add_model("rgb_mixed", "As rgb_ols, random intercept for the race x gender x hair cell (t, Satterthwaite df)",
                  RGB + " + (1 | cell)", rgb_mx, re_var=float(rgb_mx["re_var"].iloc[0]),
                  re_near_zero=bool(rgb_mx["re_near_zero"].iloc[0]))

    anovas = []
    for gender in ("men", "women"):
        sub = im[im["gender"] == gender]
        # R's lm() + anova(): sequential sums of squares with main effects before interactions
        # (patsy would put the race x hair interaction before luminance)
        _, a = lm_anova(ANOVA, sub, model=f"{gender}_anova", typ=(1,))
        anovas.append(a)
        ctx.add_model(f"{gender}_anova", f"Type I ANOVA of score, {gender} only", ANOVA, a)
    ctx.results["study2_anova"] = pd.concat(anovas, ignore_index=True)

    men = im[im["gender"] == "men"].copy()
    men["is_black_long"] = np.where((men["race"] == "Black") & (men["hair"] == "long"), "Black long", "other")
    bl = welch_ttest(men, "score", "is_black_long", "Black long", "other", model="s2_black_men_long_vs_other_men")
    men_cells = cells[cells["gender"] == "men"]
    lowest = men_cells.loc[men_cells["mean"].idxmin()]
    bl["lowest_cell"] = f"{lowest['race']}:{lowest['hair']}"
    ctx.results["study2_black_men_long_hair"] = bl
    emms, contrasts = [], []
    for mid, formula, cov, what in BLACK_LONG_SPECS:
        e, c = cell_contrasts(men, formula, cov, model=mid, target=("Black", "long"))
        e["description"] = c["description"] = what
        emms.append(e)
        contrasts.append(c)
        ctx.add_model(mid, f"Men: estimated marginal means of the race x hair cells, {what}", formula, c)
    ctx.results["study2_black_long_emm"] = pd.concat(emms, ignore_index=True)
    ctx.results["study2_black_long_contrasts"] = pd.concat(contrasts, ignore_index=True)
    ctx.add_model("s2_black_men_long_vs_other_men", "Welch t-test: Black men with long hair vs other men",
                  "score ~ (Black long vs other), men", bl)

    r = rgb.set_index("term")
    a_men = ctx.results["study2_anova"]
    a_men = a_men[a_men["model"] == "men_anova"].set_index("term")
    ctx.values["study2"] = dict(
        n_images=int(len(ctx.measures["study2_images"])), n_valid=int(len(im)),
        n_aggregated=int(len(ctx.measures["study2agg_images"])) if "study2agg_images" in ctx.measures else None,
        n_ratings=int(len(ctx.measures["study2_ratings"])),
        median_raters=float(im["skintone_n"].median()),
        gender_means={g: float(im.loc[im["gender"] == g, "score"].mean()) for g in LEVELS["gender"]},
        men_long_share=float((im.loc[im["gender"] == "men", "hair"] == "long").mean()),
        rgb={t.split("_")[0] if t != "Intercept" else "intercept":
             dict(b=float(r.loc[t, "estimate"]), low=float(r.loc[t, "conf_low"]), high=float(r.loc[t, "conf_high"]),
                  p=float(r.loc[t, "p_value"]))
             for t in r.index},
        rgb_r2=float(r["r_squared"].iloc[0]),
        men_anova={t.replace("C(", "").replace(")", "").replace(":", "_x_"): dict(
            F=float(a_men.loc[t, "statistic"]), p=float(a_men.loc[t, "p_value"]), df=float(a_men.loc[t, "df"]),
            eta_p=float(a_men.loc[t, "estimate"])) for t in a_men.index if t != "Residual"},
        men_anova_df_resid=float(a_men.loc["Residual", "df"]),
        black_long=dict(mean=float(bl.loc[0, "mean_a"]), other=float(bl.loc[0, "mean_b"]),
                        diff=float(bl.loc[0, "estimate"]), low=float(bl.loc[0, "conf_low"]),
                        high=float(bl.loc[0, "conf_high"]), lowest_cell=str(bl.loc[0, "lowest_cell"])),
    )


def _men_sd(results) -> float:
    """Pooled within-cell SD of the men's scores (the SESOI's scale: a standardised difference in score units)."""
    c = results.get("study2_cell_means")
    if c is None or not len(c):
        return 1.0
    m = c[(c["gender"] == "men") & (c["n"] > 1)]
    if not len(m):
        return 1.0
    return float(np.sqrt(((m["n"] - 1) * m["sd"] ** 2).sum() / (m["n"] - 1).sum()))


def _next_lowest(model: str, table: str = "study2_black_long_contrasts"):
    def lookup(results):
        df = results.get(table)
        if df is None or not len(df):
            return None
        hit = df[(df["model"] == model) & df["next_lowest"].astype(str).str.lower().eq("true")]
        if hit.empty:
            return None
        r = hit.iloc[0]
        return SpecResult(float(r["estimate"]), float(r["conf_low"]), float(r["conf_high"]), converged=True,
                          method=str(r["method"]), source=f"{table}: {model} {r['term']}",
                          sesoi_scale=_men_sd(results),
                          note=f"next-lowest cell {r['other']}; Holm p over {int((df['model'] == model).sum())} "
                               f"contrasts = {float(r['p_holm']):.3g}")
    return lookup


def _margin(model: str, table: str = "study2_rgb_contrast", **where):
    return result_row(table, model, "red margin", **where)


RED_ESTIMAND = ("margin of red's standardised slope over the larger of green's and blue's (SD of score per SD of "
                "the channel mean)")

CLAIMS = [
    Claim("S2-red", "Red is the strongest positive colour predictor of score.",
          "red +0.63, green -0.37, blue +0.22 (Bayesian RGB regression)", +1, [
              Specification("paper", "paper's Bayesian model: red slope",
                            result_row("models_rgb_bayes", "rgb_bayes", "red_mean"), role="paper",
                            estimand="red slope (score per unit channel mean)"),
              Specification("ols", "OLS: red margin", _margin("rgb_ols")),
              Specification("ols_hc3", "OLS, HC3: red margin", _margin("rgb_ols_hc3")),
              Specification("cluster", "OLS, CR2 by cell, t(G−1): red margin", _margin("rgb_ols_cluster")),
              Specification("balanced", "balanced 50-per-cell subset, OLS: red margin",
                            _margin("rgb_ols__balanced", "models_sensitivity", dataset="balanced"), required=False),
              Specification("mixed", "mixed model, cell intercept: red slope (within cells)",
                            result_row("study2_rgb_grouped", "rgb_mixed", "red_mean"),
                            estimand="within-cell red slope (score per unit channel mean)"),
          ], quantity="red margin over green and blue (standardised)", kind="replication",
          estimand=RED_ESTIMAND, printed={"estimate": "0.63"}),
    Claim("S2-black-men-long-hair", "Among men, Black men with long hair score lowest.",
          "Black long-haired men lowest among men's cells", -1, [
              Specification("paper", "paper's linear model (race × hair + luminance): vs next-lowest cell",
                            _next_lowest("s2_black_long_emm"), role="paper"),
              Specification("hc3", "same model, HC3: vs next-lowest cell", _next_lowest("s2_black_long_emm_hc3")),
              Specification("colour", "+ red and green means, HC3: vs next-lowest cell",
                            _next_lowest("s2_black_long_emm_colour")),
              Specification("authors_file", "authors' file: vs next-lowest cell",
                            _next_lowest("men_black_long_emm", "authors_black_long_contrasts"), required=False),
              Specification("vs_all_men", "vs all other men, Welch",
                            result_row("study2_black_men_long_hair", "s2_black_men_long_vs_other_men", "score"),
                            estimand="difference from all other men"),
          ], quantity="score difference (Black long minus cell)", kind="replication",
          estimand="difference between the Black long-haired men's cell and the next-lowest men's cell (score)"),
]


def _std_factor(term: str):
    """The standardised SESOI in score per rating point: raw OLS slope / standardised slope."""
    def scale(r, results) -> float:
        raw = row(results, "models_elicited", "elicited_ols", term)
        std = results.get("models_standardized")
        if raw is None or std is None or not len(std):
            return 1.0
        s = std[(std["model"] == "elicited_ols") & (std["term"] == term)]
        return float(raw["estimate"]) / float(s["std_estimate"].iloc[0]) if len(s) and float(s["std_estimate"].iloc[0]) else 1.0
    return scale


def _elicited_specs(term: str) -> list[Specification]:
    z = "z_" + term
    sc = _std_factor(term)
    return [
        Specification("paper", "paper's Bayesian model", result_row("models_elicited", "elicited_bayes", term,
                                                                     sesoi_scale=sc), role="paper"),
        Specification("centred", "Bayes, centred predictors",
                      result_row("models_elicited", "elicited_bayes_centred", term, sesoi_scale=sc)),
        Specification("ols_hc3", "OLS, HC3", result_row("models_elicited", "elicited_ols_hc3", term, sesoi_scale=sc)),
        Specification("cluster", "OLS, CR2 by cell, t(G−1)",
                      result_row("models_elicited", "elicited_ols_cluster", term, sesoi_scale=sc)),
        Specification("balanced", "balanced 50-per-cell subset, OLS",
                      result_row("models_sensitivity", "elicited_ols__balanced", term, dataset="balanced",
                                 sesoi_scale=sc), required=False),
        Specification("mixed", "mixed, standardised, + luminance, cell intercept",
                      result_row("models_elicited_mixed", "elicited_mixed", z),
                      estimand="within-cell standardised slope, adjusted for luminance"),
    ]


ELICITED_ESTIMAND = ("slope of score on the per-image mean rating, the other six rated axes held fixed (score per "
                     "rating point)")

CLAIMS += [
    Claim("S2-femininity", "Perceived femininity raises the score (Grissom et al.'s Figure 7 model).", "+2.4 [0.07, 4.2]", +1,
          _elicited_specs("femininity_mean"), quantity="slope (score per rating point)", kind="replication",
          estimand=ELICITED_ESTIMAND, printed={"estimate": "2.4", "conf_low": "0.07", "conf_high": "4.2"}),
    Claim("S2-hair", "Longer perceived hair lowers the score (Grissom et al.'s Figure 7 model).", "-2.6 [-3.4, -1.8]", -1,
          _elicited_specs("hair_length_mean"), quantity="slope (score per rating point)", kind="replication",
          estimand=ELICITED_ESTIMAND, printed={"estimate": "-2.6", "conf_low": "-3.4", "conf_high": "-1.8"}),
    Claim("S2-skintone", "Darker perceived skin tone lowers the score (Grissom et al.'s Figure 7 model).", "-1.9 [-3.8, 0.13]", -1,
          _elicited_specs("skintone_mean"), quantity="slope (score per rating point)", kind="replication",
          estimand=ELICITED_ESTIMAND, printed={"estimate": "-1.9", "conf_low": "-3.8", "conf_high": "0.13"}),
]


FIT_TABLES = ["study2_cell_means", "study2_rgb_ols", "study2_rgb_grouped", "study2_rgb_contrast", "study2_anova", "study2_black_men_long_hair",
              "study2_black_long_emm", "study2_black_long_contrasts"]


def steps(config, paths) -> list:
    """This module's steps: the Study 2 adapters, the fit (with the Study 2 claims).

    The adapter's image table is ``released/study2_images``; ``measures/study2_images`` is written
    by ``rescoring:import`` (scores read back from the score cache).
    """
    from ..stages import fit_step, measure_step

    return [
        measure_step("study2:adapt", measure, writes=["study2_images", "study2_race", "study2_ratings"],
                     optional_writes=["study2agg_images", "study2agg_race", "study2agg_ratings"],
                     rename={"study2_images": "released/study2_images"}),
        fit_step("study2", fit, measures=["study2_images", "study2_ratings"], optional_measures=["study2agg_images"],
                 writes=FIT_TABLES, claims=CLAIMS),
    ]
