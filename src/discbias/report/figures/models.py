"""Figures and publication tables of the Study 2 models (:mod:`discbias.analyses.models`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...analyses.models import AXES, AXIS_COLS, RGB
from ...stats.bayes import MAX_RHAT, MIN_ESS
from ..fmt import interval, number


_LABEL = {"masculinity": "masculinity", "femininity": "femininity", "skintone": "skin tone (darker)",
          "afrocentric": "Afrocentric", "eurocentric": "Eurocentric", "asiocentric": "Asiocentric",
          "hair_length": "hair length (longer)", "luminance": "luminance", "red": "red", "green": "green", "blue": "blue"}


def _short(term: str) -> str:
    return term.replace("_mean", "")


def figures(ctx):
    import matplotlib.pyplot as plt

    res = ctx.results
    if "models_standardized" not in res:
        return
    st = res["models_standardized"].copy()
    st["axis"] = st["term"].map(_short)
    el_models = ["elicited_bayes", "elicited_bayes_centred", "elicited_ols", "elicited_ols_cluster", "elicited_mixed"]
    rgb_models = ["rgb_ols", "rgb_bayes"]
    from ..style import OKABE_ITO, figsize

    colours = dict(zip(el_models + rgb_models, OKABE_ITO[:5] + [OKABE_ITO[2], OKABE_ITO[0]]))
    fig, axes = plt.subplots(1, 2, figsize=figsize(1.0, 0.7), gridspec_kw=dict(width_ratios=[2.2, 1]))
    for ax, models, order in ((axes[0], el_models, AXES + ["luminance"]), (axes[1], rgb_models, ["red", "green", "blue"])):
        present = [m for m in models if m in set(st["model"])]
        for k, m in enumerate(present):
            s = st[st["model"] == m].set_index("axis").reindex(order)
            y = np.arange(len(order)) + (k - (len(present) - 1) / 2) * 0.15
            ax.errorbar(s["std_estimate"], y, xerr=[s["std_estimate"] - s["std_low"], s["std_high"] - s["std_estimate"]],
                        fmt="o", ms=2.5, capsize=1.5, lw=0.8, color=colours[m], label=ctx.label(m))
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(range(len(order)), [_LABEL.get(o, o) for o in order])
        ax.invert_yaxis()
        ax.set_xlabel("SD of score per SD")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2 if len(present) > 2 else 1,
                  handlelength=1.2, columnspacing=0.8)
    axes[0].set_title("rated axes (aggregated set)")
    axes[1].set_title("colour (cleaned set)")
    ctx.save_figure(fig, "models_forest")

    # tree figure
    sp = res["models_tree_splits"]
    sp = sp[sp["model"] == "tree_depth5"]
    _tree_figure(ctx, sp)

    # tables
    el = res["models_elicited"]
    rows = []
    for term in ["Intercept"] + AXIS_COLS:
        r = {"Term": _short(term)}
        for m, lab in (("elicited_bayes", "Bayes, paper"), ("elicited_bayes_centred", "Bayes, centred"),
                       ("elicited_ols", "OLS"), ("elicited_ols_cluster", "OLS, CR2 by cell")):
            x = el[(el["model"] == m) & (el["term"] == term)]
            r[lab] = ((number(x['estimate'].iloc[0], 1) + " " + interval(x['conf_low'].iloc[0], x['conf_high'].iloc[0], 1, level=None))
                      if len(x) else "—")
        rows.append(r)
    ctx.save_table(pd.DataFrame(rows), "models_elicited",
                   caption="Grissom et al.’s Figure 7 predictors: estimate [95% interval] per model (Bayesian: posterior mean and HDI; OLS: t interval). Units: score per rating point; the four specifications are the Bayesian model with the paper\u2019s priors, the centred Bayesian model, OLS and OLS with cell-clustered SEs.",
                   label="tbl-models-elicited")

    bay = pd.concat([res["models_rgb_bayes"], el[el["model"].str.startswith("elicited_bayes")]])
    t = pd.DataFrame({"Model": bay["model"], "Term": bay["term"].map(_short), "Mean": bay["estimate"], "SD": bay["std_error"],
                      "HDI low": bay["conf_low"], "HDI high": bay["conf_high"], "R-hat": bay["r_hat"],
                      "ESS bulk": bay["ess_bulk"].round(0), "ESS tail": bay["ess_tail"].round(0),
                      "Divergences": bay["divergences"].astype(int),
                      "Converged": bay["converged"].astype(str).str.lower().eq("true").map({True: "yes", False: "no"})})
    ctx.save_table(t, "models_bayes", digits={"Mean": 3, "SD": 3, "HDI low": 3, "HDI high": 3, "R-hat": 3,
                                               "ESS bulk": 0, "ESS tail": 0, "Divergences": 0},
                   caption="Bayesian fits: posterior mean, SD, 95% HDI, R-hat, bulk and tail effective sample sizes, divergent transitions and whether the fit meets the convergence criteria "
                           f"(R-hat ≤ {MAX_RHAT}, both ESS ≥ {MIN_ESS}, no divergences).",
                   label="tbl-models-bayes")

    mx = res["models_elicited_mixed"]
    t = pd.DataFrame({"Model": mx["model"], "Term": mx["term"].map(lambda s: _short(s[2:]) if s.startswith("z_") else s),
                      "Estimate": mx["estimate"], "SE": mx["std_error"], "95% CI low": mx["conf_low"],
                      "95% CI high": mx["conf_high"], "Test": mx["test"].fillna("z (cluster-robust SE)"),
                      "df": mx["df"], "p": mx["p_value"], "p (Holm)": mx["p_holm"]})
    ctx.save_table(t, "models_elicited_mixed", digits={"Estimate": 3, "SE": 3, "95% CI low": 3, "95% CI high": 3,
                                                       "df": 1, "p": 4, "p (Holm)": 4},
                   caption="Standardized fixed effects: MixedLM (random cell intercept, REML; t tests and intervals on "
                           "Satterthwaite degrees of freedom) and OLS with CR2 cell-clustered SEs (t with G − 1 df, G cells).",
                   label="tbl-models-mixed")

    rgh = res["models_race_gender_hair"]
    rgh = rgh[rgh["model"] == "race_gender_hair_mixed"]
    t = pd.DataFrame({"Term": rgh["term"], "Estimate": rgh["estimate"], "SE": rgh["std_error"],
                      "95% CI low": rgh["conf_low"], "95% CI high": rgh["conf_high"], "Test": rgh["test"],
                      "df": rgh["df"], "p": rgh["p_value"]})
    ctx.save_table(t, "models_rgh_mixed", digits={"Estimate": 2, "SE": 2, "95% CI low": 2, "95% CI high": 2, "df": 1,
                                                  "p": 4},
                   caption="Race \u00d7 gender \u00d7 hair mixed model: fixed effects (REML; t tests and intervals on "
                           "Satterthwaite degrees of freedom, as lmerTest).",
                   label="tbl-models-rgh")

    emm = res["models_cell_emm"]
    wide = []
    for (race, gender, hp), g in emm.groupby(["race", "gender", "hair_prompt"], sort=True):
        r = {"Race": race, "Gender": gender, "Hair prompt": hp, "n": int(g["n"].iloc[0])}
        for m, lab in (("race_gender_hair_ols", "Full interaction OLS"), ("race_gender_hair_mixed", "Mixed (partial pooling)")):
            x = g[g["model"] == m]
            r[lab] = ((number(x['estimate'].iloc[0], 1) + " " + interval(x['conf_low'].iloc[0], x['conf_high'].iloc[0], 1, level=None))
                      if len(x) and np.isfinite(x["estimate"].iloc[0]) else "—")
        wide.append(r)
    ctx.save_table(pd.DataFrame(wide), "models_cell_emm",
                   caption="Estimated mean score per design cell [95% CI] at mean luminance and red (full cross, n per cell). Mixed: fixed part plus the cell's predicted random intercept (approximate interval).",
                   label="tbl-models-emm")

    pc = res["models_partial_corr"]
    t = pd.DataFrame({"Controls": pc["covariates"].map(
        lambda c: ", ".join(ctx.label(x.strip()) for x in str(c).split(","))), "Axis": pc["term"].map(_short), "n": pc["n_obs"], "Partial r": pc["estimate"],
                      "95% CI low": pc["conf_low"], "95% CI high": pc["conf_high"], "p": pc["p_value"], "p (Holm)": pc["p_holm"]})
    ctx.save_table(t, "models_partial_corr", digits={"Partial r": 3, "95% CI low": 3, "95% CI high": 3, "p": 4, "p (Holm)": 4},
                   caption="Partial correlations of score with each rated axis, controlling for luminance or for red, green and blue; p-values Holm-adjusted within each set of seven.",
                   label="tbl-models-pcor")

    rel = res["models_reliability"]
    vc = res["models_variance_components"]
    rows = []
    for it in AXES:
        r = {"Item": it}
        for coef, lab in (("Krippendorff alpha (interval)", "alpha"), ("ICC(2,k)", "ICC(2,k)"), ("ICC(1,k)", "ICC(1,k)")):
            x = rel[(rel["item"] == it) & (rel["coefficient"] == coef)]
            r[lab] = ((number(x['estimate'].iloc[0], 2) + " " + interval(x['conf_low'].iloc[0], x['conf_high'].iloc[0], 2, level=None))
                      if len(x) and np.isfinite(x["estimate"].iloc[0]) else "—")
        for share, lab in (("share(cell)", "cell share"), ("share(image)", "image share"), ("share(residual)", "residual share")):
            x = vc[(vc["item"] == it) & (vc["term"] == share)]
            r[lab] = (number(x['estimate'].iloc[0], 2) + " " + interval(x['conf_low'].iloc[0], x['conf_high'].iloc[0], 2, level=None))
        rows.append(r)
    ctx.save_table(pd.DataFrame(rows), "models_reliability",
                   caption="Inter-rater reliability [95% CI] and variance shares [95% CI] of each rating item (cleaned set).",
                   label="tbl-models-reliability")

    tr = res["models_tree_splits"]
    tr = tr[(tr["model"] == "tree_depth5") & (tr["depth"] <= 2)]
    t = pd.DataFrame({"Depth": tr["depth"], "Feature": tr["feature"].map(_short), "Threshold": tr["threshold"],
                      "n": tr["n_samples"], "Mean left": tr["left_value"], "Mean right": tr["right_value"]})
    ctx.save_table(t, "models_tree_splits", digits={"Depth": 0, "Threshold": 2, "Mean left": 1, "Mean right": 1},
                   caption="Splits of the depth-5 tree up to depth 2.",
                   label="tbl-models-tree")

    se = res["models_sensitivity"]
    keep = se["term"].isin(RGB + AXIS_COLS + [f"z_{c}" for c in AXIS_COLS])
    se = se[keep]
    t = pd.DataFrame({"Model": se["model"].str.split("__").str[0], "Data": se["dataset"],
                      "Term": se["term"].map(lambda s: _short(s[2:]) if s.startswith("z_") else _short(s)),
                      "Estimate": se["estimate"], "95% CI low": se["conf_low"], "95% CI high": se["conf_high"],
                      "n": se["n_obs"]})
    balanced = "balanced; " if ctx.values["models"].get("balanced_configured") else ""
    ctx.save_table(t, "models_sensitivity", digits={"Estimate": 3, "95% CI low": 3, "95% CI high": 3},
                   caption="Sensitivity of the colour and elicited-axes slopes to the data set (cleaned; "
                           f"{balanced}without exclusions; images matching the prompt only).",
                   label="tbl-models-sensitivity")
    _bayes_check_outputs(ctx)


def _bayes_check_outputs(ctx):
    """Prior- and posterior-predictive checks (figure and table) and the heavy-tailed nu summary (table)."""
    import matplotlib.pyplot as plt

    from ..style import figsize

    res = ctx.results
    dens, chk = res.get("models_ppc_density"), res.get("models_ppc")
    if dens is None or not len(dens) or chk is None or not len(chk):
        return
    panels = [(m, k) for m in ("rgb_bayes", "elicited_bayes", "elicited_bayes_centred") for k in ("prior", "posterior")
              if ((dens["model"] == m) & (dens["kind"] == k)).any()]
    fig, axes = plt.subplots(1, len(panels), figsize=figsize(1.0, 0.3), squeeze=False)
    names = {"rgb_bayes": "RGB model", "elicited_bayes": "Fig. 7, paper's",
             "elicited_bayes_centred": "Fig. 7, centred"}
    for ax, (m, k) in zip(axes[0], panels):
        g = dens[(dens["model"] == m) & (dens["kind"] == k)].sort_values("x")
        # pointwise quantiles of the replications' densities (estimates with a Monte Carlo error,
        # checked by `discbias verify`), not a few random replications
        ax.fill_between(g["x"], g["rep_low"], g["rep_high"], color="#56B4E9", alpha=0.3, lw=0)
        ax.fill_between(g["x"], g["rep_q25"], g["rep_q75"], color="#56B4E9", alpha=0.5, lw=0)
        ax.plot(g["x"], g["rep_median"], color="#0072B2", lw=0.8)
        ax.plot(g["x"], g["observed"], color="black", lw=1.2)
        ax.set_title(f"{names.get(m, m)}:\n{k}", fontsize=7)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
        ax.set_xlabel("score", fontsize=7)
    ctx.save_figure(fig, "models_ppc")
    t = pd.DataFrame({"Model": chk["model"], "Check": chk["kind"], "Statistic": chk["statistic"],
                      "Observed": chk["observed"], "Replicated median": chk["rep_median"],
                      "95% of replications, low": chk["rep_low"], "high": chk["rep_high"],
                      "P(replicated ≥ observed)": chk["p_predictive"]})
    ctx.save_table(t, "models_ppc", digits={"Observed": 2, "Replicated median": 2, "95% of replications, low": 2,
                                            "high": 2, "P(replicated ≥ observed)": 3},
                   caption="Prior- and posterior-predictive checks: summary statistics of the observed scores against "
                           "those of data sets replicated from the prior or the posterior; a share near 0 or 1 flags a "
                           "statistic the model does not reproduce.",
                   label="tbl-models-ppc")
    ps = res.get("models_psens")
    if ps is not None and len(ps) and "prior_sensitivity" in ps:
        t = pd.DataFrame({"Model": ps["model"], "Parameter": ps["term"], "Prior": ps["prior_sensitivity"],
                          "Likelihood": ps["likelihood_sensitivity"], "Diagnosis": ps["diagnosis"]})
        ctx.save_table(t, "models_psens", digits=3,
                       caption="Power-scaling sensitivity of Grissom et al.'s Figure 7 model (ArviZ psens): how far "
                               "each posterior moves when the prior or the likelihood is raised to a power near 1 "
                               "(cumulative Jensen-Shannon distance); 0.05 or more is flagged.",
                       label="tbl-models-psens")
    tails = res.get("models_bayes_tails")
    if tails is not None and len(tails):
        t = pd.DataFrame({"Model": tails["model"], "Parameter": tails["term"], "Median": tails["median"],
                          "2.5%": tails["q025"], "25%": tails["q25"], "75%": tails["q75"], "97.5%": tails["q975"]})
        ctx.save_table(t, "models_bayes_tails", digits=2,
                       caption="Heavy-tailed posterior (Student-t degrees of freedom nu, half-Cauchy prior): median "
                               "and quantiles, which its tail does not dominate as it does the mean and SD.",
                       label="tbl-models-tails")


def _tree_figure(ctx, sp: pd.DataFrame, max_depth: int = 3):
    import matplotlib.pyplot as plt

    sp = sp[sp["depth"] < max_depth]
    from ..style import figsize

    fig, ax = plt.subplots(figsize=figsize(1.0, 0.5))
    pos = {}
    # lay out nodes by depth, in node order
    for depth, g in sp.groupby("depth"):
        if depth > 0:  # order children under their parents
            g = g.assign(_px=g["parent"].map(lambda p: pos.get(p, (0, 0))[0])).sort_values(["_px", "node"])
        xs = np.linspace(0, 1, len(g) + 2)[1:-1]
        for x, (_, r) in zip(xs, g.iterrows()):
            pos[r["node"]] = (x, -depth)
            ax.text(x, -depth, f"{_short(r['feature'])}\n\u2264 {number(r['threshold'], 2)}\nn = {r['n_samples']}, mean {r['value']:.0f}",
                    ha="center", va="center", fontsize=7, bbox=dict(boxstyle="round", fc="#eef", ec="#88a"))
    for _, r in sp.iterrows():
        if r["parent"] in pos:
            (x0, y0), (x1, y1) = pos[r["parent"]], pos[r["node"]]
            ax.plot([x0, x1], [y0 - 0.22, y1 + 0.22], color="#88a", lw=0.8, zorder=0)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-max_depth + 0.4, 0.5)
    ax.axis("off")
    ax.set_title(f"Regression tree (depth 5), first {max_depth} levels")
    ctx.save_figure(fig, "models_tree")



def steps(config, paths) -> list:
    """The figure step of :mod:`discbias.analyses.models`: what :func:`figures` reads."""
    from ...analyses import models as A
    from ...stages import figure_step

    return [figure_step("models:figures", figures, measures=A.MEASURES, optional_measures=A.OPTIONAL_MEASURES, optional_results=A.FIT_TABLES + ["study2_rgb_ols"])]
