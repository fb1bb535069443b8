"""Study 2: scraped faces by race x gender x hair, crowd-rated on perceived axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import Claim, Estimate, row, sign_rule
from ..results import result_frame
from ..stats.groups import cell_summary, welch_ttest
from ..stats.regression import anova_type1, ols
from ..studies.grissom2024 import read_study2

LEVELS = {"race": ["Asian", "Black", "White"], "gender": ["men", "women"], "hair": ["long", "short"]}
RGB = "score ~ red_mean + green_mean + blue_mean"
ANOVA = "score ~ C(race) * C(hair) + luminance"


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


def fit(ctx):
    im = ctx.measures["study2_images"]
    im = im[im["valid"]].copy()
    cells = cell_summary(im, "score", ["race", "gender", "hair"], LEVELS)
    ctx.results["study2_cell_means"] = cells

    rgb, _ = ols(RGB, im, model="rgb_ols")
    rgb_hc3, _ = ols(RGB, im, model="rgb_ols_hc3", cov_type="HC3")
    ctx.results["study2_rgb_ols"] = pd.concat([rgb, rgb_hc3], ignore_index=True)
    ctx.add_model("rgb_ols", "OLS of score on mean red, green, blue (Study 2 images)", RGB, rgb)
    ctx.add_model("rgb_ols_hc3", "As rgb_ols, HC3 robust standard errors", RGB, rgb_hc3)

    anovas = []
    for gender in ("men", "women"):
        sub = im[im["gender"] == gender]
        _, fit_ = ols(ANOVA, sub, model=f"{gender}_anova")
        a = anova_type1(fit_, model=f"{gender}_anova")
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


def figures(ctx):
    import matplotlib.pyplot as plt

    cells = ctx.results["study2_cell_means"]
    from ..report.style import colours as palette, figsize

    colours = palette(LEVELS["race"])
    fig, axes = plt.subplots(1, 2, figsize=figsize(0.9, 0.5), sharey=True)
    for ax, gender in zip(axes, LEVELS["gender"]):
        for k, race in enumerate(LEVELS["race"]):
            s = cells[(cells["gender"] == gender) & (cells["race"] == race)].set_index("hair").reindex(LEVELS["hair"])
            x = np.arange(len(LEVELS["hair"])) + (k - 1) * 0.12
            ax.errorbar(x, s["mean"], yerr=[s["mean"] - s["conf_low"], s["conf_high"] - s["mean"]], fmt="o-",
                        color=colours[race], label=race, capsize=2, ms=3)
            for xi, (m, n) in zip(x, zip(s["mean"], s["n"])):
                if np.isfinite(m):
                    ax.annotate(f"{n}", (xi, m), textcoords="offset points", xytext=(4, -9), fontsize=7,
                                color=colours[race])
        ax.set_xticks(range(len(LEVELS["hair"])),
                      ["long", "short" if gender == "men" else "short (buzz cut)"])
        ax.set_title(gender)
    axes[0].set_ylabel("mean score (95% CI); labels: n")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", title="race")
    ctx.save_figure(fig, "s2_cell_means")

    cm = cells.rename(columns={"race": "Race", "gender": "Gender", "hair": "Hair", "n": "n", "mean": "Mean",
                               "sd": "SD", "conf_low": "95% CI low", "conf_high": "95% CI high"})
    ctx.save_table(cm[["Race", "Gender", "Hair", "n", "Mean", "SD", "95% CI low", "95% CI high"]], "s2_cell_means",
                   digits={"Mean": 1, "SD": 1, "95% CI low": 1, "95% CI high": 1},
                   caption="Score by race x gender x hair (full cross; for women \"short\" is the buzz-cut prompt).",
                   label="tbl-s2-cells")
    rgb = ctx.results["study2_rgb_ols"]
    t = pd.DataFrame({"Model": rgb["model"], "Term": rgb["term"], "Estimate": rgb["estimate"], "SE": rgb["std_error"],
                      "95% CI low": rgb["conf_low"], "95% CI high": rgb["conf_high"], "p": rgb["p_value"],
                      "n": rgb["n_obs"]})
    ctx.save_table(t, "s2_rgb_ols", digits={"Estimate": 3, "SE": 3, "95% CI low": 3, "95% CI high": 3, "p": 4},
                   caption="OLS of score on mean red, green and blue (classical and HC3 standard errors).",
                   label="tbl-s2-rgb")
    an = ctx.results["study2_anova"]
    t = pd.DataFrame({"Model": an["model"], "Term": an["term"], "df": an["df"], "Sum sq": an["sum_sq"], "F": an["statistic"],
                      "p": an["p_value"], "Partial eta sq": an["estimate"]})
    ctx.save_table(t, "s2_anova", digits={"df": 0, "Sum sq": 0, "F": 2, "p": 4, "Partial eta sq": 3},
                   caption="Type I ANOVA of score on race x hair + luminance, for men and for women separately.",
                   label="tbl-s2-anova")


def _claim_red(results):
    """S2-red from the paper's Bayesian RGB model (``rgb_bayes``); OLS while it is not fitted."""
    bayes = results.get("models_rgb_bayes")
    if bayes is not None and len(bayes):
        table, model, what = "models_rgb_bayes", "rgb_bayes", "posterior mean, 95% HDI"
        df = bayes
    else:
        df = results.get("study2_rgb_ols")
        if df is None:
            return None
        table, model, what = "study2_rgb_ols", "rgb_ols", "OLS, 95% CI"
    r = row(results, table, model, "red_mean")
    if r is None:
        return None
    slopes = df[(df["model"] == model) & df["term"].isin(["red_mean", "green_mean", "blue_mean"])].set_index("term")["estimate"]
    verdict = sign_rule(r["estimate"], r["conf_low"], r["conf_high"], +1)
    if verdict == "reproduced" and slopes.idxmax() != "red_mean":
        verdict = "not reproduced"
    others = ", ".join(f"{t.split('_')[0]} {v:+.2f}" for t, v in slopes.items() if t != "red_mean")
    ols_r = row(results, "study2_rgb_ols", "rgb_ols", "red_mean")
    also = "" if ols_r is None or model == "rgb_ols" else f"; OLS red {ols_r['estimate']:+.2f} [{ols_r['conf_low']:.2f}, {ols_r['conf_high']:.2f}]"
    return Estimate(r["estimate"], r["conf_low"], r["conf_high"], verdict,
                    f"{table}: {model} red_mean ({what}, per unit of the 0-255 channel mean; {others}){also}")


