"""Figures and publication tables of Study 1 (:mod:`discbias.analyses.study1`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...studies.grissom2024 import RACE_CATEGORIES


def figures(ctx):
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    scores = ctx.measures["ffhq_scores"]
    scores = scores[scores["valid"]]
    tb = ctx.measures["top_bottom"]

    # Score histogram, each bar coloured by the mean blue channel of its images (the only colour
    # measure released for all 70k), extremes shown in their own mean colour.
    from ..style import OKABE_ITO, figsize

    fig, ax = plt.subplots(figsize=figsize(1.0, 0.45))
    bins = np.linspace(scores["score"].min(), scores["score"].max(), 61)
    idx = np.clip(np.digitize(scores["score"], bins) - 1, 0, len(bins) - 2)
    counts = np.bincount(idx, minlength=len(bins) - 1)
    blue = np.bincount(idx, weights=scores["blue_mean"], minlength=len(bins) - 1) / np.maximum(counts, 1)
    norm = colors.Normalize(0, 255)
    cmap = plt.get_cmap("Blues")
    ax.bar(bins[:-1], counts, width=np.diff(bins), align="edge", color=cmap(norm(blue)), edgecolor="none")
    rgb = tb[["red_mean", "green_mean", "blue_mean"]].to_numpy() / 255
    ax.scatter(tb["score"], np.full(len(tb), -0.03 * counts.max()), c=rgb, marker="|", s=60, clip_on=False)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="mean blue of the bin (0\u2013255)")
    ax.set_xlabel("released discriminator score (logit)")
    ax.set_ylabel("images")
    ax.set_title(f"FFHQ, n = {len(scores):,}; ticks: top/bottom 100 in their mean RGB colour")
    ctx.save_figure(fig, "s1_score_histogram")

    fig, axes = plt.subplots(1, 2, figsize=figsize(1.0, 0.42))
    hb = axes[0].hexbin(scores["blue_mean"], scores["score"], gridsize=50, bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(hb, ax=axes[0], label="images (log)")
    axes[0].set_xlabel("blue-channel mean (released \u201cluminance\u201d)")
    axes[0].set_ylabel("score")
    axes[0].set_title(f"all {len(scores):,} images")
    axes[1].scatter(tb["luminance"], tb["score"], c=rgb, s=10, edgecolor="k", linewidth=0.2)
    axes[1].set_xlabel("luminance (Rec. 709, gamma-encoded)")
    axes[1].set_title(f"top and bottom 100 (n = {len(tb)})")
    ctx.save_figure(fig, "s1_luminance_score")

    # Horizontal bars: the category names read on the left in full (as x tick labels, broken over
    # lines, the long names ran into each other).
    shares = ctx.results["study1_race_shares"]
    cats = list(dict.fromkeys(shares["category"]))
    fig, ax = plt.subplots(figsize=figsize(0.9, 0.22 + 0.07 * len(cats)))
    y = np.arange(len(cats))[::-1]
    for k, (grp, colr) in enumerate((("top", OKABE_ITO[3]), ("bottom", OKABE_ITO[0]))):
        s = shares[shares["group"] == grp].set_index("category").reindex(cats)
        ax.barh(y + (0.5 - k) * 0.4, s["share"], height=0.4, color=colr,
                label=f"{grp} 100 (n = {int(s['total'].iloc[0])} ratings)")
    ax.set_yticks(y, cats)
    ax.set_xlabel("share of race ratings")
    ax.set_xlim(0, 1)
    fig.legend(loc="outside upper center", ncols=2)
    ctx.save_figure(fig, "s1_race_bars")

    tests = ctx.results["study1_top_bottom_tests"]
    tests = tests[~tests["term"].str.endswith(":hedges_g")]
    g = ctx.results["study1_top_bottom_tests"]
    g = g[g["term"].str.endswith(":hedges_g")].set_index("model")["estimate"]
    tab = pd.DataFrame({
        "Measure": tests["term"], "Mean A": tests["mean_a"], "Mean B": tests["mean_b"],
        "Difference": tests["estimate"], "95% CI low": tests["conf_low"], "95% CI high": tests["conf_high"],
        "t": tests["statistic"], "df": tests["df"], "Holm p": tests["p_holm"],
        "Hedges g": tests["model"].map(g), "A vs B": tests["group_a"] + " vs " + tests["group_b"],
    })
    ctx.save_table(tab, "s1_top_bottom_tests", digits={"Mean A": 3, "Mean B": 3, "Difference": 3, "95% CI low": 3,
                                                        "95% CI high": 3, "t": 2, "df": 1, "Holm p": 4, "Hedges g": 2},
                   caption="Welch t-tests, top vs bottom 100 FFHQ images (and bottom vs top for the per-image share of \"Black\" race ratings); Holm-adjusted over the five tests.",
                   label="tbl-s1-tests")
    pivot = shares.pivot(index="category", columns="group", values="share").reindex(RACE_CATEGORIES)
    counts = shares.pivot(index="category", columns="group", values="n").reindex(RACE_CATEGORIES)
    rt = pd.DataFrame({"Rated race": pivot.index, "Top n": counts["top"].to_numpy(), "Top share": pivot["top"].to_numpy(),
                       "Bottom n": counts["bottom"].to_numpy(), "Bottom share": pivot["bottom"].to_numpy()})
    ctx.save_table(rt, "s1_race_shares", digits={"Top share": 3, "Bottom share": 3},
                   caption="Race ratings of the top and bottom 100 FFHQ images, by category (all categories shown).",
                   label="tbl-s1-race")



def steps(config, paths) -> list:
    """The figure step of :mod:`discbias.analyses.study1`: what :func:`figures` reads."""
    from ...analyses import study1 as A
    from ...stages import figure_step

    return [figure_step("study1:figures", figures, measures=["ffhq_scores", "top_bottom", "top_bottom_race"], results=A.FIT_TABLES)]
