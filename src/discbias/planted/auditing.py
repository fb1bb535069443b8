"""The audit step of the planted-bias study (one per condition): audit every trained discriminator
as a user would, and run the dose-response probes on the same images.

Kept apart from the training step (:mod:`discbias.planted.runs`) and the summary
(:mod:`discbias.planted.study`), so an edit here re-audits without retraining. The audit step's code
version is the source of the modules that run when a network is audited (:data:`AUDIT_MODULES`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .runs import audits_dir

__all__ = ["CLAIMS", "PROBES", "MODEL_ID", "AUDIT_MODULES", "audit_version", "audit_step", "audit_one", "write_audit_project", "run_user_audit",
           "run_probes", "image_luma", "training_comparison", "TRAINING_READING"]

#: The audit's claims, one per planted attribute: id, model term, the attribute it tests, the claimed
#: direction (+1: a higher value of the term scores higher), and the description the audit prints.
CLAIMS = (
    dict(id="luminance", term="luma_709", attribute="luminance", direction=1,
         description="Brighter faces (higher Rec. 709 luma) score higher"),
    dict(id="redness", term="lab_a", attribute="redness", direction=1,
         description="Redder faces (higher CIELAB a*) score higher"),
    dict(id="group", term="dark", attribute="group", direction=-1,
         description="Faces of the darker skin group score lower"),
)
#: The dose-response probes: id, intervention, the attribute it tests, and the config's level list.
PROBES = (
    dict(id="probe_exposure", probe="exposure", attribute="luminance", levels="exposure_levels"),
    dict(id="probe_red", probe="gain_red", attribute="redness", levels="red_levels"),
)
MODEL_ID = "measures"

#: The modules whose code runs when a trained network is audited (:func:`audit_one`): the audit
#: step's code version (:func:`audit_version`). The default (this module's import closure) would
#: miss the network code the scorer loads by name (``discbias.nets.layers``, ``pickle_reader``, ...),
#: so an edit there would not re-audit, and would include code that never runs here (the
#: replication's configuration, the paper's renderer, the Bayesian fits), so an edit there would.
#: ``tests/test_planted_version.py`` audits a tiny network under a profiler and fails if a discbias
#: module whose functions ran is missing here.
AUDIT_MODULES = (
    "discbias.audit.common", "discbias.audit.config", "discbias.audit.ratings", "discbias.audit.report",
    "discbias.audit.run", "discbias.audit.validate", "discbias.claims", "discbias.engine", "discbias.errors",
    "discbias.fetch", "discbias.formulas", "discbias.frames", "discbias.imports", "discbias.integrity",
    "discbias.measures.color", "discbias.measures.image", "discbias.measures.io", "discbias.nets",
    "discbias.nets.discriminator", "discbias.nets.fir", "discbias.nets.layers", "discbias.nets.pickle_reader",
    "discbias.paths", "discbias.planted.auditing", "discbias.planted.data", "discbias.probes.interventions",
    "discbias.probes.model", "discbias.probes.training", "discbias.progress", "discbias.provenance",
    "discbias.report.escape", "discbias.report.labels", "discbias.report.tables", "discbias.results",
    "discbias.safeio", "discbias.scoring.cache", "discbias.scoring.images", "discbias.scoring.protocols",
    "discbias.scoring.scorer", "discbias.scoring.sources", "discbias.stages", "discbias.stats.crossed",
    "discbias.stats.degenerate", "discbias.stats.regression",
)


def audit_version() -> str:
    """The audit step's code version: :func:`discbias.engine.modules_version` of :data:`AUDIT_MODULES`.

    Examples
    --------
    >>> len(audit_version())
    16
    """
    from ..engine import modules_version

    return modules_version(AUDIT_MODULES)


def _toml_str(s: str) -> str:
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string


def write_audit_project(folder: Path, weights: Path, images: np.ndarray, attrs: pd.DataFrame, *,
                        sesoi: float, seed: int) -> Path:
    """Write what a user of ``discbias audit`` writes: the images, a manifest and an audit configuration
    (``<folder>/analysis/audit.toml``) with one model and one claim per planted attribute; return the
    configuration's path."""
    from PIL import Image

    img_dir = folder / "data" / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for i, px in enumerate(images):
        name = f"images/h{i:04d}.png"
        Image.fromarray(px).save(folder / "data" / name)
        names.append(name)
    man = pd.DataFrame({"image": names, "group": attrs["group"].to_numpy(),
                        "dark": (attrs["group"] == "dark").astype(int).to_numpy(),
                        "exposure": attrs["exposure"].to_numpy(), "red_gain": attrs["red_gain"].to_numpy()})
    man.to_csv(folder / "data" / "manifest.csv", index=False)
    lines = ["[audit]", 'name = "audit"', f"seed = {int(seed)}", "", "[data]", 'manifest = "../data/manifest.csv"',
             'groups = ["group"]', "", "[scoring]", f"weights = {_toml_str(Path(weights).resolve())}",
             'protocols = ["nvidia"]', "batch_size = 32", "min_side = 8", "", "[measures]",
             'image = ["luma_709", "lab_a"]', "", "[[models]]", f'id = "{MODEL_ID}"',
             f'formula = "score ~ {" + ".join(c["term"] for c in CLAIMS)}"',
             f'standardize = [{", ".join(_toml_str(c["term"]) for c in CLAIMS if c["term"] != "dark")}]',
             'compare = ["ols_hc3"]']
    for c in CLAIMS:
        lines += ["", "[[claims]]", f'id = "{c["id"]}"', f"description = {_toml_str(c['description'])}",
                  f'model = "{MODEL_ID}"', f'term = "{c["term"]}"', f"direction = {c['direction']}",
                  f"sesoi = {float(sesoi)!r}", 'sesoi_units = "logit per SD of the measure (per group difference for dark)"',
                  'sesoi_reference = "the planted-bias study\'s configuration"']
    cfg = folder / "analysis" / "audit.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def run_user_audit(config_path: Path, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run an audit configuration's data, scoring, measures and fit steps (its figures and report are
    not needed here) on the audit's own engine; return its ``claims`` and ``models`` tables."""
    from ..audit.config import load_audit_config
    from ..audit.run import audit_engine
    from ..audit.validate import preflight
    from ..paths import ProjectPaths

    cfg = load_audit_config(config_path)
    preflight(cfg)
    paths = ProjectPaths(root, cfg.audit.name).ensure()
    eng = audit_engine(cfg, paths, formats=())
    eng.run(group=["measure", "fit"], context=dict(config=cfg, paths=paths, formats=(), draft=False, log=None,
                                                   progress=False))
    return eng.store.get("results/claims"), eng.store.get("results/models")


