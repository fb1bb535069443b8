"""Scores from the score cache, and the paper's scoring-protocol sensitivity section.

``measure``
    Imports the released scores (Study 1: the 70,000 FFHQ scores; Study 2: the scraped faces'
    scores) into the score cache with provenance ``released`` (keyed by study and image id) and
    reads them back: the ``ffhq_scores`` and ``study2_images`` tables that the Study 1 and Study 2
    analyses fit take their ``score`` column from the cache (same values as the CSVs; a mismatch
    is a data issue). When the study configuration's ``[scoring]`` table names weights and an
    image set, the images are scored under each configured protocol (through the cache, so a
    rerun only scores what is missing): tables ``rescored_scores`` and ``rescored_images``
    (colour statistics measured on the images).
``fit``
    With rescored images: agreement of each protocol with the released scores (Pearson r,
    Spearman rho, absolute differences, overlap of the top and bottom groups), and the Study 1
    claims re-evaluated under each protocol with the same claim code as the main claims table:
    top vs bottom ``top_n`` by that protocol's score (luminance measured on the images), and,
    among the rated extremes, the images above vs below that protocol's median score (rated
    race). Without weights or images the section says what it needs; nothing is computed.
"""

from __future__ import annotations

import logging
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import result_frame
from ..stats.groups import correlation, welch_ttest
from ..studies.validation import ISSUE_COLUMNS

log = logging.getLogger(__name__)

RELEASED = "released"


def _scoring(ctx):
    from ..scoring.config import scoring_config

    return scoring_config(ctx.config, ctx.paths.root)


def _cache(ctx, sc):
    from ..scoring import ScoreCache, default_cache_dir

    return ScoreCache(sc.cache if sc.cache is not None else default_cache_dir(ctx.paths.root))


def study_key(config, study: str) -> str:
    """Study name under which released scores are cached, e.g. ``grissom2024:study1``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> study_key(SimpleNamespace(id="grissom2024"), "study1")
    'grissom2024:study1'
    """
    return f"{config.id}:{study}"


def _from_cache(cache, study, table, id_col, path, issues, file_label):
    """Import ``table``'s valid released scores and return the table with its score read back."""
    from ..fetch import sha256_file

    valid = table[table["valid"]]
    cache.import_released(study, valid, source=path.name, source_sha256=sha256_file(path), id_column=id_col)
    back = cache.released(study).set_index("image_id")["score"]
    out = table.copy()
    cached = out[id_col].astype(str).map(back)
    mismatch = out["valid"] & ~np.isclose(cached.to_numpy(float), out["score"].to_numpy(float), rtol=0, atol=0)
    for i in np.flatnonzero(mismatch.to_numpy()):
        issues.append(dict(file=file_label, line=np.nan, column="score", value=out[id_col].iloc[i],
                           problem="score read back from the score cache differs from the released file",
                           action="cache value used"))
    out["score"] = cached.where(out["valid"], out["score"]).astype(float)
    out["score_provenance"] = pd.Series("released (score cache)", index=out.index).where(out["valid"])
    return out


