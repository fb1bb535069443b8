"""Figures and publication tables of the controlled probes (:mod:`discbias.analyses.probes`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...analyses.probes import SECTION


WATERMARK = "MECHANICS DEMO — UNTRAINED WEIGHTS — NOT A FINDING"


def watermark(fig, text: str = WATERMARK) -> None:
    """Write a diagonal watermark across a matplotlib figure."""
    fig.text(0.5, 0.5, text, transform=fig.transFigure, rotation=30, fontsize=20, color="red", alpha=0.35,
             ha="center", va="center", zorder=1000, fontweight="bold")


def figures(ctx):
    """Dose-response curves, uniform-field heatmaps, training comparison; publication tables."""
    v = ctx.values.get(SECTION, {})
    if not v.get("available") or "probe_dose_response" not in ctx.results:
        return
    import matplotlib.pyplot as plt

    from ...probes.interventions import LEVEL_UNITS

    demo = bool(v.get("demo"))
    curves = ctx.results["probe_curves"]
    tidy = ctx.results["probe_dose_response"]
    scores = ctx.measures["probe_scores"]
    probes = v["probes"]
    protocols = v["protocols"]
    from ..style import OKABE_ITO, TEXT_WIDTH_IN, figsize

    ncol = min(3, len(probes))
    nrow = int(np.ceil(len(probes) / ncol))
    colours = {"nvidia": OKABE_ITO[3], "grissom2024": OKABE_ITO[4]}
    for protocol in protocols:
        col = colours.get(protocol, OKABE_ITO[2])
        fig, axes = plt.subplots(nrow, ncol, figsize=(TEXT_WIDTH_IN, 1.75 * nrow + 0.3), squeeze=False)
        for ax, probe in zip(axes.ravel(), probes):
            c = curves[(curves["probe"] == probe) & (curves["protocol"] == protocol)]
            pts = scores[(scores["probe"] == probe) & (scores["protocol"] == protocol)]
            if len(pts):
                # Centre each base image on its own mean so the random intercepts do not hide the curve.
                centred = pts["score"] - pts.groupby("base")["score"].transform("mean") + pts["score"].mean()
                ax.scatter(pts["level"], centred, s=5, alpha=0.5, color=col, edgecolor="none")
            if len(c):
                ax.plot(c["level"], c["estimate"], color=col)
                ax.fill_between(c["level"], c["conf_low"], c["conf_high"], color=col, alpha=0.2)
            r = tidy[(tidy["probe"] == probe) & (tidy["protocol"] == protocol) & (tidy["term"] == "argmax_level")]
            if len(r) and pd.notna(r["estimate"].iloc[0]):
                ax.axvline(r["estimate"].iloc[0], color="k", ls=":", lw=1)
            ax.set_title(ctx.label(probe) if ctx.label(probe) != probe else probe.replace("_", " "))
            ax.set_xlabel(LEVEL_UNITS.get(probe, "level"))
            ax.set_ylabel("D score (logit)")
        for ax in axes.ravel()[len(probes):]:
            ax.axis("off")
        fig.suptitle(f"{protocol} protocol")
        if demo:
            watermark(fig)
        ctx.save_figure(fig, f"probes_dose_response_{protocol}")
    if "probe_fields" in ctx.results:
        f = ctx.results["probe_fields"]
        fig, axes = plt.subplots(1, len(protocols), figsize=figsize(min(1.0, 0.5 * len(protocols)), 0.4 / min(1.0, 0.5 * len(protocols))), squeeze=False)
        for ax, protocol in zip(axes[0], protocols):
            t = f[f["protocol"] == protocol].pivot(index="field_lightness", columns="field_hue", values="score")
            im = ax.imshow(t.to_numpy(), origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks(range(t.shape[1]), [f"{h:.0f}" for h in t.columns])
            ax.set_yticks(range(t.shape[0]), [f"{L:.0f}" for L in t.index])
            ax.set_xlabel("CIELAB hue angle (degrees)")
            ax.set_ylabel("L*")
            ax.set_title(f"uniform fields ({protocol})")
            fig.colorbar(im, ax=ax, label="D score")
        if demo:
            watermark(fig)
        ctx.save_figure(fig, "probes_fields")
    if "probe_training" in ctx.results and "probe_reference" in ctx.measures:
        ref = ctx.measures["probe_reference"]
        tc = ctx.results["probe_training_curves"]
        fig, ax = plt.subplots(figsize=figsize(0.85, 0.55))
        if ref["kind"].iloc[0] == "values":
            ax.hist(ref["value"], bins=30, color="0.75", density=True, label="reference set")
        ax.set_xlabel(ctx.label(v["reference_measure"]))
        ax.set_ylabel("density (reference)")
        ax2 = ax.twinx()
        for protocol in protocols:
            c = tc[tc["protocol"] == protocol]
            col = colours.get(protocol)
            ax2.plot(c["level"], c["estimate"], color=col, label=f"D score ({protocol})")
            ax2.fill_between(c["level"], c["conf_low"], c["conf_high"], color=col, alpha=0.2)
            t = v["training"].get(protocol)
            if t:
                ax2.axvline(t["preferred"], color=col, ls=":")
        ax2.set_ylabel("D score (population curve)")
        fig.legend(*ax2.get_legend_handles_labels(), loc="outside lower center", ncols=len(protocols))
        if demo:
            watermark(fig)
        ctx.save_figure(fig, "probes_training")
        tr = ctx.results["probe_training"]
        keep = tr[tr["term"].isin(["preferred_value", "preferred_quantile", "training_mode", "training_median",
                                   "slope_at_training_mode"])]
        ctx.save_table(keep[["protocol", "term", "estimate", "conf_low", "conf_high", "p_value"]].reset_index(drop=True),
                       "probes_training", digits=3,
                       rename=dict(protocol="Protocol", term="Quantity", estimate="Estimate", conf_low="95% low",
                                   conf_high="95% high", p_value="p"),
                       caption="Preferred value of the measure, its quantile in the reference distribution, the reference mode and median, and the score slope at the mode.",
                       label="tbl-probes-training")
    rows = []
    for model, t in tidy.groupby("model", sort=False):
        t = t.set_index("term")
        g = lambda term, col="estimate": t.loc[term, col] if term in t.index else np.nan
        rows.append(dict(Probe=t["probe"].iloc[0].replace("_", " "), Protocol=t["protocol"].iloc[0],
                         Argmax=g("argmax_level"), low=g("argmax_level", "conf_low"), high=g("argmax_level", "conf_high"),
                         Slope0=g("slope_at_level_0"), Wald_p=g("wald_level_joint", "p_value"),
                         Converged="yes" if bool(t["converged"].fillna(False).all()) else "no",
                         Warnings="yes" if (t["warnings"].fillna("") != "").any() else ""))
    ctx.save_table(pd.DataFrame(rows), "probes_dose_response", digits=3,
                   rename=dict(Argmax="Preferred level", low="95% low", high="95% high", Slope0="Slope at original",
                               Wald_p="Level effect p"),
                   caption="Preferred level per probe and protocol (parametric-bootstrap 95% interval), slope of the score at the original image, joint test of the level terms, and model diagnostics.",
                   label="tbl-probes-dose")



def steps(config, paths) -> list:
    """The figure step of :mod:`discbias.analyses.probes`: what :func:`figures` reads."""
    from ...analyses import probes as A
    from ...stages import figure_step

    return [figure_step("probes:figures", figures, optional_measures=["probe_scores", "probe_reference"], optional_results=A.FIT_TABLES)]
