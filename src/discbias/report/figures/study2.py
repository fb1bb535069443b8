"""Figures and publication tables of Study 2 (:mod:`discbias.analyses.study2`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...analyses.study2 import LEVELS


def figures(ctx):
    import matplotlib.pyplot as plt

    cells = ctx.results["study2_cell_means"]
    from ..style import colours as palette, figsize

    colours = palette(LEVELS["race"])
    fig, axes = plt.subplots(1, 2, figsize=figsize(0.9, 0.5), sharey=True)
    for ax, gender in zip(axes, LEVELS["gender"]):
        for k, race in enumerate(LEVELS["race"]):
            s = cells[(cells["gender"] == gender) & (cells["race"] == race)].set_index("hair").reindex(LEVELS["hair"])
            x = np.arange(len(LEVELS["hair"])) + (k - 1) * 0.12
            ax.errorbar(x, s["mean"], yerr=[s["mean"] - s["conf_low"], s["conf_high"] - s["mean"]], fmt="o-",
                        color=colours[race], label=race, capsize=2, ms=3)
            # n under each point, one row per race at the foot of the panel: labels next to the
            # points ran into each other where cell means are close
            for xi, (m, n) in zip(x, zip(s["mean"], s["n"])):
                if np.isfinite(m):
                    ax.annotate(f"{int(n)}", (xi, 0), xycoords=("data", "axes fraction"), textcoords="offset points",
                                xytext=(0, 3 + 8 * k), fontsize=7, ha="center", color=colours[race])
        ax.set_xticks(range(len(LEVELS["hair"])),
                      ["long", "short" if gender == "men" else "short (buzz cut)"])
        ax.set_title(gender)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo - 0.28 * (hi - lo), hi)  # room for the rows of n labels
    axes[0].set_ylabel("mean score (95% CI); n at the foot")
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



def steps(config, paths) -> list:
    """The figure step of :mod:`discbias.analyses.study2`: what :func:`figures` reads."""
    from ...analyses import study2 as A
    from ...stages import figure_step

    return [figure_step("study2:figures", figures, measures=["study2_images"], results=A.FIT_TABLES)]
