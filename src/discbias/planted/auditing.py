"""The audit step of the planted-bias study (one per condition): audit every trained discriminator
as a user would, and run the dose-response probes on the same images.

Kept apart from the training step (:mod:`discbias.planted.runs`) and the summary
(:mod:`discbias.planted.study`): the engine reruns a step when the source of its module, or of a
package module it imports, changes, so an edit here re-audits without retraining.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .runs import audits_dir

__all__ = ["CLAIMS", "PROBES", "MODEL_ID", "audit_step", "audit_one", "write_audit_project", "run_user_audit", "run_probes"]

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


def run_probes(weights: Path, images: np.ndarray, cache: Path, levels: dict[str, list[float]], *,
               seed: int) -> pd.DataFrame:
    """Dose-response probes on ``images``: each intervention at each level (and 0), scored through
    :func:`discbias.scoring.scorer.score_arrays` and fitted by
    :func:`discbias.probes.model.fit_dose_response`; one row per probe with the slope at level 0."""
    from ..probes.interventions import apply
    from ..probes.model import fit_dose_response
    from ..scoring.scorer import score_arrays

    rows, arrays, names = [], [], []
    for probe, lv in levels.items():
        for b, img in enumerate(images):
            for level in sorted({0.0, *map(float, lv)}):
                out, _ = apply(img, probe, level)
                rows.append(dict(probe=probe, protocol="nvidia", base=f"b{b}", level=level))
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
    return pd.DataFrame(out)


def audit_one(cond: dict, settings: dict, seed: int, weights: str, folder: str) -> list[dict]:
    """Audit one seed's trained discriminator as a user would (:func:`write_audit_project`,
    :func:`run_user_audit`) and run the dose-response probes (:func:`run_probes`) on the same
    held-out images; plain data in and out (it runs in a worker process when ``[planted] workers``
    > 1, see :mod:`discbias.planted.parallel`). torch and BLAS use ``settings["threads"]`` threads
    here, in a worker or not, so that the scores do not depend on the number of workers.

    Returns
    -------
    list of dict
        The seed's rows of ``planted/detections/<cond>``: one per claim, then one per probe.
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


def _audit_one(cond, p, seed, weights, folder, heldout_set) -> list[dict]:
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
    pt = run_probes(weights, images[:p["n_probe_bases"]], folder / "data" / "cache", levels, seed=seed)
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
    return rows


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
                        on_result=lambda seed, rows: log(f"audited {cond['id']} seed {seed} in "
                                                         f"{rows[0]['seconds']:.1f}s"))
        ctx.write(f"planted/detections/{cond['id']}", pd.DataFrame([row for rows in out for row in rows]))

    return run
