"""The planted-bias validation study as engine steps: train, audit, summarise, figures, render.

``discbias report --config analysis/planted.toml`` (``make report CONFIG=analysis/planted.toml``)
runs, on the study engine (:mod:`discbias.engine`; only what changed reruns):

==========================  =============================================================================
step                        what it does
==========================  =============================================================================
``planted:train:<cond>``    for every seed: draw the real and fake training sets
                            (:func:`~discbias.planted.data.training_sets`), train a discriminator
                            (:func:`~discbias.planted.train.train_discriminator`), save it in NVIDIA's pickle
                            layout (``build/<id>/checkpoints/<cond>/s<seed>.pkl``); tables
                            ``planted/train_log/<cond>``, ``planted/runs/<cond>``
``planted:audit:<cond>``    for every seed, the audit exactly as a user runs it: held-out images with a
                            manifest and an audit configuration written under ``build/<id>/audits/``, run by
                            :func:`discbias.audit.run.audit_engine` (inputs, score through
                            :mod:`discbias.scoring` from the pickle, measures, the model
                            ``score ~ luma_709 + lab_a + dark`` standardized, the claims engine's verdicts
                            with a SESOI); and the dose-response probes (exposure and red gain,
                            :mod:`discbias.probes`) on the same images; table ``planted/detections/<cond>``
``planted:summary``         operating characteristics: for each condition and claim the share of seeds in
                            which the audit reports the planted direction (power) or any bias where nothing
                            was planted (false-positive rate), with Clopper-Pearson intervals
                            (``results/operating``, ``results/detections``, ``results/training``) and
                            ``values.json``
``planted:figures``         loss curves, sample images, the estimated bias against the planted shift
``publish:results``         ``build/<id>/results/*.csv``
``render``                  ``build/<id>/report/paper.{qmd,html,pdf}`` from ``report/planted.qmd.j2``
==========================  =============================================================================
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import ProjectPaths
from .runs import audits_dir, checkpoints_dir
from .config import PlantedConfig, load_planted_config
from .data import Condition
from .auditing import CLAIMS, PROBES, audit_step, audit_version
from .runs import _condition, train_step, training_version

log = logging.getLogger(__name__)

__all__ = ["PlantedPaths", "checkpoints_dir", "audits_dir", "planted_engine", "run_planted", "CLAIMS", "clopper_pearson"]

TEMPLATE = "planted.qmd.j2"
REPORTED = ("robust", "fragile", "contradicted")
#: The settings each kind of step depends on (a change to another setting does not retrain or re-audit).
TRAINING_SETTINGS = ("resolution", "seeds", "first_seed", "n_train", "steps", "batch_size", "lr", "r1_gamma",
                     "r1_interval", "exposure_sd", "red_sd", "threads", "network")
#: Further settings the training steps of generator-mode conditions depend on.
GAN_SETTINGS = ("gan_steps", "gan_batch_size", "n_gan_measure", "generator")
#: The audit redraws each network's training sets for the training-distribution comparison, so the
#: settings that draw them are audit settings too.
AUDIT_SETTINGS = ("resolution", "n_heldout", "heldout_exposure_sd", "heldout_red_sd", "n_probe_bases",
                  "exposure_levels", "red_levels", "sesoi", "n_train", "exposure_sd", "red_sd")


def PlantedPaths(root, study: str) -> ProjectPaths:
    """The study's :class:`~discbias.paths.ProjectPaths` (build in ``build/<id>``): the package's one
    path class; the trained checkpoints and the per-network audits live in
    :func:`checkpoints_dir` and :func:`audits_dir` under its build folder.

    Examples
    --------
    >>> PlantedPaths("/tmp/x", "planted").build.as_posix()
    '/tmp/x/build/planted'
    """
    return ProjectPaths(Path(root), study=study)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial share ``k / n``.

    Examples
    --------
    >>> lo, hi = clopper_pearson(0, 10)
    >>> round(lo, 4), round(hi, 4)
    (0.0, 0.3085)
    >>> [round(x, 4) for x in clopper_pearson(10, 10)]
    [0.6915, 1.0]
    """
    from scipy.stats import beta

    if n <= 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def planted_sign(cond: Condition, attribute: str) -> int:
    """The sign of the planted effect on the score (+1: a higher attribute value scores higher; for
    ``group``, +1: the dark group scores higher), 0 when nothing is planted.

    In fixed mode the sign is that of the real-minus-fake difference D is trained on. In generator
    mode it is the *hypothesis* under test, not a difference D is shown directly (its fake images are
    the generator's imitation of the real set): a dark-group share of the real set below 0.5 is
    hypothesised to make D score the dark group lower (the explanation Grissom et al. weigh for their
    finding: the group under-represented in the training data is scored lower), above 0.5 higher; the
    generator-mode null is a share of 0.5.

    Examples
    --------
    >>> planted_sign(Condition("a", luminance_shift=0.5), "luminance"), planted_sign(Condition("n"), "luminance")
    (1, 0)
    >>> planted_sign(Condition("g", minority_share=0.2), "group")
    -1
    >>> planted_sign(Condition("g", minority_share=0.05, fake="generator"), "group")
    -1
    >>> planted_sign(Condition("g", minority_share=0.5, fake="generator"), "group")
    0
    """
    v = dict(luminance=cond.luminance_shift, redness=cond.redness_shift,
             group=cond.minority_share - cond.reference_share)[attribute]
    return int(np.sign(v))


