"""Controlled colour and luminance probes of the discriminator (needs weights).

Configured by a ``[probes]`` table in the study configuration::

    [probes]
    weights = "stylegan3-r-ffhq-1024x1024.pkl"   # registry name (in the weights dir) or a file path
    images = "data/probe-images"                 # base images: folder, manifest CSV or file
    protocols = ["nvidia", "grissom2024"]
    face_method = "template"                     # skin/background masks (FFHQ-aligned images)
    fields = true                                # uniform colour fields over lightness x hue
    reference = "data/ffhq-sample"               # training-distribution reference (see below)
    reference_measure = "luma_709"
    # cache = "data/cache"                       # default: [scoring] cache, else $DISCBIAS_CACHE_DIR or data/cache
    # device = "cpu"; batch_size = 8; resolution = 1024
    [probes.levels]                              # optional: override default level grids
    exposure = [-2, -1, 0, 1, 2]

Probe images are scored by the scoring stage (:mod:`discbias.scoring`, ``single`` grouping) into
its score cache, the one ``discbias score`` and the rescoring analysis use; protocols are input
names or tables of :class:`~discbias.scoring.ScoringProtocol` settings with a ``name``. Base and
reference images are found and decoded by the scoring stage's rules, so a bad file is skipped with
its reason exactly as in scoring.

``reference`` is an image folder/manifest (measured here), a CSV/Parquet table holding a
``reference_measure`` column (values), or a CSV with ``quantile, value`` columns (released summary
statistics). Without ``[probes] weights`` the study's ``[study] weights`` name is used. When the
weights file or the base images are absent, the stage adds nothing but a note in the paper saying
which sections need the official weights and how to get them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..studies.validation import ISSUE_COLUMNS

SECTION = "probes"
#: Paper sections that need the discriminator's weights.
NEEDS_WEIGHTS = ["Controlled colour and luminance probes (dose-response per probe and protocol)",
                 "Training-distribution comparison of the preferred luminance"]


def _log(msg):
    print(f"[discbias] probes: {msg}", file=sys.stderr, flush=True)


def settings(config, paths) -> dict:
    """Resolve the ``[probes]`` configuration; ``available`` says whether probes can run and ``reason`` why not."""
    p = dict(config.raw.get("probes", {}))
    name = p.get("weights") or config.study.get("weights")
    out = dict(p, weights_name=name or "", available=False, reason="", demo=bool(p.get("demo", False)))
    how = ("Download the official weights with `python -c \"from discbias.nets import download_weights; "
           f"download_weights('{name or 'stylegan3-r-ffhq-1024x1024.pkl'}')\"` (NVIDIA Source Code License, "
           "research use; they land in `data/weights/` or `$DISCBIAS_WEIGHTS_DIR`), point `[probes] images` in the "
           "study configuration at a folder of base images (FFHQ-aligned faces for the skin probes), and rerun "
           "`make report`.")
    out["how_to"] = how
    if not name:
        out["reason"] = "no weights are configured (`[probes] weights` or `[study] weights`)"
        return out
    path = Path(name)
    if not path.is_absolute():
        cand = paths.root / path
        if cand.exists():
            path = cand
        else:
            from ..nets.registry import KNOWN_WEIGHTS, weights_path

            path = weights_path(name) if name in KNOWN_WEIGHTS else cand
    out["weights_path"] = str(path)
    if not path.is_file():
        shown = os.path.relpath(path, paths.root) if str(path).startswith(str(paths.root)) else str(path)
        out["reason"] = f"the weights file {name} is not present (looked for {shown})"
        return out
    images = p.get("images")
    if not images:
        out["reason"] = "no base images are configured (`[probes] images`)"
        return out
    if not (paths.root / images).exists():
        out["reason"] = f"the base images {images} do not exist"
        return out
    out["images_path"] = str(paths.root / images)
    out["available"] = True
    return out


def cache_path(config, paths, s) -> Path:
    """The score cache probes use: ``[probes] cache``, else ``[scoring] cache``, else the scoring
    stage's default (``$DISCBIAS_CACHE_DIR`` or ``data/cache``): one cache for every score."""
    from ..scoring import cache_path as _cache_path, default_cache_dir

    c = s.get("cache") or config.raw.get("scoring", {}).get("cache")
    if c:
        c = Path(str(c)).expanduser()
        return _cache_path(c if c.is_absolute() else paths.root / c)
    return _cache_path(default_cache_dir(paths.root))