def image_luma(images: np.ndarray) -> np.ndarray:
    """Mean Rec. 709 luma of each uint8 image (0-1), as :func:`discbias.measures.measure_images` reports
    ``luma_709`` for a whole image.

    Examples
    --------
    >>> image_luma(np.full((2, 4, 4, 3), 255, dtype=np.uint8)).round(6).tolist()
    [1.0, 1.0]
    """
    from ..measures.color import luma_709

    return luma_709(np.asarray(images, dtype=np.float64) / 255.0).mean(axis=(1, 2))


def run_probes(weights: Path, images: np.ndarray, cache: Path, levels: dict[str, list[float]], *,
               seed: int, return_scores: bool = False):
    """Dose-response probes on ``images``: each intervention at each level (and 0), scored through
    :func:`discbias.scoring.scorer.score_arrays` and fitted by
    :func:`discbias.probes.model.fit_dose_response`; one row per probe with the slope at level 0.
    With ``return_scores``, also the scored probe images (``probe, protocol, base, level, score,
    luma_709``), for :func:`training_comparison`."""
    from ..probes.interventions import apply
    from ..probes.model import fit_dose_response
    from ..scoring.scorer import score_arrays

    rows, arrays, names = [], [], []
    for probe, lv in levels.items():
        for b, img in enumerate(images):
            for level in sorted({0.0, *map(float, lv)}):
                out, _ = apply(img, probe, level)
                rows.append(dict(probe=probe, protocol="nvidia", base=f"b{b}", level=level,
                                 luma_709=float(image_luma(out[None])[0])))
                arrays.append(out)
                names.append(f"{probe}:{b}:{level}")
    run = score_arrays(arrays, weights, cache=cache, names=names, min_side=8, batch_size=32)
    scores = run.table.set_index("image")["score"]
    df = pd.DataFrame(rows).assign(score=[float(scores[n]) for n in names])
    out = []
    for probe in levels:
        tidy, _ = fit_dose_response(df, probe=probe, protocol="nvidia", n_boot=50, seed=seed)
        r = tidy[tidy["term"] == "slope_at_level_0"]
        out.append(dict(probe=probe, estimate=float(r["estimate"].iloc[0]) if len(r) else float("nan"),
                        conf_low=float(r["conf_low"].iloc[0]) if len(r) else float("nan"),
                        conf_high=float(r["conf_high"].iloc[0]) if len(r) else float("nan"),
                        converged=bool(r["converged"].iloc[0]) if len(r) else False,
                        warnings=str(r["warnings"].iloc[0]) if len(r) else "slope not estimated"))
    return (pd.DataFrame(out), df) if return_scores else pd.DataFrame(out)