# ------------------------------------------------------------------------------------------ summary

def operating_characteristics(detections: pd.DataFrame, conditions: list[Condition],
                              level: float = 0.95, sesoi: float = 0.0) -> pd.DataFrame:
    """For each condition and detector: the share of seeds in which it reports the planted direction
    (``power``, where the detector's attribute is planted) or any bias (``false_positive_rate``, where
    it is not), with the count, the seeds and the Clopper-Pearson interval; ``k_beyond_sesoi`` counts
    the reports whose interval is not inside ``±sesoi`` (claims: as recorded by the audit step;
    probes: in logits per unit of the probe's level).

    Examples
    --------
    >>> d = pd.DataFrame(dict(condition=["n"] * 4 + ["l"] * 4, seed=[0, 1, 2, 3] * 2, detector="luminance",
    ...                       method="audit claim", attribute="luminance", reported_sign=[0, 0, 1, 0, 1, 1, 1, 0],
    ...                       estimate=0.5))
    >>> t = operating_characteristics(d, [Condition("n"), Condition("l", luminance_shift=1.0)])
    >>> t[["condition", "quantity", "k", "n", "share"]].values.tolist()
    [['n', 'false_positive_rate', 1, 4, 0.25], ['l', 'power', 3, 4, 0.75]]
    """
    by_id = {c.id: c for c in conditions}
    rows = []
    for (cond_id, det), d in detections.groupby(["condition", "detector"], sort=False):
        cond = by_id[cond_id]
        attr = d["attribute"].iloc[0]
        sign = planted_sign(cond, attr)
        n = len(d)
        if sign:
            k = int((d["reported_sign"] == sign).sum())
            quantity = "power"
        else:
            k = int((d["reported_sign"] != 0).sum())
            quantity = "false_positive_rate"
        lo, hi = clopper_pearson(k, n, level)
        reported = (d["reported_sign"] == sign) if sign else (d["reported_sign"] != 0)
        if d["method"].iloc[0] == "audit claim":
            inside = (d["within_sesoi"].map(lambda v: v is True or v == 1.0) if "within_sesoi" in d
                      else pd.Series(False, index=d.index))
        else:  # a probe: the same band, in logits per unit of the probe's level (stops)
            inside = (d["conf_low"] > -sesoi) & (d["conf_high"] < sesoi) if sesoi > 0 else pd.Series(False, index=d.index)
        k_beyond = int((reported & ~inside).sum())
        rows.append(dict(condition=cond_id, detector=det, method=d["method"].iloc[0], attribute=attr,
                         planted=bool(sign), planted_sign=sign, luminance_shift=cond.luminance_shift,
                         redness_shift=cond.redness_shift, minority_share=cond.minority_share,
                         quantity=quantity, k=k, n=n, share=k / n if n else float("nan"), conf_low=lo, conf_high=hi,
                         conf_level=level, method_interval="Clopper-Pearson",
                         n_opposite=int((d["reported_sign"] == -sign).sum()) if sign else 0,
                         k_beyond_sesoi=k_beyond, k_positive=int((d["reported_sign"] == 1).sum()),
                         k_negative=int((d["reported_sign"] == -1).sum()),
                         mean_estimate=float(d["estimate"].mean())))
    return pd.DataFrame(rows)