def _reference(s, paths) -> tuple[pd.DataFrame | None, str]:
    ref = s.get("reference")
    measure = s.get("reference_measure", "luma_709")
    if not ref:
        return None, ""
    p = paths.root / ref
    if not p.exists():
        raise FileNotFoundError(f"[probes] reference {ref} does not exist (resolved to {p})")
    if p.suffix in (".csv", ".parquet") and p.is_file():
        t = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        if {"quantile", "value"} <= set(t.columns):
            return t.assign(kind="quantiles")[["kind", "quantile", "value"]], str(ref)
        if measure in t.columns:
            return pd.DataFrame({"kind": "values", "value": t[measure].astype(float)}), str(ref)
        if "image" not in t.columns or p.suffix != ".csv":
            raise ValueError(f"[probes] reference {ref}: needs a '{measure}' column, 'quantile'/'value' columns, "
                             "or (CSV only) an 'image' column listing image files, as `discbias score` reads")
    from ..measures.io import measure_images

    m, errors = measure_images(p, workers=int(s.get("workers", os.cpu_count() or 1)), progress=False)
    if len(errors):
        _log(f"{len(errors)} reference images skipped (as the scoring stage skips them): "
             + "; ".join(f"{r.image}: {r.reason}" for r in errors.head(5).itertuples()))
    return pd.DataFrame({"kind": "values", "value": m[measure].astype(float), "image": m["image"]}), str(ref)


def measure(ctx):
    """Generate, measure and score the probe images (scores through the cache); measure the reference."""
    s = settings(ctx.config, ctx.paths)
    empty = pd.DataFrame(columns=ISSUE_COLUMNS)
    if not s["available"]:
        _log(f"skipped: {s['reason']}")
        return {}, empty
    issues: list[dict] = []
    from ..probes.generate import load_bases
    from ..probes.run import probe_scorers, run_probes
    from ..scoring import ScoreCache

    scorers = probe_scorers(s["weights_path"], s.get("protocols", ["nvidia"]), device=str(s.get("device", "cpu")),
                            batch_size=int(s.get("batch_size", 8)))
    res = int(s.get("resolution", next(iter(scorers.values())).resolution))
    bases, failed = load_bases(s["images_path"], res, s.get("face_method", "template"))
    for f in failed.itertuples():
        _log(f"base image {f.image} skipped: {f.reason}")
        issues.append(dict(file=f"[probes] images: {f.image}", line="", column="", value="", problem=f.reason,
                           action="base image skipped (as the scoring stage skips bad files)"))
    levels = s.get("levels")
    if levels is not None:
        from ..probes.interventions import DEFAULT_LEVELS

        levels = {k: v for k, v in levels.items()} if s.get("levels_only", True) else {**DEFAULT_LEVELS, **levels}
    cpath = cache_path(ctx.config, ctx.paths, s)
    with ScoreCache(cpath) as cache:
        df = run_probes(bases, scorers=scorers, cache=cache, levels=levels, fields=bool(s.get("fields", True)),
                        field_size=res, batch_size=int(s.get("batch_size", 8)))
    _log(f"{len(df)} scores ({df.attrs.get('n_computed', 0)} computed, the rest from the score cache {cpath})")
    df["n_computed_this_run"] = df.attrs.get("n_computed", 0)
    tables = {"probe_scores": df}
    ref, _ = _reference(s, ctx.paths)
    if ref is not None:
        tables["probe_reference"] = ref
    return tables, pd.DataFrame(issues, columns=ISSUE_COLUMNS) if issues else empty


def _note_values(s) -> dict:
    return dict(available=False, reason=s["reason"], how_to=s["how_to"], weights_name=s["weights_name"],
                needs_weights=NEEDS_WEIGHTS, demo=s["demo"])


