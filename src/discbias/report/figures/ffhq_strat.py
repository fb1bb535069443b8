"""Figures and publication tables of Study 1 extended (:mod:`discbias.analyses.ffhq_strat`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..fmt import integer, number
from ...analyses.ffhq_strat import (ATTRIBUTES, BINS, BLOCKS, FACE_TERMS, NO_FACE, QUALITY_MEASURES,
                                         QUALITY_TERMS, QUANTILES, _pretty)


#: How the per-attribute table is split in the paper.
GROUP_TABLE_PARTS = {"a": ["gender", "age_band", "glasses"],
                     "b": ["face_status", "smiling", "facial_hair", "makeup", "headwear_g"],
                     "c": ["hair_colour", "blur_level", "exposure_level", "noise_level"]}

#: Label and caption of each part of the group table (GROUP_TABLE_PARTS).
GROUP_TABLE_CAPTIONS = {
    "a": ("tbl-s1x-groups", 'Score by gender, age band and glasses, each alone (all levels; "no face": no face detected).'),
    "b": ("tbl-s1x-groups-b", "Score by faces found, smile, facial hair, makeup and headwear, each alone (smile, facial "
                              "hair, headwear: Face API value \u2265 0.5; makeup: eye or lip)."),
    "c": ("tbl-s1x-groups-c", 'Score by top hair colour ("none given": bald or hair invisible) and the Face API\'s blur, '
                              "exposure and noise levels."),
}
#: Label and caption of the gender x age band x glasses cell tables, by gender.
CELL_TABLE_CAPTIONS = {
    "female": ("tbl-s1x-cells", "Mean score (n) in every cell of age band \u00d7 glasses for faces labelled female; "
                                '"\u2014" marks an empty cell.'),
    "male": ("tbl-s1x-cells-male", "As @tbl-s1x-cells, faces labelled male."),
}



_BIN_ORDER = BINS


def figures(ctx):
    import matplotlib.pyplot as plt

    if not ctx.values.get("ffhq_strat", {}).get("available", False):
        return
    res = ctx.results
    # Quality curves.
    bins, curves, tests = res["ffhq_strat_quality_bins"], res["ffhq_strat_quality_curves"], res["ffhq_strat_quality_tests"]
    from ..style import OKABE_ITO, figsize, sequential

    fig, axes = plt.subplots(2, 2, figsize=figsize(1.0, 0.72), sharey=True)
    for ax, (x, label) in zip(axes.ravel(), QUALITY_MEASURES.items()):
        b = bins[bins["measure"] == x]
        c = curves[curves["measure"] == x]
        t = tests[tests["measure"] == x].iloc[0]
        ax.fill_between(c["x"], c["conf_low"], c["conf_high"], color=OKABE_ITO[3], alpha=0.25, lw=0)
        ax.plot(c["x"], c["fit"], color=OKABE_ITO[3], label="cubic B-spline (95% HC3 band)")
        ax.errorbar(b["x_mean"], b["mean"], yerr=[b["mean"] - b["conf_low"], b["conf_high"] - b["mean"]], fmt="o",
                    ms=2.5, color=OKABE_ITO[4], capsize=1.5, lw=0.8, label="quantile-bin means (95% CI)")
        ax.set_xlabel(label)
        ax.set_title(f"R² = {t['estimate']:.3f}, n = {int(t['n_obs']):,}")
    axes[0, 0].set_ylabel("released score")
    axes[1, 0].set_ylabel("released score")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    ctx.save_figure(fig, "s1x_quality_curves")

    # Shares of groups across score bins. The bottom and top 1% are nested in D1 and D10, so they are
    # drawn apart from the decile line, unconnected, beyond a gap; age bands are ordered (a
    # sequential palette over its full range), and every level has its own marker as well as its
    # colour, so neighbouring levels stay distinguishable in print and for colour-blind readers.
    shares = res["ffhq_strat_bin_shares"]
    deciles = [b for b in _BIN_ORDER if b.startswith("D")]
    tails = [b for b in _BIN_ORDER if not b.startswith("D")]
    xpos = {b: float(i + 1.6) for i, b in enumerate(deciles)}
    xpos.update({tails[0]: 0.0, tails[-1]: len(deciles) + 2.2} if len(tails) == 2 else {})
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p"]
    # legends get their own row under the panels, so they neither cover data nor run off the figure
    fig, grid = plt.subplots(2, 3, figsize=figsize(1.0, 0.7), gridspec_kw=dict(height_ratios=[2.6, 1]))
    axes, legend_axes = grid[0], grid[1]
    for ax, lax, gr in zip(axes, legend_axes, ("gender", "age_band", "glasses")):
        s = shares[shares["grouping"] == gr]
        levels = [lev for lev in dict.fromkeys(s["level"]) if s.loc[s["level"] == lev, "overall_n"].iloc[0] > 0]
        ordered = [lev for lev in levels if lev != NO_FACE]
        cols = dict(zip(ordered, sequential(len(ordered), lo=0.0, hi=0.92) if gr == "age_band" else OKABE_ITO))
        cols[NO_FACE] = "0.45"
        for k, lev in enumerate(levels):
            v = s[s["level"] == lev].set_index("bin").reindex(_BIN_ORDER)
            style = dict(marker=markers[k % len(markers)], ms=2.6, capsize=1, color=cols[lev], elinewidth=0.6)
            d = v.loc[deciles]
            ax.errorbar([xpos[b] for b in deciles], d["share"], yerr=[d["share"] - d["share_low"], d["share_high"] - d["share"]],
                        lw=0.8, label=f"{ctx.label(lev)} ({v['overall_share'].iloc[0]:.1%})", **style)
            tl = v.loc[[b for b in tails if b in xpos]]
            ax.errorbar([xpos[b] for b in tl.index], tl["share"], yerr=[tl["share"] - tl["share_low"], tl["share_high"] - tl["share"]],
                        ls="none", **style)
        for b in tails:
            if b in xpos:
                ax.axvline((xpos[b] + xpos[deciles[0 if xpos[b] == 0 else -1]]) / 2, color="0.75", lw=0.5, ls=":")
        ax.set_xticks([xpos[b] for b in _BIN_ORDER if b in xpos],
                      [b.replace("bottom ", "bot. ") for b in _BIN_ORDER if b in xpos], rotation=90)
        ax.set_title(ATTRIBUTES[gr])
        lax.axis("off")
        lax.legend(*ax.get_legend_handles_labels(), loc="upper center", ncols=2 if len(levels) > 5 else 1,
                   handlelength=1.6, columnspacing=0.6, borderaxespad=0)
    axes[0].set_ylabel("share of the bin's images")
    ctx.save_figure(fig, "s1x_bin_shares")

    # Forest plot: OLS (HC3) and MixedLM standardized effects; quantile coefficients.
    coefs = res["ffhq_strat_coefficients"]
    ols_c = coefs[coefs["model"] == "s1x_ols_full"].reset_index(drop=True)
    terms = sorted(ols_c["term"], key=lambda t: (not _is_quality(t), _order(t)))
    labels = [_pretty(t) for t in terms]
    y = np.arange(len(terms))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(figsize()[0], 0.13 * len(terms) + 1.3), sharey=True)
    for k, (mod, colr, lab) in enumerate((("s1x_ols_full", OKABE_ITO[3], "OLS (HC3)"),
                                          ("s1x_mixed", OKABE_ITO[4], "mixed model (cell intercepts)"))):
        c = coefs[coefs["model"] == mod].set_index("term").reindex(terms)
        axes[0].errorbar(c["estimate"], y + (0.15 if k == 0 else -0.15),
                         xerr=[c["estimate"] - c["conf_low"], c["conf_high"] - c["estimate"]],
                         fmt="o", ms=2, lw=0.8, color=colr, capsize=1, label=lab)
    axes[0].axvline(0, color="k", lw=0.5)
    axes[0].set_yticks(y, labels)
    axes[0].set_xlabel("effect on score (SD)")
    qcols = sequential(len(QUANTILES))
    for k, q in enumerate(QUANTILES):
        c = coefs[coefs["model"] == f"s1x_quantile_{int(round(q * 100)):02d}"].set_index("term").reindex(terms)
        axes[1].errorbar(c["estimate"], y + (k - 1) * 0.2, xerr=[c["estimate"] - c["conf_low"], c["conf_high"] - c["estimate"]],
                         fmt="o", ms=2, lw=0.8, capsize=1, label=f"q = {q:g}", color=qcols[k])
    axes[1].axvline(0, color="k", lw=0.5)
    axes[1].set_xlabel("quantile coefficient (SD of score)")
    h0, l0 = axes[0].get_legend_handles_labels()
    h1, l1 = axes[1].get_legend_handles_labels()
    fig.legend(h0 + h1, l0 + l1, loc="outside lower center", ncols=5, handlelength=1.2, columnspacing=1.0)
    for ax in axes:
        nq = sum(1 for t in terms if _is_quality(t))
        ax.axhspan(y[nq - 1] - 0.5, y[0] + 0.5, color="0.92", zorder=-1)
    ctx.save_figure(fig, "s1x_forest")

    # Tables.
    g = res["ffhq_strat_groups"]
    t = pd.DataFrame({"Attribute": g["attribute_label"], "Level": g["level"], "n": g["n"], "Mean": g["mean"],
                      "Median": g["median"], "SD": g["sd"], "95% CI low": g["conf_low"], "95% CI high": g["conf_high"]})
    # Long tables do not break across pages in the Typst output: the paper gets them in parts.
    for part, attrs in GROUP_TABLE_PARTS.items():
        label, caption = GROUP_TABLE_CAPTIONS[part]
        ctx.save_table(t[g["attribute"].isin(attrs)], f"s1x_groups_{part}",
                       digits={"n": 0, "Mean": 1, "Median": 1, "SD": 1, "95% CI low": 1, "95% CI high": 1},
                       caption=caption, label=label)
    cells = res["ffhq_strat_cells"]
    piv = cells.copy()
    piv["text"] = [("—" if n == 0 else f"{number(mu, 1)} ({integer(n)})") for mu, n in zip(piv["mean"], piv["n"])]
    for gender in dict.fromkeys(piv["gender"]):
        sub = piv[piv["gender"] == gender]
        if (sub["n"] > 0).sum() <= 1:
            # a grid with at most one filled cell (images without a face have no age band or glasses)
            # is an empty table to a reader: the text gives that cell's mean and n instead
            continue
        wide = sub.pivot_table(index="age_band", columns="glasses", values="text", aggfunc="first",
                               sort=False).reset_index()
        wide.columns.name = None
        label, caption = CELL_TABLE_CAPTIONS.get(gender, (f"tbl-s1x-cells-{gender.replace(' ', '-')}",
                                                          f"As @tbl-s1x-cells, images labelled {gender}."))
        tidy = cells.loc[cells["gender"] == gender, [c for c in ("gender", "age_band", "glasses", "n", "mean")
                                                     if c in cells]].reset_index(drop=True)
        ctx.save_table(wide.rename(columns={"age_band": "Age band"}), f"s1x_cells_{gender.replace(' ', '_')}", digits=1,
                       caption=caption, label=label, tidy=tidy)
    sh = res["ffhq_strat_bin_shares"]
    sel = sh[sh["grouping"].isin(["gender", "age_band", "glasses"]) & sh["bin"].isin(["bottom 1%", "D1", "D10", "top 1%"])]
    w = sel.pivot_table(index=["grouping", "level"], columns="bin", values="share", sort=False)
    w = w[["bottom 1%", "D1", "D10", "top 1%"]]
    ov = sel.groupby(["grouping", "level"], sort=False)["overall_share"].first()
    st = pd.DataFrame({"Attribute": [ATTRIBUTES[a] for a, _ in w.index], "Level": [lv for _, lv in w.index],
                       "All images": ov.reindex(w.index).to_numpy(), "Bottom 1%": w["bottom 1%"].to_numpy(),
                       "D1": w["D1"].to_numpy(), "D10": w["D10"].to_numpy(), "Top 1%": w["top 1%"].to_numpy()})
    ctx.save_table(st, "s1x_extreme_shares", digits=3,
                   caption="Share of each group among all images, the bottom 1%, the lowest and highest deciles and the top 1% of scores.",
                   label="tbl-s1x-extremes")
    bl = res["ffhq_strat_blocks"]
    ctx.save_table(pd.DataFrame({"Block": bl["block"], "Terms": bl["df_num"], "F (HC3)": bl["statistic"],
                                 "df": bl["df_den"], "Holm p": bl["p_holm"], "R² without": bl["r2_reduced"],
                                 "R² full": bl["r2_full"], "ΔR²": bl["estimate"], "95% CI low": bl["conf_low"],
                                 "95% CI high": bl["conf_high"]}), "s1x_blocks",
                   digits={"Terms": 0, "F (HC3)": 1, "df": 0, "Holm p": 4, "R² without": 4, "R² full": 4, "ΔR²": 4,
                           "95% CI low": 4, "95% CI high": 4},
                   caption="Blocks of the full OLS model: HC3 Wald F-test of the block (Holm over the "
                           f"{len(BLOCKS)} block tests), R² without the block and with it, and the block's incremental R² with a percentile bootstrap "
                           f"95% CI ({ctx.values['ffhq_strat']['n_boot']:,} resamples of images). The face block is "
                           "also split into its demographic labels (gender, age band) and the other face attributes.",
                   label="tbl-s1x-blocks")
    gc = res.get("ffhq_strat_gender_contrast")
    if gc is not None and len(gc):
        main_rows = gc[~gc["term"].astype(str).str.endswith(":hedges_g")].reset_index(drop=True)
        g_rows = gc[gc["term"].astype(str).str.endswith(":hedges_g")].set_index("model")["estimate"]
        ctx.save_table(pd.DataFrame({
            "Sample": main_rows["sample"], "Men": main_rows.get("mean_a"), "Women": main_rows.get("mean_b"),
            "Men − women": main_rows["estimate"], "95% CI low": main_rows["conf_low"],
            "95% CI high": main_rows["conf_high"], "Hedges' g": main_rows["model"].map(g_rows),
            "p": main_rows["p_value"]}), "s1x_gender_contrast",
            digits={"Men": 1, "Women": 1, "Men − women": 2, "95% CI low": 2, "95% CI high": 2, "Hedges' g": 2, "p": 4},
            caption="Men's minus women's score: FFHQ by the Face API's gender label (raw difference in "
                    "released-score units, Welch 95% CI, and Hedges' g), FFHQ adjusted for image quality and the "
                    "other face attributes (OLS coefficient of male, in score SDs), and Study 2 by the scrape prompt "
                    "(raw, Welch). The FFHQ total (gender alone) and direct (adjusted) effects have HC3 intervals; the "
                    "indirect effect (total − direct) and the share of the total mediated have percentile bootstrap "
                    "intervals over images.",
            label="tbl-s1x-gender")
    tab = pd.DataFrame({"Term": [_pretty(t) for t in terms]})
    for mod, lab in (("s1x_ols_full", "OLS"), ("s1x_mixed", "Mixed"), ("s1x_quantile_10", "q10"),
                     ("s1x_quantile_50", "q50"), ("s1x_quantile_90", "q90")):
        c = coefs[coefs["model"] == mod].set_index("term").reindex(terms)
        tab[lab] = c["estimate"].to_numpy()
        if mod == "s1x_ols_full":
            tab["OLS SE"] = c["std_error"].to_numpy()
            tab["OLS Holm p"] = c["p_holm"].to_numpy()
    first = np.array([_is_quality(t) or t.startswith(("C(gender", "C(age_band")) for t in terms])
    dg = {"OLS": 3, "OLS SE": 3, "Mixed": 3, "q10": 3, "q50": 3, "q90": 3, "OLS Holm p": 4}
    ctx.save_table(tab[first], "s1x_coefficients_a", digits=dg,
                   caption="Standardized coefficients of the image-quality block, gender and age band: OLS (HC3 SE; Holm p over the model's terms), mixed model (fixed effects) and quantile regressions at q = 0.1, 0.5, 0.9. Full tidy results with SEs, CIs, p-values and Holm p for every model: `build/results/ffhq_strat_coefficients.csv`.",
                   label="tbl-s1x-coefs")
    ctx.save_table(tab[~first], "s1x_coefficients_b", digits=dg,
                   caption="Standardized coefficients of the other face attributes (continued from @tbl-s1x-coefs).",
                   label="tbl-s1x-coefs-b")
    qt = res["ffhq_strat_quality_tests"]
    ctx.save_table(pd.DataFrame({"Measure": qt["label"], "n": qt["n_obs"], "Spline terms": qt["df_num"],
                                 "F (HC3)": qt["statistic"], "Holm p": qt["p_holm"], "R²": qt["estimate"]}),
                   "s1x_quality_tests", digits={"n": 0, "Spline terms": 0, "F (HC3)": 1, "Holm p": 4, "R²": 4},
                   caption="Score against each image-quality measure: cubic B-spline, HC3 Wald F-test that the curve is flat (Holm over the four measures), and R².",
                   label="tbl-s1x-quality")


def _order(term: str) -> int:
    # Position of a model term's variable in QUALITY_TERMS + FACE_TERMS (for display).
    base = term.split("[")[0]
    for i, t in enumerate(QUALITY_TERMS + FACE_TERMS):
        if base == t or (t.startswith("C(") and base == t):
            return i
    return len(QUALITY_TERMS + FACE_TERMS)


def _is_quality(term: str) -> bool:
    return term.split("[")[0] in {"exposure_z", "I(exposure_z ** 2)", "blur_z", "noise_z", "blue_z"}



def steps(config, paths) -> list:
    """The figure step of :mod:`discbias.analyses.ffhq_strat`: what :func:`figures` reads."""
    from ...analyses import ffhq_strat as A
    from ...stages import figure_step

    return [figure_step("ffhq_strat:figures", figures, measures=["ffhq_scores"], optional_measures=["ffhq_features", "study2_images"], optional_results=A.FIT_TABLES)]