#: How :func:`training_comparison` reads the slope of D's score at the real training set's densest luma.
TRAINING_READING = {1: "prefers brighter than the real training data",
                    -1: "prefers darker than the real training data",
                    0: "no preference away from the real training data's mode"}


def training_comparison(probe_scores: pd.DataFrame, real_luma: np.ndarray, fake_luma: np.ndarray | None, *,
                        seed: int, n_boot: int = 200) -> dict:
    """Is D's luminance preference "explicable by its training data"? The package's comparison
    (:func:`discbias.probes.training.compare_to_training`) run on the exposure probe's images, with the
    network's own real training set as the reference distribution, in a setting where what the
    training data held is known.

    Returns one dict: D's preferred luma over the probed range (``preferred_luma`` with its bootstrap
    interval, ``at_edge`` when it lies at an end of the range), its quantile in the real and in the
    fake training set, the real set's mode, and the slope of the score at that mode with its 95%
    interval, read as ``reading_sign`` (+1: the score still rises beyond where the real data is
    densest; -1: it falls; 0: the interval includes 0).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lv = np.tile([-1.0, -0.5, 0.0, 0.5, 1.0], 8); base = np.repeat(np.arange(8), 5)
    >>> luma = 0.45 + 0.1 * lv + rng.normal(0, 0.01, 8)[base]
    >>> score = 3 * luma + rng.normal(0, 0.3, 8)[base] + rng.normal(0, 0.02, 40)
    >>> d = pd.DataFrame(dict(probe="exposure", protocol="nvidia", base=base, level=lv, score=score, luma_709=luma))
    >>> r = training_comparison(d, rng.normal(0.45, 0.05, 500), None, seed=0, n_boot=100)
    >>> r["reading_sign"], bool(r["slope_at_real_mode"] > 0)
    (1, True)
    """
    from ..probes.training import ReferenceDistribution, compare_to_training

    real = ReferenceDistribution(values=np.asarray(real_luma, dtype=float), source="real training set")
    tidy, _ = compare_to_training(probe_scores, real, measure="luma_709", probe="exposure", n_boot=n_boot, seed=seed)
    t = tidy.set_index("term")
    nan = float("nan")
    pref = t.loc["preferred_value"]
    q = t.loc["preferred_quantile"]
    has_slope = "slope_at_training_mode" in t.index
    sl = t.loc["slope_at_training_mode"] if has_slope else None
    lo, hi = (float(sl["conf_low"]), float(sl["conf_high"])) if has_slope else (nan, nan)
    converged = bool(pref["converged"])
    estimated = bool(has_slope and converged and np.isfinite(lo) and np.isfinite(hi))
    sign = (1 if lo > 0 else -1 if hi < 0 else 0) if estimated else 0
    fake = ReferenceDistribution(values=np.asarray(fake_luma, dtype=float)) if fake_luma is not None else None
    return dict(preferred_luma=float(pref["estimate"]), preferred_luma_low=float(pref["conf_low"]),
                preferred_luma_high=float(pref["conf_high"]), at_edge=str(pref.get("at_edge")),
                preferred_quantile_real=float(q["estimate"]), preferred_quantile_real_low=float(q["conf_low"]),
                preferred_quantile_real_high=float(q["conf_high"]),
                preferred_quantile_fake=fake.quantile_of(float(pref["estimate"])) if fake is not None else nan,
                real_mode=float(t.loc["training_mode", "estimate"]), real_median=float(t.loc["training_median", "estimate"]),
                real_luma_mean=float(np.mean(real_luma)),
                fake_luma_mean=float(np.mean(fake_luma)) if fake_luma is not None else nan,
                slope_at_real_mode=float(sl["estimate"]) if has_slope else nan,
                slope_low=lo, slope_high=hi, reading_sign=sign, estimated=estimated,
                reading=TRAINING_READING[sign] if estimated else
                ("the real data's mode lies outside the probed range" if not has_slope else
                 "fit did not converge" if not converged else "the slope's interval is not estimable"),
                converged=converged, warnings=str(pref.get("warnings", "")))