def fit(ctx):
    """Dose-response mixed models per probe and protocol; uniform fields; training comparison."""
    s = settings(ctx.config, ctx.paths)
    scores = ctx.measures.get("probe_scores")
    if not s["available"] or scores is None or scores.empty:
        if s["available"]:
            s["reason"] = "the probe scores are missing; run `discbias measure`"
        ctx.values[SECTION] = _note_values(s)
        return
    from ..probes.model import field_summary, fit_all
    from ..probes.training import ReferenceDistribution, compare_to_training

    tidy, curves = fit_all(scores, n_boot=int(s.get("n_boot", 2000)))
    ctx.results["probe_dose_response"] = tidy
    ctx.results["probe_curves"] = curves
    for model, t in tidy.groupby("model", sort=False):
        ctx.add_model(model, f"Dose-response of D's score to the {t['probe'].iloc[0]} probe ({t['protocol'].iloc[0]} protocol)",
                      "score ~ cr(level) + (1 + level | base)", t)
    fields = field_summary(scores)
    if len(fields):
        ctx.results["probe_fields"] = fields
    ref = ctx.measures.get("probe_reference")
    measure_name = s.get("reference_measure", "luma_709")
    training = []
    if ref is not None and len(ref):
        dist = (ReferenceDistribution(quantiles=ref[["quantile", "value"]], source=str(s.get("reference")))
                if ref["kind"].iloc[0] == "quantiles" else
                ReferenceDistribution(values=ref["value"].to_numpy(), source=str(s.get("reference"))))
        tprobe = s.get("reference_probe", "exposure")
        for protocol in sorted(scores["protocol"].unique()):
            try:
                t, c = compare_to_training(scores, dist, measure=measure_name, probe=tprobe, protocol=protocol,
                                           n_boot=int(s.get("n_boot", 2000)))
            except (ValueError, RuntimeError) as exc:
                _log(f"training comparison ({protocol}) failed: {exc}")
                continue
            training.append(t)
            c["protocol"] = protocol
            ctx.results.setdefault("probe_training_curves", pd.DataFrame())
            ctx.results["probe_training_curves"] = pd.concat([ctx.results["probe_training_curves"], c], ignore_index=True)
            ctx.add_model(t["model"].iloc[0], f"Score over {measure_name} (training comparison, {protocol})",
                          f"score ~ cr({measure_name}) + (1 + {measure_name} | base)", t)
    if training:
        ctx.results["probe_training"] = pd.concat(training, ignore_index=True)
    # Values for the paper.
    am = tidy[tidy["term"] == "argmax_level"].set_index("model")
    v = dict(available=True, demo=s["demo"], weights_name=s["weights_name"], how_to=s["how_to"], needs_weights=NEEDS_WEIGHTS,
             n_bases=int(scores.loc[scores["probe"] != "uniform_field", "base"].nunique()),
             n_images=int(scores["image_sha256"].nunique()), n_scores=int(len(scores)),
             n_computed_last_run=int(scores["n_computed_this_run"].iloc[0]) if "n_computed_this_run" in scores else None,
             protocols=sorted(scores["protocol"].unique().tolist()),
             protocol_labels=(scores.drop_duplicates("protocol").set_index("protocol")["protocol_label"].to_dict()
                              if "protocol_label" in scores else {}),
             weights_sha256=str(scores["weights_sha256"].iloc[0]) if "weights_sha256" in scores else "",
             probes=sorted(p for p in scores["probe"].unique() if p != "uniform_field"),
             n_models=int(tidy["model"].nunique()), n_not_converged=int((~am["converged"].fillna(False).astype(bool)).sum()),
             n_with_warnings=int((am["warnings"].fillna("") != "").sum()), has_fields=bool(len(fields)),
             has_training=bool(training), reference_measure=measure_name, reference=str(s.get("reference", "")),
             reference_n=int(len(ref)) if ref is not None else 0)
    v["argmax"] = {m: dict(estimate=r["estimate"], conf_low=r["conf_low"], conf_high=r["conf_high"],
                           at_edge=bool(r.get("at_edge", False)) if pd.notna(r.get("at_edge", np.nan)) else None)
                   for m, r in am.iterrows()}
    if training:
        tr = pd.concat(training).set_index(["protocol", "term"])
        v["training"] = {}
        for protocol in tr.index.get_level_values(0).unique():
            g = tr.loc[protocol]
            get = lambda term, col="estimate": float(g.loc[term, col]) if term in g.index else None
            v["training"][protocol] = dict(
                preferred=get("preferred_value"), preferred_low=get("preferred_value", "conf_low"),
                preferred_high=get("preferred_value", "conf_high"), quantile=get("preferred_quantile"),
                quantile_low=get("preferred_quantile", "conf_low"), quantile_high=get("preferred_quantile", "conf_high"),
                mode=get("training_mode"), median=get("training_median"), slope_at_mode=get("slope_at_training_mode"),
                slope_at_mode_low=get("slope_at_training_mode", "conf_low"),
                slope_at_mode_high=get("slope_at_training_mode", "conf_high"),
                slope_at_mode_p=get("slope_at_training_mode", "p_value"), reference_n=int(ref.shape[0]))
    if v["has_fields"]:
        best = fields[fields["is_max"]].drop_duplicates("protocol").set_index("protocol")
        v["fields_best"] = {p: dict(lightness=float(r["field_lightness"]), hue=float(r["field_hue"]), score=float(r["score"]))
                            for p, r in best.iterrows()}
    ctx.values[SECTION] = v
FIT_TABLES = ["probe_dose_response", "probe_curves", "probe_fields", "probe_training_curves", "probe_training"]


def steps(config, paths) -> list:
    """This module's steps: generate and score the probes (weights and images outside the store are
    stamped into the parameters), the dose-response fit (figures: discbias.report.figures.probes)."""
    from ..stages import files_stamp, fit_step, measure_step

    try:
        s = settings(config, paths)
    except (KeyError, ValueError, TypeError):  # invalid settings fail in the step itself, with their message
        s = {}
    stamp = files_stamp(*[s.get(k) for k in ("weights_path", "images_path") if s.get(k)]) if s.get("available") else ""
    meas = ["probe_scores", "probe_reference"]
    return [
        measure_step("probes:score", measure, optional_writes=meas, params={"inputs": stamp}),
        fit_step("probes", fit, section=SECTION, optional_measures=meas, optional_writes=FIT_TABLES),
    ]