def _elicited_claim(term: str, sign: int, *, mean_only: bool = False):
    """A Figure 7 claim from ``elicited_bayes`` (paper's specification), checked against the centred
    specification and OLS: a verdict of the paper's specification that the centred one does not
    share becomes ``inconclusive`` (specification-dependent)."""

    def verdict_of(r):
        if mean_only:
            return "reproduced" if sign * r["estimate"] > 0 else "not reproduced"
        return sign_rule(r["estimate"], r["conf_low"], r["conf_high"], sign)

    def evaluate(results):
        r = row(results, "models_elicited", "elicited_bayes", term)
        if r is None:
            return None
        verdict = verdict_of(r)
        notes = []
        for mid, lab in (("elicited_bayes_centred", "centred spec"), ("elicited_ols", "OLS")):
            o = row(results, "models_elicited", mid, term)
            if o is None:
                continue
            v = verdict_of(o)
            notes.append(f"{lab}: {o['estimate']:+.2f} [{o['conf_low']:.2f}, {o['conf_high']:.2f}] ({v})")
            if mid == "elicited_bayes_centred" and verdict == "reproduced" and v != "reproduced":
                verdict = "inconclusive"
                notes.append("paper's verdict does not survive centring: specification-dependent")
        div = r.get("divergences", 0)
        if div and div == div and int(div) > 0:
            notes.append(f"{int(div)} divergent transitions")
        return Estimate(r["estimate"], r["conf_low"], r["conf_high"], verdict,
                        f"models_elicited: elicited_bayes {term} (posterior mean, 95% HDI); " + "; ".join(notes))

    return evaluate


def _claim_black_long(results):
    r = row(results, "study2_black_men_long_hair", "s2_black_men_long_vs_other_men", "score")
    if r is None:
        return None
    verdict = sign_rule(r["estimate"], r["conf_low"], r["conf_high"], -1)
    if verdict == "reproduced" and r["lowest_cell"] != "Black:long":
        verdict = "inconclusive"
    return Estimate(r["estimate"], r["conf_low"], r["conf_high"], verdict,
                    "study2_black_men_long_hair: Black long-haired men - other men, mean score")


CLAIMS = [
    Claim("S2-red", "Red is the strongest positive colour predictor of score.",
          "red +0.63, green -0.37, blue +0.22 (Bayesian RGB regression)",
          "red slope's 95% HDI above 0 and red the largest of the three slopes in the paper's Bayesian RGB model "
          "(rgb_bayes; OLS if it is not fitted)",
          _claim_red),
    Claim("S2-black-men-long-hair", "Among men, Black men with long hair score lowest.",
          "Black long-haired men lowest among men's cells",
          "Black:long is the lowest men's cell and the Welch 95% CI of its difference to other men lies below 0",
          _claim_black_long),
    Claim("S2-femininity", "Perceived femininity raises the score (Grissom et al.'s Figure 7 model).", "+2.4 [0.07, 4.2]",
          "95% HDI above 0 in the paper's specification (elicited_bayes); inconclusive if the centred "
          "specification's HDI does not also lie above 0", _elicited_claim("femininity_mean", +1)),
    Claim("S2-hair", "Longer perceived hair lowers the score (Grissom et al.'s Figure 7 model).", "-2.6 [-3.4, -1.8]",
          "95% HDI below 0 in the paper's specification (elicited_bayes); inconclusive if the centred "
          "specification's HDI does not also lie below 0", _elicited_claim("hair_length_mean", -1)),
    Claim("S2-skintone", "Darker perceived skin tone lowers the score (Grissom et al.'s Figure 7 model).", "-1.9 [-3.8, 0.13]",
          "posterior mean below 0 in the paper's specification (the paper's own HDI includes 0); inconclusive "
          "if the centred specification's mean is not also below 0", _elicited_claim("skintone_mean", -1, mean_only=True)),
]