def _generated(path: Path) -> np.ndarray:
    """The samples a generator-mode training run measured (``measured`` in its .npz, read without
    pickle); none (an empty array) if the file has no such array."""
    with np.load(path, allow_pickle=False) as z:
        return z["measured"] if "measured" in z.files else np.zeros((0,) + z["generated"].shape[1:], np.uint8)


def audit_one(cond: dict, settings: dict, seed: int, weights: str, folder: str) -> list[dict]:
    """Audit one seed's trained discriminator as a user would (:func:`write_audit_project`,
    :func:`run_user_audit`) and run the dose-response probes (:func:`run_probes`) on the same
    held-out images; plain data in and out (it runs in a worker process when ``[planted] workers``
    > 1, see :mod:`discbias.planted.parallel`). torch and BLAS use ``settings["threads"]`` threads
    here, in a worker or not, so that the scores do not depend on the number of workers.

    Returns
    -------
    rows : list of dict
        The seed's rows of ``planted/detections/<cond>``: one per claim, then one per probe.
    comparison : dict
        Its row of ``planted/training_comparison/<cond>`` (:func:`training_comparison`).
    """
    import torch
    from threadpoolctl import threadpool_limits

    from .data import heldout_set

    p = settings
    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(p["threads"]))
    try:
        with threadpool_limits(limits=int(p["threads"])):
            return _audit_one(cond, p, seed, Path(weights), Path(folder), heldout_set)
    finally:
        torch.set_num_threads(old_threads)