def import_released(ctx, tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Step ``rescoring:import``: the released scores through the score cache.

    ``tables`` holds the adapters' tables ``released/ffhq_scores`` (Study 1) and
    ``released/study2_images`` (Study 2), where configured; returns ``ffhq_scores`` and
    ``study2_images`` with ``score`` read back from the cache (a mismatch is a data issue) and a
    ``score_provenance`` column. These are the tables the analyses fit: the adapters' tables have
    other names, so each table has one writer.
    """
    cfg = ctx.config
    out: dict[str, pd.DataFrame] = {}
    issues: list[dict] = []
    s1, s2 = tables.get("released/ffhq_scores"), tables.get("released/study2_images")
    if s1 is None and s2 is None:
        return out, pd.DataFrame(columns=ISSUE_COLUMNS)
    cache = _cache(ctx, _scoring(ctx))
    try:
        if s1 is not None:
            path = ctx.raw("study1_scores")
            out["ffhq_scores"] = _from_cache(cache, study_key(cfg, "study1"), s1, "image_id", path, issues, path.name)
        if s2 is not None:
            path = ctx.raw("study2_images")
            out["study2_images"] = _from_cache(cache, study_key(cfg, "study2"), s2, "image", path, issues, path.name)
    finally:
        cache.close()
    return out, pd.DataFrame(issues, columns=ISSUE_COLUMNS)


def rescore(ctx) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Step ``rescoring:score``: score the configured images under each protocol (through the cache).

    Returns ``rescored_scores`` and ``rescored_images`` when the ``[scoring]`` table names weights
    and images; nothing otherwise.
    """
    sc = _scoring(ctx)
    if not sc.enabled:
        return {}, pd.DataFrame(columns=ISSUE_COLUMNS)
    issues: list[dict] = []
    cache = _cache(ctx, sc)
    try:
        tables = _rescore(sc, cache, issues)
    finally:
        cache.close()
    return tables, pd.DataFrame(issues, columns=ISSUE_COLUMNS)


def measure(ctx):
    """Both measure steps of this module at once, reading the released files itself (for scripts and tests
    that run one analysis without the engine): ``ffhq_scores`` / ``study2_images`` from the score cache and,
    with weights and images configured, ``rescored_scores`` / ``rescored_images``."""
    from ..studies.grissom2024 import read_ffhq_scores, read_study2

    cfg = ctx.config
    released = {}
    if cfg.has_role("study1_scores"):
        released["released/ffhq_scores"] = read_ffhq_scores(
            ctx.raw("study1_scores"), expected_rows=ctx.expected_rows("study1_scores"),
            on_invalid="report").tables["ffhq_scores"]
    if cfg.has_role("study2_images"):
        released["released/study2_images"] = read_study2(
            ctx.raw("study2_images"), expected_rows=ctx.expected_rows("study2_images"), on_invalid="report",
            table_prefix="study2").tables["study2_images"]
    tables, issues = import_released(ctx, released)
    more, issues2 = rescore(ctx)
    tables.update(more)
    return tables, pd.concat([issues, issues2], ignore_index=True)


def _rescore(sc, cache, issues) -> dict[str, pd.DataFrame]:
    import sys

    import torch

    from ..scoring import Scorer, discover

    if sc.threads:
        torch.set_num_threads(int(sc.threads))
    items = discover(sc.images)
    parts = []
    for npro in sc.protocols:
        scorer = Scorer(sc.weights, npro.protocol, device=sc.device, fp32=sc.fp32, reference=npro.reference,
                        batch_size=sc.batch_size, num_workers=sc.workers, min_side=sc.min_side)
        run = scorer.score_items(items, cache, progress=sys.stderr.isatty())
        log.info("rescoring %s (%s): %d scored, %d from cache, %d failed", npro.name, run.protocol.label, run.scored,
                 run.from_cache, run.failed)
        for f in run.failures.itertuples():
            issues.append(dict(file=str(sc.images), line=np.nan, column="image", value=f.image, problem=f.reason,
                               action=f"not scored under protocol {npro.name}"))
        t = run.table.assign(protocol_name=npro.name, n_failed=run.failed)
        parts.append(t)
    rescored = pd.concat(parts, ignore_index=True)
    keep = ["protocol_name", "image", "image_id", "image_sha256", "score", "score_sd", "n_draws", "protocol", "grouping",
            "resize", "filter", "flip", "precision", "label", "weights_sha256", "discbias_version", "from_cache",
            "conversion", "n_failed"]
    stats = cache.image_stats(rescored["image_sha256"].unique())
    images = (rescored[["image", "image_id", "image_sha256"]].drop_duplicates("image")
              .merge(stats, on="image_sha256", how="left"))
    return {"rescored_scores": rescored[keep], "rescored_images": images}


# ---- fit -------------------------------------------------------------------------------------
def _weights_note(ctx, sc) -> dict:
    name = sc.weights or ctx.config.study.get("weights") or "stylegan3-r-ffhq-1024x1024.pkl"
    url = ""
    try:
        from ..nets import KNOWN_WEIGHTS

        if str(name) in KNOWN_WEIGHTS:
            url = KNOWN_WEIGHTS[str(name)].url
    except ImportError:  # the nets package is optional for the released-data analyses
        pass
    return dict(weights_name=str(name).rsplit("/", 1)[-1], weights_url=url)


def _score_tables(ctx) -> dict[str, pd.DataFrame]:
    """One (image_id -> score) table per protocol, released first, on the common image set."""
    rs = ctx.measures["rescored_scores"]
    out = {}
    if "ffhq_scores" in ctx.measures:
        rel = ctx.measures["ffhq_scores"]
        out[RELEASED] = rel.loc[rel["valid"], ["image_id", "score"]].astype({"image_id": str})
    for name, g in rs.groupby("protocol_name", sort=False):
        out[name] = g[["image_id", "score", "score_sd"]].astype({"image_id": str})
    common = set.intersection(*(set(t["image_id"]) for t in out.values()))
    return {k: t[t["image_id"].isin(common)].drop_duplicates("image_id").set_index("image_id") for k, t in out.items()}


def _tests_for(name, scores, images, race, k):
    """Study 1's top-vs-bottom tests with groups formed by this protocol's scores."""
    from .study1 import black_share_per_image

    d = images.join(scores["score"], how="inner").sort_values("score", ascending=False)
    tests, notes = [], []
    d["group"] = None
    d.iloc[:k, d.columns.get_loc("group")] = "top"
    d.iloc[len(d) - k:, d.columns.get_loc("group")] = "bottom"
    tb = d[d["group"].notna()]
    try:
        tests.append(welch_ttest(tb, "luminance", "group", "top", "bottom", model="s1_top_bottom_luminance"))
    except ValueError as exc:
        notes.append(str(exc))
    n_rated = 0
    if race is not None and len(race):
        rated = pd.Index(race["image_id"].astype(str).unique()).intersection(scores.index)
        n_rated = len(rated)
        s = scores.loc[rated, "score"].sort_values(ascending=False)
        half = len(s) // 2
        grp = pd.Series("bottom", index=s.index)
        grp.iloc[:half] = "top"
        r = race[race["image_id"].astype(str).isin(rated)].copy()
        r["group"] = r["image_id"].astype(str).map(grp)
        share = black_share_per_image(r)
        try:
            tests.append(welch_ttest(share, "black_share", "group", "bottom", "top", model="s1_black_share"))
        except ValueError as exc:
            notes.append(str(exc))
    t = pd.concat(tests, ignore_index=True) if tests else result_frame([])
    t.insert(0, "protocol", name)
    return t, tb, n_rated, notes


#: Claims re-evaluated under each scoring protocol.
RESCORED_CLAIMS = ("S1-luminance", "S1-blue-all", "S1-race")


def fit(ctx):
    from ..claims import configure_claims, evaluate_claim
    from . import study1

    sc = _scoring(ctx)
    v = dict(enabled=False, **_weights_note(ctx, sc))
    for key, table in (("n_released_study1", "ffhq_scores"), ("n_released_study2", "study2_images")):
        t = ctx.measures.get(table)
        v[key] = int(t["score_provenance"].notna().sum()) if t is not None and "score_provenance" in t else 0
    rs = ctx.measures.get("rescored_scores")
    if rs is None or rs.empty:
        ctx.values["rescoring"] = v
        return
    scores = _score_tables(ctx)
    images = ctx.measures["rescored_images"].astype({"image_id": str}).drop_duplicates("image_id").set_index("image_id")
    n_common = len(next(iter(scores.values())))
    k = max(0, min(sc.top_n, n_common // 2))
    race = ctx.measures.get("top_bottom_race")
    # The Study 1 claims whose inputs a rescoring rebuilds (top/bottom split by score, rated race);
    # the face-attribute stratification claims read other tables and stay with the released scores.
    raw = getattr(ctx.config, "raw", None) or {}
    s1_claims = [c for c in study1.CLAIMS if c.claim_id in RESCORED_CLAIMS]
    s1_claims = configure_claims(s1_claims, {k: v for k, v in (raw.get("claims") or {}).items()
                                             if k in RESCORED_CLAIMS})

    agree_rows, tests, claim_rows, summary, groups = [], [], [], [], {}
    for name, s in scores.items():
        t, tb, n_rated, notes = _tests_for(name, s, images, race, k)
        tests.append(t)
        groups[name] = tb
        joined = images.join(s["score"], how="inner")
        blue = correlation(joined, "blue_mean", "score", model=f"rs_{name}_blue")
        results = {"study1_top_bottom_tests": t, "study1_correlations": blue.assign(model="s1_blue_score_corr")}
        if len(joined) > 2:
            results["study1_luminance_all"] = study1.luminance_all(joined)
        for c in s1_claims:
            # the specifications this protocol can estimate (the rated-race logit needs the released split)
            # the specifications this protocol can estimate; the others (the rating-level race tables need the
            # released split) are kept as optional, so that they are listed but do not block a verdict
            keep = [sp if sp.lookup(results) is not None else dataclasses.replace(sp, required=False)
                    for sp in c.specifications]
            c = dataclasses.replace(c, specifications=keep)
            row, specs = evaluate_claim(c, results)
            claim_rows.append(dict(protocol=name, claim_id=c.claim_id, description=c.description, rule=c.rule,
                                   estimate=row["estimate"], conf_low=row["conf_low"], conf_high=row["conf_high"],
                                   verdict=row["verdict"], reason=row["reason"], reproduction=row["reproduction"],
                                   specifications="; ".join(f"{r['label']}: {r['outcome']}" for r in specs),
                                   n_images=n_common, top_n=k, n_rated=n_rated, warnings="; ".join(notes)))
        blue.insert(0, "protocol", name)
        tests.append(blue)
        part = rs[rs["protocol_name"] == name]
        summary.append(dict(protocol=name, label="released scores (cache)" if name == RELEASED else part["label"].iloc[0],
                            n_scored=int(len(s)) if name == RELEASED else int(len(part)),
                            n_failed=0 if name == RELEASED else int(part["n_failed"].iloc[0]) if len(part) else 0,
                            mean=float(s["score"].mean()), sd=float(s["score"].std()),
                            weights_sha256="" if name == RELEASED else part["weights_sha256"].iloc[0]))
    base_name = RELEASED if RELEASED in scores else None
    for name, s in scores.items():
        if base_name is None or name == base_name:
            continue
        b = scores[base_name]["score"]
        x = s["score"].reindex(b.index)
        diff = (x - b).abs()
        top_b, top_x = set(groups[base_name].query("group == 'top'").index), set(groups[name].query("group == 'top'").index)
        bot_b, bot_x = (set(groups[base_name].query("group == 'bottom'").index),
                        set(groups[name].query("group == 'bottom'").index))
        corr = correlation(pd.DataFrame({"released": b, "rescored": x}), "released", "rescored", model=f"rs_agree_{name}")
        common = dict(model=f"rs_agree_{name}", n_obs=int(diff.notna().sum()), converged=True, warnings="")
        rows = [dict(corr.iloc[0].to_dict(), term="pearson_r"), dict(corr.iloc[1].to_dict(), term="spearman_rho"),
                dict(common, term="max_abs_diff", estimate=float(diff.max()), method="max |rescored - released|"),
                dict(common, term="mean_abs_diff", estimate=float(diff.mean()), method="mean |rescored - released|"),
                dict(common, term="mean_diff", estimate=float((x - b).mean()), method="mean (rescored - released)"),
                dict(common, term="top_overlap", estimate=len(top_b & top_x) / max(k, 1),
                     method=f"share of the released top {k} in this protocol's top {k}"),
                dict(common, term="bottom_overlap", estimate=len(bot_b & bot_x) / max(k, 1),
                     method=f"share of the released bottom {k} in this protocol's bottom {k}")]
        agree_rows += [dict(r, protocol=name) for r in rows]
    agreement = result_frame(agree_rows) if agree_rows else result_frame([])
    tests = pd.concat(tests, ignore_index=True)
    claims = pd.DataFrame(claim_rows)
    ctx.results["rescoring_agreement"] = agreement
    ctx.results["rescoring_tests"] = tests
    ctx.results["rescoring_claims"] = claims
    ctx.results["rescoring_summary"] = pd.DataFrame(summary)
    for name in scores:
        t = tests[(tests["protocol"] == name) & (tests["model"] == "s1_top_bottom_luminance")]
        if len(t):
            ctx.add_model(f"rs_{name}_luminance", f"Welch t-test of luminance, top vs bottom {k} by {name} scores",
                          "luminance ~ group", t)

    a = agreement.set_index(["protocol", "term"])["estimate"] if len(agreement) else pd.Series(dtype=float)
    protos = {}
    for srow in summary:
        name = srow["protocol"]
        p = dict(srow)
        for term in ("pearson_r", "spearman_rho", "max_abs_diff", "mean_abs_diff", "mean_diff", "top_overlap",
                     "bottom_overlap"):
            p[term] = float(a[(name, term)]) if (name, term) in a.index else None
        cl = claims[claims["protocol"] == name].set_index("claim_id")
        p["verdicts"] = cl["verdict"].to_dict()
        p["reproduction"] = cl["reproduction"].to_dict()
        p["estimates"] = {cid: float(e) if pd.notna(e) else None for cid, e in cl["estimate"].items()}
        protos[name] = p
    v.update(enabled=True, images=str(sc.images), n_images=int(rs["image"].nunique()), n_common=int(n_common),
             top_n=int(k), protocols=protos, protocol_names=list(scores), has_released=base_name is not None,
             n_rated=int(claims["n_rated"].max()) if len(claims) else 0,
             weights_sha256=str(rs["weights_sha256"].iloc[0]))
    ctx.values["rescoring"] = v
FIT_TABLES = ["rescoring_agreement", "rescoring_tests", "rescoring_claims", "rescoring_summary"]


def steps(config, paths) -> list:
    """This module's steps: import the released scores, rescore, and the protocol-sensitivity fit."""
    from ..stages import files_stamp, fit_step, measure_step

    sc = None
    try:
        from ..scoring.config import scoring_config

        sc = scoring_config(config, paths.root)
    except (KeyError, ValueError, TypeError):  # an invalid [scoring] table fails in the step itself, with its message
        pass
    stamp = files_stamp(sc.images, sc.weights if sc.weights and Path(str(sc.weights)).exists() else None) \
        if sc is not None and sc.enabled else ""
    return [
        measure_step("rescoring:import", import_released, optional_writes=["ffhq_scores", "study2_images"],
                     optional_reads=["released/ffhq_scores", "released/study2_images"]),
        measure_step("rescoring:score", rescore, optional_writes=["rescored_scores", "rescored_images"],
                     params={"inputs": stamp}),
        fit_step("rescoring", fit, optional_measures=["ffhq_scores", "study2_images", "rescored_scores",
                                                      "rescored_images", "top_bottom_race"],
                 optional_writes=FIT_TABLES),
    ]
