"""Figures and publication tables of the planted-bias study (written by the ``planted:figures`` step)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["planted_figures"]

QUANTITY = {"power": "Power", "false_positive_rate": "False-positive rate"}
#: Readers' names of the probes' interventions (the ids are discbias.probes' identifiers).
PROBE_LABELS = {"exposure": "exposure", "gain_red": "red gain"}


def _save(ctx, fig, name: str, saved: list[str]) -> None:
    from ..stages import FigureContext

    fctx = FigureContext(ctx.config, ctx.paths, {}, {}, {})
    fctx.save_figure(fig, name)
    for f in sorted(ctx.paths.figures.glob(f"{name}.*")):
        ctx.wrote_file(f)
    saved.append(f"figure:{name}")


def _dose_scatter(ax, d: pd.DataFrame, dose: dict, jitter: np.ndarray, xlabel: str, ylabel: str) -> None:
    """One point per discriminator at its condition's planted dose (``dose``: condition -> value, plus
    ``jitter``), filled where the detector reported a bias; black: the mean per dose with 95% interval."""
    from ..report.style import OKABE_ITO

    x = d["condition"].map(dose)
    found = (d["reported_sign"] != 0).to_numpy()
    xj = x.to_numpy() + jitter
    y = d["estimate"].to_numpy()
    ax.scatter(xj[found], y[found], s=9, color=OKABE_ITO[4], label="reported", zorder=3)
    ax.scatter(xj[~found], y[~found], s=9, facecolor="none", edgecolor=OKABE_ITO[3], label="not reported", zorder=3)
    m = d.assign(dose=x)["estimate"].groupby(x).agg(["mean", "sem"])
    ax.errorbar(m.index, m["mean"], yerr=1.96 * m["sem"].fillna(0), color="k", lw=1, capsize=2, zorder=2)
    ax.axhline(0, color="k", lw=0.6, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _image_rows(axes, label: str, sets, n: int) -> None:
    """One row of ``n`` images per ``(name, images)`` in ``sets``, labelled ``label`` and the name."""
    for k, (what, imgs) in enumerate(sets):
        for j in range(n):
            ax = axes[k, j]
            ax.imshow(imgs[j], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{label}\n{what}", fontsize=7, rotation=0, ha="right", va="center")


def planted_figures(ctx) -> list[str]:
    """Training curves, sample images, estimated bias against the planted shift; the operating
    characteristics and training tables. Returns the saved names."""
    import matplotlib.pyplot as plt

    from ..report.style import OKABE_ITO, TEXT_WIDTH_IN, apply_style
    from .data import training_sets
    from .auditing import CLAIMS, PROBES
    from .runs import _condition

    apply_style()
    saved: list[str] = []
    p = ctx.config.planted
    conds = [_condition(c) for c in p.conditions]
    colours = {c.id: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(conds)}
    # more conditions than colours: the line style and the marker tell the ones sharing a colour apart
    dashes = {c.id: ("-", "--", ":")[(i // len(OKABE_ITO)) % 3] for i, c in enumerate(conds)}
    markers = {c.id: "osD^vPX*h"[i % 9] for i, c in enumerate(conds)}

    # 1. training curves: accuracy and losses per condition (mean over seeds, thin lines per seed)
    logs = ctx.read("results/training_log")
    gan_conds = [c for c in conds if c.fake == "generator"]
    conds_all, conds = conds, [c for c in conds if c.fake != "generator"]
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 2.2))
    for c in conds:
        d = logs[logs["condition"] == c.id]
        for _, s in d.groupby("seed"):
            axes[0].plot(s["step"], s["accuracy"], color=colours[c.id], lw=0.4, alpha=0.35)
        m = d.groupby("step")[["accuracy", "loss_real", "loss_fake"]].mean()
        axes[0].plot(m.index, m["accuracy"], color=colours[c.id], ls=dashes[c.id], lw=1.5, label=c.id)
        axes[1].plot(m.index, m["loss_real"] + m["loss_fake"], color=colours[c.id], ls=dashes[c.id], lw=1.5, label=c.id)
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("real-vs-fake accuracy")
    axes[0].axhline(0.5, color="k", lw=0.6, ls=":")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("logistic loss (real + fake)")
    axes[1].legend(fontsize=7, frameon=False, ncol=1)
    _save(ctx, fig, "planted_training", saved)

    # 2. sample images: real and fake training images of the null and the strongest planted condition
    show = [c for c in conds if not c.planted][:1] + sorted([c for c in conds if c.planted],
                                                           key=lambda c: -abs(c.luminance_shift))[:1]
    fig, axes = plt.subplots(2 * len(show), 8, figsize=(TEXT_WIDTH_IN, 0.66 * 2 * len(show) + 0.1),
                             gridspec_kw=dict(wspace=0.02, hspace=0.02))
    axes = np.atleast_2d(axes)
    for i, c in enumerate(show):
        real, fake, _ = training_sets(c, 8, p.resolution, p.first_seed, exposure_sd=p.exposure_sd, red_sd=p.red_sd)
        _image_rows(axes[2 * i:2 * i + 2], c.id, (("real", real), ("fake", fake)), 8)
    _save(ctx, fig, "planted_samples", saved)

    if gan_conds:
        _gan_figures(ctx, gan_conds, logs, colours, saved)
    conds = conds_all

    # 3. estimated bias against the planted luminance shift (audit claim and exposure probe)
    det = ctx.read("results/detections")
    shift = {c.id: c.luminance_shift for c in conds
             if c.fake != "generator" and not c.redness_shift and c.minority_share == c.fake_share}
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 2.3))
    rng = np.random.default_rng(0)
    for ax, det_id, ylab in ((axes[0], "luminance", "luma slope (logit per SD)\n(audit model)"),
                             (axes[1], "probe_exposure", "score slope per stop\n(exposure probe)")):
        d = det[(det["detector"] == det_id) & det["condition"].isin(list(shift))]
        _dose_scatter(ax, d, shift, rng.uniform(-0.03, 0.03, len(d)), "planted luminance shift (stops)", ylab)
    axes[0].legend(fontsize=7, frameon=False)
    _save(ctx, fig, "planted_dose", saved)

    # 4. the training-distribution comparison: planted imbalance (measured) against the estimated bias
    tc = ctx.read("results/training_comparison")
    lum = det[det["detector"] == "luminance"][["condition", "seed", "estimate", "conf_low", "conf_high"]]
    tcm = tc.merge(lum, on=["condition", "seed"], how="left")
    tcm["imbalance"] = tcm["real_luma_mean"] - tcm["fake_luma_mean"]
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 2.4 + 0.15 * ((len(conds) - 1) // 5 + 1)))
    for c in conds:
        d = tcm[tcm["condition"] == c.id]
        if d.empty:
            continue
        axes[0].errorbar(d["imbalance"], d["estimate"], yerr=[d["estimate"] - d["conf_low"], d["conf_high"] - d["estimate"]],
                         fmt=markers[c.id], ms=3, lw=0.6, color=colours[c.id], label=c.id)
        ok = d["slope_at_real_mode"].notna()
        axes[1].errorbar(d["imbalance"][ok], d["slope_at_real_mode"][ok],
                         yerr=[(d["slope_at_real_mode"] - d["slope_low"])[ok], (d["slope_high"] - d["slope_at_real_mode"])[ok]],
                         fmt=markers[c.id], ms=3, lw=0.6, color=colours[c.id], label=c.id)
    for ax in axes:
        ax.axhline(0, color="k", lw=0.6, ls=":")
        ax.axvline(0, color="k", lw=0.4, ls=":")
        ax.set_xlabel("real minus fake training luma")
    axes[0].set_ylabel("luma slope (logit per SD)\n(audit model)")
    axes[1].set_ylabel("score slope at the real\ndata's modal luma")
    h, lab = axes[0].get_legend_handles_labels()
    fig.legend(h, lab, loc="outside lower center", ncol=min(5, max(1, len(lab))), fontsize=6, frameon=False)
    _save(ctx, fig, "planted_training_comparison", saved)

    # tables
    from ..report.tables import Col, PubTable

    order = {c.id: i for i, c in enumerate(conds)}
    g = tcm.assign(est=tcm["estimated"].astype(bool))
    summ = g.groupby("condition", sort=False).agg(
        seeds=("seed", "count"), imbalance=("imbalance", "mean"),
        brighter=("reading_sign", lambda x: int(((x == 1) & g.loc[x.index, "est"]).sum())),
        darker=("reading_sign", lambda x: int(((x == -1) & g.loc[x.index, "est"]).sum())),
        flat=("reading_sign", lambda x: int(((x == 0) & g.loc[x.index, "est"]).sum())),
        q_real=("preferred_quantile_real", "mean"), q_fake=("preferred_quantile_fake", "mean"),
        slope=("slope_at_real_mode", "mean")).reset_index()
    summ = summ.sort_values("condition", key=lambda s: s.map(order))
    t = PubTable(summ, [Col("condition", "Condition"), Col("seeds", "Seeds", digits=0),
                        Col("imbalance", "Real - fake luma", digits=3), Col("slope", "Slope at real mode", digits=2),
                        Col("brighter", "Rising", digits=0), Col("darker", "Falling", digits=0),
                        Col("flat", "Flat", digits=0), Col("q_real", "Quantile (real)", digits=2),
                        Col("q_fake", "Quantile (fake)", digits=2)],
                 caption="The training-distribution comparison per condition: the mean luma difference between "
                         "the real and the fake training images, the mean slope of the score at the real set's "
                         "modal luma, the seeds in which that slope's 95% interval lies above 0 (rising), below 0 "
                         "(falling) or includes 0 (flat), and the mean quantile of the preferred luma in the real "
                         "and in the fake training set.",
                 label="tbl-planted-training-comparison",
                 notes="Slope: logit per unit of luma (0-1). Seeds whose model did not converge or whose real-data "
                       "mode lies outside the probed luma range are in none of the three counts.")
    t.write(ctx.paths.tables, "planted_training_comparison")
    for f in sorted(ctx.paths.tables.glob("planted_training_comparison.*")):
        ctx.wrote_file(f)
    saved.append("table:planted_training_comparison")

    op = ctx.read("results/operating").copy()
    names = {c["id"]: f"claim: {c['id']}" for c in CLAIMS} | {pr["id"]: f"probe: {PROBE_LABELS.get(pr['probe'], pr['probe'])}"
                                                                  for pr in PROBES}
    op["detector_label"] = op["detector"].map(names)
    op["quantity_label"] = op["quantity"].map(QUANTITY)
    op["share_pct"] = 100 * op["share"]
    op["lo_pct"], op["hi_pct"] = 100 * op["conf_low"], 100 * op["conf_high"]
    t = PubTable(op, [Col("condition", "Condition"), Col("detector_label", "Detector"),
                      Col("quantity_label", "Quantity"), Col("k", "Seeds reporting", digits=0),
                      Col("n", "Seeds", digits=0), Col("k_beyond_sesoi", "Beyond SESOI", digits=0),
                      Col("share_pct", "Share (%)", digits=0),
                      Col("lo_pct", "95% CI (%)", fmt="interval", high="hi_pct", digits=1)],
                 caption=("Operating characteristics of the audit: for each condition and detector, the number of "
                          "seeds (discriminators) in which the planted direction is reported (power) or, where "
                          "the detector's attribute is not planted, any bias is reported (false-positive rate)."),
                 label="tbl-planted-operating",
                 notes=("Audit claims report a bias when their verdict is robust, fragile or contradicted "
                        f"(SESOI {p.sesoi:g} logit per SD of the measure; a primary interval inside ±SESOI, on "
                        "either side of 0, is negligible instead); Beyond SESOI: of those, the seeds whose "
                        "95% interval is not inside the SESOI band. Probes report a bias when the 95% interval of the slope at level 0 excludes 0 "
                        f"(Beyond SESOI: the interval is not inside ±{p.sesoi:g} logit per stop). Share and its "
                        "interval: Clopper-Pearson (exact binomial)."))
    t.write(ctx.paths.tables, "planted_operating")
    for f in sorted(ctx.paths.tables.glob("planted_operating.*")):
        ctx.wrote_file(f)
    saved.append("table:planted_operating")

    runs = ctx.read("results/training_log")
    last = runs.sort_values("step").groupby(["condition", "seed"]).tail(1)
    tr = last.groupby("condition", sort=False).agg(accuracy=("accuracy", "mean"), loss_real=("loss_real", "mean"),
                                                   loss_fake=("loss_fake", "mean"), seeds=("seed", "count"),
                                                   seconds=("seconds", "mean")).reset_index()
    order = {c.id: i for i, c in enumerate(conds)}
    tr = tr.sort_values("condition", key=lambda s: s.map(order))
    t = PubTable(tr, [Col("condition", "Condition"), Col("seeds", "Seeds", digits=0),
                      Col("accuracy", "Final accuracy", digits=2), Col("loss_real", "Loss (real)", digits=3),
                      Col("loss_fake", "Loss (fake)", digits=3), Col("seconds", "Seconds per D", digits=1)],
                 caption="Training at the last logged step, means over seeds (accuracy: share of real images "
                         "with a positive logit and fake images with a negative one, over the last logging window).",
                 label="tbl-planted-training")
    t.write(ctx.paths.tables, "planted_training")
    for f in sorted(ctx.paths.tables.glob("planted_training.*")):
        ctx.wrote_file(f)
    saved.append("table:planted_training")

    if gan_conds:
        from .generator import DARK_PROXY_LUMA

        tr = ctx.read("results/training")
        tr = tr[tr["fake"] == "generator"] if "fake" in tr else tr.iloc[:0]
        g = tr.groupby("condition", sort=False).agg(
            share=("real_dark_share", "mean"), real_proxy=("real_dark_share_proxy", "mean"),
            gen_proxy=("gen_dark_share_proxy", "mean"), real_luma=("real_luma_709", "mean"),
            gen_luma=("gen_luma_709", "mean"), real_a=("real_lab_a", "mean"), gen_a=("gen_lab_a", "mean"),
            seeds=("seed", "count")).reset_index()
        g = g.sort_values("condition", key=lambda s: s.map(order))
        long = pd.concat([g.assign(source="real training set", proxy=g["real_proxy"], luma=g["real_luma"],
                                   a=g["real_a"], rank=0),
                          g.assign(source="generator's samples", proxy=g["gen_proxy"], luma=g["gen_luma"],
                                   a=g["gen_a"], share=np.nan, rank=1)])
        long["order"] = long["condition"].map(order)
        long = long.sort_values(["order", "rank"])
        t = PubTable(long, [Col("condition", "Condition"), Col("source", "Images"),
                            Col("share", "Dark share (drawn)", digits=3), Col("proxy", "Dark proxy", digits=3),
                            Col("luma", "Luma", digits=3), Col("a", "a*", digits=2)],
                     caption=("Generator-mode runs, means over seeds: the real training set against the generator's "
                              "samples after training, measured the same way (image-mean Rec. 709 luma and CIELAB "
                              f"a*; dark proxy: share of images whose face centre has luma below "
                              f"{DARK_PROXY_LUMA:g}; dark share: "
                              "the drawn group of the real images)."),
                     label="tbl-planted-gan")
        t.write(ctx.paths.tables, "planted_gan")
        for f in sorted(ctx.paths.tables.glob("planted_gan.*")):
            ctx.wrote_file(f)
        saved.append("table:planted_gan")
    return saved


def _gan_figures(ctx, gan_conds, logs, colours, saved) -> None:
    """Generator mode: D and G loss curves per condition, and real training images against the generator's
    samples (seed ``first_seed``), read from the ``s<seed>_samples.npz`` files the training step wrote."""
    import matplotlib.pyplot as plt

    from ..report.style import TEXT_WIDTH_IN

    p = ctx.config.planted
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 2.2))
    for c in gan_conds:
        d = logs[logs["condition"] == c.id].assign(loss_d=lambda x: x["loss_real"] + x["loss_fake"])
        for ax, col in ((axes[0], "loss_d"), (axes[1], "loss_g")):
            for _, sd in d.groupby("seed"):
                ax.plot(sd["step"], sd[col], color=colours[c.id], lw=0.4, alpha=0.35)
            m = d.groupby("step")[col].mean()
            ax.plot(m.index, m, color=colours[c.id], lw=1.5, label=c.id)
    axes[0].set_ylabel("D loss (real + generated)")
    axes[1].set_ylabel("G loss (non-saturating)")
    for ax in axes:
        ax.set_xlabel("training step (one D and one G update)")
    axes[0].axhline(2 * np.log(2), color="k", lw=0.6, ls=":")
    axes[1].axhline(np.log(2), color="k", lw=0.6, ls=":")
    axes[1].legend(fontsize=7, frameon=False)
    _save(ctx, fig, "planted_gan_training", saved)

    runs = ctx.read("results/training")
    n = 8
    fig, axes = plt.subplots(2 * len(gan_conds), n, figsize=(TEXT_WIDTH_IN, 0.66 * 2 * len(gan_conds) + 0.1),
                             gridspec_kw=dict(wspace=0.02, hspace=0.02))
    axes = np.atleast_2d(axes)
    for i, c in enumerate(gan_conds):
        r = runs[(runs["condition"] == c.id) & (runs["seed"] == p.first_seed)]
        if r.empty:
            raise ValueError(f"no training run of condition {c.id!r} seed {p.first_seed} in results/training")
        rel = str(r["samples"].iloc[0])
        path = (ctx.paths.build / rel).resolve()
        if ctx.paths.build.resolve() not in path.parents:
            raise ValueError(f"results/training names a sample file outside the build: {rel!r}")
        with np.load(path, allow_pickle=False) as z:
            sets = (("real", z["real"]), ("G", z["generated"]))
        _image_rows(axes[2 * i:2 * i + 2], c.id, sets, n)
    _save(ctx, fig, "planted_gan_samples", saved)

    # the audit's skin-group estimate against the planted dark-group share of the real set
    det = ctx.read("results/detections")
    share = {c.id: c.minority_share for c in gan_conds}
    d = det[(det["detector"] == "group") & det["condition"].isin(list(share))].copy()
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN * 0.55, 2.2))
    ax.set_xlim(min(share.values()) - 0.05, max(share.values()) + 0.05)
    _dose_scatter(ax, d, share, np.random.default_rng(0).uniform(-0.006, 0.006, len(d)),
                  "dark-group share of the real training set", "dark-group coefficient\n(logit, audit model)")
    ax.legend(fontsize=7, frameon=False)
    _save(ctx, fig, "planted_gan_dose", saved)