def _audit_one(cond, p, seed, weights, folder, heldout_set) -> tuple[list[dict], dict]:
    from .data import Condition, training_sets

    rows = []
    t0 = time.perf_counter()
    images, attrs = heldout_set(p["n_heldout"], p["resolution"], seed, exposure_sd=p["heldout_exposure_sd"],
                                red_sd=p["heldout_red_sd"])
    cfg_path = write_audit_project(folder, weights, images, attrs, sesoi=p["sesoi"], seed=seed)
    claims, models = run_user_audit(cfg_path, folder)
    main = models[(models["model"] == MODEL_ID) & (models["specification"] == "main")].set_index("term")
    for c in CLAIMS:
        cl = claims.set_index("claim_id").loc[c["id"]]
        verdict = str(cl["verdict"])
        m = main.loc[c["term"]]
        sign = 0
        if verdict in ("robust", "fragile"):
            sign = c["direction"]
        elif verdict == "contradicted":
            sign = -c["direction"]
        rows.append(dict(condition=cond["id"], seed=seed, detector=c["id"], method="audit claim",
                         attribute=c["attribute"], term=c["term"], estimate=float(m["estimate"]),
                         conf_low=float(m["conf_low"]), conf_high=float(m["conf_high"]),
                         p_value=float(m["p_value"]), verdict=verdict, reported_sign=sign,
                         within_sesoi=bool(-p["sesoi"] < m["conf_low"] and m["conf_high"] < p["sesoi"])))
    levels = {pr["probe"]: list(p[pr["levels"]]) for pr in PROBES}
    pt, probe_scores = run_probes(weights, images[:p["n_probe_bases"]], folder / "data" / "cache", levels,
                                  seed=seed, return_scores=True)
    c = Condition(cond["id"], luminance_shift=cond["luminance_shift"], redness_shift=cond["redness_shift"],
                  minority_share=cond["minority_share"], fake_share=cond["fake_share"],
                  fake=cond.get("fake", "fixed"))
    real, fake, _ = training_sets(c, p["n_train"], p["resolution"], seed, exposure_sd=p["exposure_sd"],
                                  red_sd=p["red_sd"])
    if c.fake == "generator":  # the fake set is the generator's samples, saved beside the checkpoint
        fake = _generated(Path(weights).with_name(f"s{seed}_samples.npz"))
    tc = training_comparison(probe_scores, image_luma(real), image_luma(fake) if len(fake) else None, seed=seed)
    for pr in PROBES:
        x = pt.set_index("probe").loc[pr["probe"]]
        lo, hi = x["conf_low"], x["conf_high"]
        sign = 1 if lo > 0 else (-1 if hi < 0 else 0)
        rows.append(dict(condition=cond["id"], seed=seed, detector=pr["id"], method="dose-response probe",
                         attribute=pr["attribute"], term=f"slope at level 0 ({pr['probe']})",
                         estimate=float(x["estimate"]), conf_low=float(lo), conf_high=float(hi),
                         p_value=float("nan"),
                         verdict=("interval excludes 0" if sign else "interval includes 0")
                         + ("" if x["converged"] else " (not converged)"),
                         reported_sign=sign if x["converged"] else 0, within_sesoi=None))
    secs = time.perf_counter() - t0
    for row in rows:
        row["seconds"] = secs
    return rows, dict(condition=cond["id"], seed=seed, **tc)


def audit_step(cond_cfg):
    def run(ctx) -> None:
        from .parallel import map_seeds, resolve_workers

        p = ctx.config.planted
        cond = cond_cfg.model_dump(mode="json")
        settings = p.model_dump(mode="json", exclude={"conditions"})
        runs = ctx.read(f"planted/runs/{cond['id']}")
        log = getattr(ctx, "log", None) or (lambda s: None)
        tasks = [(int(r["seed"]), (cond, settings, int(r["seed"]), str(ctx.paths.build / r["checkpoint"]),
                                   str(audits_dir(ctx.paths) / cond["id"] / f"s{int(r['seed'])}")))
                 for r in runs.to_dict("records")]
        workers = resolve_workers(p.workers, seeds=len(tasks), threads=p.threads)
        out = map_seeds(audit_one, tasks, workers=workers, threads=p.threads, label=ctx.step.name,
                        on_result=lambda seed, res: log(f"audited {cond['id']} seed {seed} in "
                                                        f"{res[0][0]['seconds']:.1f}s"))
        ctx.write(f"planted/detections/{cond['id']}", pd.DataFrame([row for rows, _ in out for row in rows]))
        ctx.write(f"planted/training_comparison/{cond['id']}", pd.DataFrame([tc for _, tc in out]))

    return run
