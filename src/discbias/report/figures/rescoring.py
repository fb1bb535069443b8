"""Figures and publication tables of the rescoring section (:mod:`discbias.analyses.rescoring`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...analyses.rescoring import RELEASED


def figures(ctx):
    import matplotlib.pyplot as plt

    rs = ctx.measures.get("rescored_scores")
    if rs is None or rs.empty or "rescoring_summary" not in ctx.results:
        return
    summary = ctx.results["rescoring_summary"]
    names = [n for n in summary["protocol"] if n != RELEASED]
    rel = ctx.measures.get("ffhq_scores")
    if rel is not None and names:
        rel = rel[rel["valid"]].astype({"image_id": str}).set_index("image_id")["score"]
        from ..style import OKABE_ITO, figsize

        fig, axes = plt.subplots(1, len(names), figsize=figsize(min(1.0, 0.4 * len(names)), 0.9 / min(2.5, len(names))),
                                 squeeze=False)
        for ax, name in zip(axes[0], names):
            s = rs[rs["protocol_name"] == name].astype({"image_id": str}).set_index("image_id")["score"]
            j = pd.concat([rel.rename("released"), s.rename("rescored")], axis=1, join="inner")
            ax.scatter(j["released"], j["rescored"], s=3, alpha=0.5, color=OKABE_ITO[3], edgecolor="none")
            lo, hi = np.nanmin(j.to_numpy()), np.nanmax(j.to_numpy())
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
            ax.set_xlabel("released score")
            ax.set_ylabel(f"rescored ({name})")
            ax.set_title(f"{name}, n = {len(j):,}")
        ctx.save_figure(fig, "rs_scatter")
    ag = ctx.results["rescoring_agreement"]
    if len(ag):
        piv = ag.pivot(index="protocol", columns="term", values="estimate").reindex(names)
        n = ag.groupby("protocol")["n_obs"].max().reindex(names)
        tab = pd.DataFrame({"Protocol": piv.index, "n": n.to_numpy(), "Pearson r": piv["pearson_r"].to_numpy(),
                            "Spearman rho": piv["spearman_rho"].to_numpy(),
                            "Mean diff": piv["mean_diff"].to_numpy(), "Mean abs diff": piv["mean_abs_diff"].to_numpy(),
                            "Max abs diff": piv["max_abs_diff"].to_numpy(), "Top overlap": piv["top_overlap"].to_numpy(),
                            "Bottom overlap": piv["bottom_overlap"].to_numpy()})
        ctx.save_table(tab, "rs_agreement", digits={"Pearson r": 6, "Spearman rho": 6, "Mean diff": 4,
                                                    "Mean abs diff": 4, "Max abs diff": 4, "Top overlap": 2,
                                                    "Bottom overlap": 2},
                       caption="Agreement of rescored with released scores, per protocol (@fig-rs-scatter).",
                       label="tbl-rs-agree")
    cl = ctx.results["rescoring_claims"]
    tab = pd.DataFrame({"Protocol": cl["protocol"], "Claim": cl["claim_id"], "Estimate": cl["estimate"],
                        "95% CI low": cl["conf_low"], "95% CI high": cl["conf_high"],
                        "Reproduction": cl["reproduction"].replace("not applicable", "—") if "reproduction" in cl else "—",
                        "Robustness / extension": cl["verdict"],
                        "Images": cl["n_images"], "Rated": cl["n_rated"]})
    ctx.save_table(tab, "rs_claims", digits={"Estimate": 3, "95% CI low": 3, "95% CI high": 3},
                   caption="Study 1 claims re-evaluated under each scoring protocol (estimates: the primary specification's; "
                           "S1-blue-all, Pearson r of the score with the blue-channel mean over every scored image; "
                           "S1-race, bottom − top per-image share of \"Black\" ratings; S1-luminance has no primary: "
                           "its top vs bottom contrast answers the reproduction question only).",
                   label="tbl-rs-claims")
    ctx.save_table(summary.rename(columns={"protocol": "Protocol", "label": "Settings", "n_scored": "Scored",
                                           "n_failed": "Failed", "mean": "Mean score", "sd": "SD"})
                   .drop(columns=["weights_sha256"]), "rs_summary", digits={"Mean score": 3, "SD": 3},
                   caption="Scores per protocol on the common image set (released scores read from the cache).",
                   label="tbl-rs-summary")



def steps(config, paths) -> list:
    """The figure step of :mod:`discbias.analyses.rescoring`: what :func:`figures` reads."""
    from ...analyses import rescoring as A
    from ...stages import figure_step

    return [figure_step("rescoring:figures", figures, optional_measures=["ffhq_scores", "rescored_scores"], optional_results=A.FIT_TABLES)]