def training_comparison_summary(tc: pd.DataFrame, conditions: list[Condition]) -> dict:
    """Per condition: how many seeds' discriminators the training-distribution comparison reads as
    preferring brighter / darker than the real training data (slope at the real set's mode, 95%
    interval excluding 0) or neither, with the mean preferred-luma quantile in the real and the fake
    training sets and the mean real-minus-fake training luma.

    Examples
    --------
    >>> tc = pd.DataFrame(dict(condition="n", seed=[0, 1, 2], reading_sign=[1, 0, 0], converged=True,
    ...                        preferred_quantile_real=[.9, .5, .4], preferred_quantile_fake=[.9, .5, .5],
    ...                        real_luma_mean=.5, fake_luma_mean=.5, at_edge="False"))
    >>> s = training_comparison_summary(tc, [Condition("n")])["n"]
    >>> s["n"], s["k_brighter"], s["k_darker"], s["k_neither"], s["k_not_estimated"]
    (3, 1, 0, 2, 0)
    """
    out = {}
    for c in conditions:
        d = tc[tc["condition"] == c.id]
        ok = d["converged"].astype(bool) if len(d) else pd.Series(dtype=bool)
        sign = d["reading_sign"]
        est = d["estimated"].astype(bool) if "estimated" in d else ok
        out[c.id] = dict(n=int(len(d)), k_brighter=int(((sign == 1) & est).sum()),
                         k_darker=int(((sign == -1) & est).sum()), k_neither=int(((sign == 0) & est).sum()),
                         k_not_estimated=int((~est).sum()),
                         k_at_edge=int((d["at_edge"].astype(str) == "True").sum()),
                         mean_quantile_real=float(d["preferred_quantile_real"].mean()) if len(d) else float("nan"),
                         mean_quantile_fake=float(d["preferred_quantile_fake"].mean()) if len(d) else float("nan"),
                         mean_real_minus_fake_luma=float((d["real_luma_mean"] - d["fake_luma_mean"]).mean())
                         if len(d) else float("nan"))
    return out


