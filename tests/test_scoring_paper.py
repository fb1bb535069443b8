"""End to end: a synthetic study with images and a small random discriminator, through the cache.

Released scores are made with the ``grissom2024`` protocol (as the 2024 paper made them), written in
the released files' schema, then the measure and fit stages run: the released scores go into the
score cache and come back, the images are rescored under ``grissom2024`` and ``nvidia``, and the
Study 1 claims are re-evaluated under each protocol.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from discbias.analyses import rescoring, study1
from discbias.config import load_config
from discbias.paths import ProjectPaths
from discbias.pipeline import FigureContext, FitContext, MeasureContext
from discbias.report.render import make_environment
from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, colour_stats, discover
from discbias.scoring.testing import make_images, save_random_discriminator

REPO = Path(__file__).resolve().parents[1]
N, TOP = 40, 8
BLACK, WHITE = "Black or African-American", "White"


def _study(root: Path, with_scoring: bool) -> Path:
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    w = save_random_discriminator(root / "D.pt", 16, seed=5)
    make_images(root / "ffhq", N, size=(16, 16), seed=6, layout="ffhq")
    items = discover(root / "ffhq")
    run = Scorer(w, ScoringProtocol(input="grissom2024"), min_side=8).score_items(
        items, ScoreCache(root / "scratch-cache"), progress=False)
    sc = run.table.set_index("image_id")["score"]
    stats = {it.image_id: colour_stats(np.asarray(Image.open(it.path).convert("RGB"))) for it in items}
    ids = sorted(stats)
    pd.DataFrame({"image_id": [f"{i}.png" for i in ids], "scores": [repr(float(sc[i])) for i in ids],
                  "luminance": [stats[i]["blue_mean"] for i in ids]}).to_csv(raw / "RGB.csv")
    order = sc.sort_values(ascending=False)
    top, bottom = list(order.index[:TOP]), list(order.index[-TOP:])
    pd.DataFrame([dict(image=f"{i}.png", discriminator_score=repr(float(sc[i])), **stats[i])
                  for i in top + bottom]).to_csv(raw / "tb.csv", index=False)
    rng = np.random.default_rng(1)
    rows = []
    for k, i in enumerate(top + bottom):
        name = f"top{k}.png" if k < TOP else f"bot{k - TOP}.png"
        p_black = 0.15 if k < TOP else 0.85
        rows.append({"image": name, "discriminator_Score": repr(float(sc[i])),
                     **{f"Race.{s}": (BLACK if rng.random() < p_black else WHITE) for s in range(1, 6)}})
    pd.DataFrame(rows).to_csv(raw / "ratings.csv", index=False)
    toml = f'''
[study]
id = "synthetic"
title = "Synthetic"
weights = "stylegan3-r-ffhq-1024x1024.pkl"
[sources.scores]
file = "RGB.csv"
sha256 = "0"
rows = {N}
[sources.tb]
file = "tb.csv"
sha256 = "0"
[sources.ratings]
file = "ratings.csv"
sha256 = "0"
[roles]
study1_scores = "scores"
study1_top_bottom = "tb"
study1_ratings = "ratings"
'''
    if with_scoring:
        toml += f'''
[scoring]
weights = "D.pt"
images = "ffhq"
protocols = ["grissom2024", "nvidia"]
workers = 0
batch_size = 5
min_side = 8
top_n = {TOP}
'''
    cfg = root / "study.toml"
    cfg.write_text(toml)
    return cfg


def _run(root: Path, cfg_path: Path):
    config = load_config(cfg_path)
    paths = ProjectPaths(root).ensure()
    mctx = MeasureContext(config, paths, "report")
    tables = {}
    for a in (study1, rescoring):
        made, issues = a.measure(mctx)
        tables.update(made)
    fctx = FitContext(config, paths, tables)
    study1.fit(fctx)
    rescoring.fit(fctx)
    figctx = FigureContext(config, paths, tables, fctx.results, json.loads(json.dumps(fctx.values, default=float)))
    from discbias.report.figures import rescoring as rescoring_figures

    rescoring_figures.figures(figctx)
    return fctx, tables, issues


@pytest.fixture()
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_paper_with_rescored_scores(env):
    root = env
    fctx, tables, issues = _run(root, _study(root, with_scoring=True))
    assert issues.empty
    # released scores went through the cache with provenance "released", and came back unchanged
    cache = ScoreCache(root / "cache")
    rel = cache.released("synthetic:study1")
    assert len(rel) == N and set(rel["provenance"]) == {"released"}
    assert (tables["ffhq_scores"]["score_provenance"] == "released (score cache)").all()
    assert cache.count("computed") == 2 * N
    # agreement: grissom2024 reproduces the released scores; nvidia does not
    ag = fctx.results["rescoring_agreement"].set_index(["protocol", "term"])["estimate"]
    assert ag["grissom2024", "pearson_r"] > 0.999999 and ag["grissom2024", "max_abs_diff"] < 1e-5
    assert ag["grissom2024", "top_overlap"] == 1.0
    assert ag["nvidia", "max_abs_diff"] > 1e-3
    # claims re-evaluated per protocol with the main claims' code
    cl = fctx.results["rescoring_claims"]
    assert sorted(map(tuple, cl[["protocol", "claim_id"]].to_numpy())) == sorted(
        (p, c) for p in ("released", "grissom2024", "nvidia") for c in ("S1-luminance", "S1-blue-all", "S1-race"))
    assert set(cl["verdict"]) <= {"robust", "fragile", "contradicted", "negligible", "inconclusive"}
    assert set(cl.loc[cl["claim_id"] == "S1-luminance", "reproduction"]) <= {"reproduced", "differs"}
    by = cl.set_index(["protocol", "claim_id"])
    # S1-luminance is a correlation over every image (scores equal to 1e-5), S1-race the same top/bottom split
    for c, tol in (("S1-blue-all", 1e-6), ("S1-race", 1e-12)):
        assert by.loc[("grissom2024", c), "estimate"] == pytest.approx(by.loc[("released", c), "estimate"], abs=tol)
    # under released scores the race estimate is the main Study 1 analysis's (same split, same images)
    main = fctx.results["study1_top_bottom_tests"].set_index("term").loc["black_share", "estimate"]
    assert by.loc[("released", "S1-race"), "estimate"] == pytest.approx(main)
    assert (cl["n_rated"] == 2 * TOP).all() and (cl["top_n"] == TOP).all()
    v = fctx.values["rescoring"]
    assert v["enabled"] and v["protocols"]["nvidia"]["verdicts"].keys() == {"S1-luminance", "S1-blue-all", "S1-race"}
    for t in ("rs_agreement", "rs_claims", "rs_summary"):
        assert (root / "build" / "tables" / f"{t}.md").exists()
    assert (root / "build" / "figures" / "rs_scatter.png").exists()
    text = _render_section(root, fctx.values)
    assert "Under `grissom2024` the rescored and released scores correlate" in text
    assert "The Study 1 claims under each protocol" in text and "need the official weights" not in text
    # a rerun scores nothing: everything comes from the cache
    before = cache.count("computed")
    _run(root, root / "study.toml")
    assert cache.count("computed") == before


def test_without_weights_and_images_nothing_is_rescored(env):
    root = env
    fctx, tables, _ = _run(root, _study(root, with_scoring=False))
    assert "rescored_scores" not in tables and "rescoring_claims" not in fctx.results
    v = fctx.values["rescoring"]
    assert v["enabled"] is False and v["n_released_study1"] == N
    assert ScoreCache(root / "cache").count("computed") == 0
    text = _render_section(root, fctx.values)
    # one short paragraph saying what the analysis needs, not installation instructions
    assert "needs the discriminator's weights" in text and "stylegan3-r-ffhq-1024x1024.pkl" in text
    assert "download_weights" not in text and "[scoring]" not in text


def _render_section(root, values) -> str:
    env = make_environment(REPO / "report", ProjectPaths(root))
    return env.get_template("sections/60-protocol-sensitivity.qmd.j2").render(
        values=json.loads(json.dumps(values, default=float)))