def _summary_step(ctx) -> None:
    from ..pipeline import software_versions
    from .generator import DARK_PROXY_LUMA
    from .parallel import resolve_workers
    from .train import network_kwargs

    cfg: PlantedConfig = ctx.config
    p = cfg.planted
    conds = [_condition(c) for c in p.conditions]
    det = pd.concat([ctx.read(f"planted/detections/{c.id}") for c in conds], ignore_index=True)
    runs = pd.concat([ctx.read(f"planted/runs/{c.id}") for c in conds], ignore_index=True)
    logs = pd.concat([ctx.read(f"planted/train_log/{c.id}") for c in conds], ignore_index=True)
    tc = pd.concat([ctx.read(f"planted/training_comparison/{c.id}") for c in conds], ignore_index=True)
    ctx.write("results/training_comparison", tc)
    op = operating_characteristics(det, conds, sesoi=p.sesoi)
    ctx.write("results/operating", op)
    ctx.write("results/detections", det)
    ctx.write("results/training", runs)
    ctx.write("results/training_log", logs)
    null_ids = [c.id for c in conds if not c.planted]
    ops = {}
    for r in op.to_dict("records"):
        ops.setdefault(r["condition"], {})[r["detector"]] = {k: r[k] for k in
                                                             ("quantity", "k", "n", "share", "conf_low", "conf_high",
                                                              "n_opposite", "k_beyond_sesoi", "k_positive",
                                                              "k_negative", "mean_estimate", "planted")}
    lum = [c for c in conds if c.luminance_shift and not c.redness_shift and c.minority_share == c.fake_share]
    strongest = max(lum, key=lambda c: abs(c.luminance_shift)).id if lum else None
    audit_secs = det.groupby(["condition", "seed"])["seconds"].first().groupby("condition").sum()
    gan_cols = ["real_luma_709", "gen_luma_709", "real_lab_a", "gen_lab_a", "real_dark_share_proxy",
                "gen_dark_share_proxy", "real_dark_share", "final_loss_g", "final_loss_real", "final_loss_fake"]

    def _gan(c):
        r = runs[runs["condition"] == c.id]
        if c.fake != "generator" or not set(gan_cols) <= set(r.columns):
            return {}
        return dict(gan={k: float(r[k].mean()) for k in gan_cols} | dict(
            steps=int(r["steps"].iloc[0]), cpu_seconds_per_run=float(r["cpu_seconds"].mean()),
            generator_params=int(r["generator_params"].iloc[0])))

    per_cond = {c.id: dict(train_minutes=float(runs.loc[runs["condition"] == c.id, "seconds"].sum() / 60),
                           audit_minutes=float(audit_secs.get(c.id, 0.0) / 60),
                           luminance_shift=c.luminance_shift, redness_shift=c.redness_shift,
                           minority_share=c.minority_share, fake_share=c.fake_share, planted=c.planted,
                           n_seeds=int((runs["condition"] == c.id).sum()),
                           mean_final_accuracy=float(runs.loc[runs["condition"] == c.id, "final_accuracy"].mean()),
                           fake=c.fake, reference_share=c.reference_share,
                           cpu_seconds_per_run=(float(runs.loc[runs["condition"] == c.id, "cpu_seconds"].mean())
                                                if "cpu_seconds" in runs else float("nan")),
                           **_gan(c))
                for c in conds}
    values = dict(
        meta=dict(title=cfg.title, study_id=cfg.id, software=software_versions(), build_date=time.strftime("%Y-%m-%d")),
        planted=dict(
            settings=p.model_dump(mode="json", exclude={"conditions", "network"}),
            network=network_kwargs(p.resolution, **p.network.model_dump()),
            params=int(runs["params"].iloc[0]),
            conditions=per_cond, condition_order=[c.id for c in conds], null_conditions=null_ids,
            strongest_luminance=strongest, operating=ops,
            generator_conditions=[c.id for c in conds if c.fake == "generator"],
            dark_proxy_luma=DARK_PROXY_LUMA,
            generator_null=[c.id for c in conds if c.fake == "generator" and not c.planted],
            fixed_null=[c.id for c in conds if c.fake != "generator" and not c.planted],
            detectors=[dict(id=c["id"], method="audit claim", attribute=c["attribute"], term=c["term"],
                            description=c["description"]) for c in CLAIMS]
            + [dict(id=pr["id"], method="dose-response probe", attribute=pr["attribute"], term=pr["probe"],
                    description=f"slope of the {pr['probe']} dose-response at level 0") for pr in PROBES],
            training_comparison=training_comparison_summary(tc, conds),
            n_runs=int(len(runs)), train_minutes=float(runs["seconds"].sum() / 60),
            audit_minutes=float(audit_secs.sum() / 60),
            threads=p.threads, cpu_count=os.cpu_count(),
            load_average=float(runs["load_average"].mean()) if "load_average" in runs else float("nan"),
            workers=resolve_workers(p.workers, seeds=p.seeds, threads=p.threads)))
    ctx.write_value("values", values)


# ------------------------------------------------------------------------------------------ figures

def _figures_step(ctx) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from .figures import planted_figures

    saved = planted_figures(ctx)
    ctx.write_value("planted/figures", dict(saved=saved))


def _render_step(ctx) -> None:
    from ..report.render import render_qmd
    from ..stages import render_document_step

    render_document_step(ctx, render_qmd(ctx.paths, ctx.paths.templates, TEMPLATE, labels=dict(ctx.config.labels)))


def planted_engine(cfg: PlantedConfig, paths: PlantedPaths, formats=("html", "pdf")):
    """The study's engine (see the module docstring for the steps).

    Examples
    --------
    >>> import tempfile
    >>> cfg = load_planted_config("analysis/planted-quick.toml")
    >>> e = planted_engine(cfg, PlantedPaths(tempfile.mkdtemp(), cfg.id))
    >>> e.order()[:2], e.order()[-3:]
    (['planted:train:unplanted', 'planted:audit:unplanted'], ['planted:figures', 'publish:results', 'render'])
    """
    from ..engine import Engine, Step
    from ..stages import _publish_results_step, files_stamp, study_store

    p = cfg.planted
    settings = p.model_dump(mode="json", exclude={"conditions"})
    training = {k: settings[k] for k in TRAINING_SETTINGS}
    auditing = {k: settings[k] for k in AUDIT_SETTINGS}
    steps = []
    for c in p.conditions:
        cd = c.model_dump(mode="json")
        tr = training
        if c.fake == "fixed":
            cd.pop("fake")  # the setting's default: the fixed-fake steps' parameters are unchanged
        else:
            tr = {**training, **{k: settings[k] for k in GAN_SETTINGS}}
        steps.append(Step(f"planted:train:{c.id}", train_step(c), writes=[f"planted/train_log/{c.id}",
                                                                            f"planted/runs/{c.id}"],
                          group="train", params=dict(condition=cd, settings=tr),
                          version=training_version()))
        steps.append(Step(f"planted:audit:{c.id}", audit_step(c), reads=[f"planted/runs/{c.id}"],
                          writes=[f"planted/detections/{c.id}", f"planted/training_comparison/{c.id}"], group="audit",
                          params=dict(condition=cd, settings=auditing), version=audit_version()))
    ids = [c.id for c in p.conditions]
    steps.append(Step("planted:summary", _summary_step,
                      reads=[t for i in ids for t in (f"planted/runs/{i}", f"planted/detections/{i}",
                                                      f"planted/train_log/{i}", f"planted/training_comparison/{i}")],
                      writes=["results/operating", "results/detections", "results/training",
                              "results/training_log", "results/training_comparison", "values"], group="fit",
                      params=dict(config=cfg.model_dump(mode="json"))))
    steps.append(Step("planted:figures", _figures_step,
                      reads=["values", "results/operating", "results/detections", "results/training_log",
                             "results/training", "results/training_comparison"],
                      writes=["planted/figures"], group="figures", params=dict(labels=dict(cfg.labels))))
    steps.append(Step("publish:results", _publish_results_step,
                      optional_reads=["results/operating", "results/detections", "results/training",
                                      "results/training_log", "results/training_comparison"],
                      writes=["published/results"], group="fit"))
    steps.append(Step("render", _render_step, reads=["values", "published/results", "planted/figures"],
                      writes=["report/render"], group="render",
                      params=dict(formats=list(formats), templates=files_stamp(paths.templates / TEMPLATE),
                                  labels=dict(cfg.labels))))
    return Engine(steps, study_store(paths), manifests=paths.manifests)


def run_planted(cfg: PlantedConfig, root, *, formats=("html", "pdf"), force: bool = False, log=None) -> dict:
    """Run the study (every step that is out of date); return the build folder and the engine's run table."""
    paths = PlantedPaths(Path(root).resolve(), cfg.id)
    paths.ensure()
    for d in (checkpoints_dir(paths), audits_dir(paths)):
        d.mkdir(parents=True, exist_ok=True)
    eng = planted_engine(cfg, paths, formats)
    groups = None if formats else ["train", "audit", "fit", "figures"]
    from .parallel import shutdown_pool

    try:
        steps = eng.run(groups, force=force, log=log,
                        context=dict(config=cfg, paths=paths, formats=tuple(formats), log=log))
    finally:
        shutdown_pool()  # the seeds' worker processes (planted.parallel) are kept across steps, not after
    return dict(build=paths.build, steps=steps)

