"""Probe runs on a tiny random discriminator: scoring through the scoring stage's cache, the
mixed-model table, the analysis."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from discbias.nets import Discriminator, save_discriminator
from discbias.probes.generate import base_from_array
from discbias.probes.model import fit_all
from discbias.probes.run import probe_protocols, probe_scorers, run_probes
from discbias.scoring import ProtocolError, ScoreCache, Scorer, ScoringProtocol
from discbias.probes.training import ReferenceDistribution, compare_to_training

RES = 16



@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    D = Discriminator(0, RES, 3, channel_base=256, channel_max=16)
    p = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_discriminator(D, p)
    return p


def _bases(n=3):
    rng = np.random.default_rng(5)
    return [base_from_array(f"b{i}", rng.integers(30, 220, (RES, RES, 3), dtype=np.uint8)) for i in range(n)]


def test_scoring_batch_equals_single_and_protocols_differ(weights, tmp_path):
    from discbias.nets import load_discriminator

    imgs = [b.rgb for b in _bases(5)]
    s8 = probe_scorers(weights, ["nvidia", "grissom2024"], batch_size=8)
    s1 = probe_scorers(weights, ["nvidia"], batch_size=1)
    a8 = s8["nvidia"].score_arrays(imgs, ScoreCache(tmp_path / "c8")).table["score"].to_numpy()
    a1 = s1["nvidia"].score_arrays(imgs, ScoreCache(tmp_path / "c1")).table["score"].to_numpy()
    np.testing.assert_allclose(a8, a1, rtol=1e-5, atol=1e-5)
    # single grouping: the same as one image per forward pass through the network as saved
    D = load_discriminator(weights)
    with torch.inference_mode():
        direct = D(torch.from_numpy(imgs[2]).permute(2, 0, 1)[None].float() / 127.5 - 1).item()
    assert a1[2] == pytest.approx(direct, rel=1e-5, abs=1e-5)
    g = s8["grissom2024"].score_arrays(imgs, ScoreCache(tmp_path / "c8")).table
    assert not np.allclose(g["score"], a1) and set(g["label"]) == {"grissom2024/single/stretch-lanczos"}
    with pytest.raises(ProtocolError, match="unknown input"):
        probe_protocols(["tf"])
    with pytest.raises(ProtocolError, match="grouping 'single'"):
        probe_protocols([{"input": "nvidia", "grouping": "reference-group"}])


def test_cache_makes_a_rerun_free(weights, tmp_path):
    """Scores live in the scoring stage's cache (keyed by pixel sha256, weights, protocol): a rerun
    computes nothing, and a plain Scorer over the same cache finds the probe images there."""
    cache = tmp_path / "cache"
    bases = _bases(2)
    kw = dict(weights=weights, protocols=("nvidia", "grissom2024"), levels={"exposure": [-1, 1], "gamma": [1]},
              cache=cache, progress=False)
    a = run_probes(bases, **kw)
    b = run_probes(bases, **kw)
    # Level 0 is shared by the two probes, so 2 bases x 4 distinct images x 2 protocols were computed.
    assert a.attrs["n_computed"] == 16 and b.attrs["n_computed"] == 0
    assert not a["from_cache"].iloc[[0, 1, 2]].any() and b["from_cache"].all()
    pd.testing.assert_series_equal(a["score"], b["score"])
    with ScoreCache(cache) as c:
        assert c.count() == 16 and c.verify() == []
        rows = c.frame()
        assert set(rows["protocol"]) == {"nvidia/single/stretch-lanczos", "grissom2024/single/stretch-lanczos"}
        assert rows["image"].str.startswith("probe/").all()
        hits = c.get_scores(a["image_sha256"], a["weights_sha256"].iloc[0], ScoringProtocol(input="nvidia"))
        nv = a[a["protocol"] == "nvidia"]
        assert set(hits) == set(nv["image_sha256"])
        assert all(hits[r.image_sha256]["score"] == r.score for r in nv.itertuples())
    # A changed network (other weights sha256) is not served from the cache.
    other = tmp_path / "other.safetensors"
    torch.manual_seed(1)
    save_discriminator(Discriminator(0, RES, 3, channel_base=256, channel_max=16), other)
    c2 = run_probes(bases, **{**kw, "weights": other, "protocols": ("nvidia",)})
    assert c2.attrs["n_computed"] == 8


def test_probe_images_are_regenerated_identically(weights, tmp_path):
    """Determinism end to end: the same bases give the same probe ids, pixel hashes and scores from a
    fresh cache."""
    kw = dict(weights=weights, levels={"hue_rotation": [60, 120], "shuffle": [0.5]}, fields=True, field_size=RES,
              progress=False)
    a = run_probes(_bases(2), cache=tmp_path / "c1", **kw)
    b = run_probes(_bases(2), cache=tmp_path / "c2", **kw)
    assert b.attrs["n_computed"] == a.attrs["n_computed"] > 0
    pd.testing.assert_frame_equal(a[["probe_id", "image_sha256", "score"]], b[["probe_id", "image_sha256", "score"]])


def test_probe_run_produces_the_mixed_model_table(weights, tmp_path):
    df = run_probes(_bases(4), weights=weights, levels={"exposure": [-2, -1, -0.5, 0.5, 1, 2], "desaturation": [0.5, 1]},
                    cache=tmp_path / "cache", progress=False)
    tidy, curves = fit_all(df, n_boot=200)
    assert set(tidy["model"]) == {f"probe:{p}:nvidia" for p in ("exposure", "desaturation")}
    for col in ("estimate", "std_error", "conf_low", "conf_high", "converged", "warnings", "n_obs", "n_groups"):
        assert col in tidy.columns
    e = tidy[tidy["model"] == "probe:exposure:nvidia"].set_index("term")
    assert e.loc["argmax_level", "n_groups"] == 4 and e.loc["argmax_level", "n_obs"] == 28
    assert -2 <= e.loc["argmax_level", "estimate"] <= 2
    assert e.loc["argmax_level", "conf_low"] <= e.loc["argmax_level", "estimate"] <= e.loc["argmax_level", "conf_high"]
    assert {"slope_at_level_0", "wald_level_joint", "residual variance"} <= set(e.index)
    # 3 levels: quadratic in the level instead of a spline.
    d = tidy[tidy["model"] == "probe:desaturation:nvidia"]
    assert d["formula"].iloc[0] == "score ~ level + I(level ** 2)"
    assert set(curves["probe"]) == {"exposure", "desaturation"}


def test_model_recovers_a_known_curve_and_flags_problems():
    from discbias.probes.model import fit_dose_response

    rng = np.random.default_rng(3)
    lv = np.tile(np.linspace(-2, 2, 9), 8)
    base = np.repeat(np.arange(8), 9)
    s = -0.5 * (lv + 0.8) ** 2 + rng.normal(0, 1, 8)[base] + rng.normal(0, 0.05, lv.size)
    d = pd.DataFrame(dict(probe="p", protocol="x", base=base, level=lv, score=s))
    t, _ = fit_dose_response(d, probe="p", protocol="x", n_boot=300)
    r = t.set_index("term")
    assert r.loc["argmax_level", "estimate"] == pytest.approx(-0.8, abs=0.15)
    assert r.loc["slope_at_level_0", "estimate"] == pytest.approx(-0.8, abs=0.15)  # d/dl at 0 = -(0 + 0.8)
    assert r.loc["argmax_level", "at_edge"] in (False, np.False_)
    # No random slope variation in the data: the fit says so (singular fit, or the random slopes dropped).
    assert t["warnings"].iloc[0] != ""
    with pytest.raises(ValueError, match="at least two base images"):
        fit_dose_response(d[d["base"] == 0], probe="p", protocol="x")


def test_training_comparison_quantile_and_gradient():
    rng = np.random.default_rng(4)
    x = np.tile(np.linspace(0.1, 0.9, 9), 6)
    base = np.repeat(np.arange(6), 9)
    s = -10 * (x - 0.75) ** 2 + rng.normal(0, 1, 6)[base] + rng.normal(0, 0.01, x.size)
    d = pd.DataFrame(dict(probe="exposure", protocol="nvidia", base=base, luma_709=x, score=s))
    ref = ReferenceDistribution(values=rng.normal(0.4, 0.05, 4000), source="synthetic")
    t, _ = compare_to_training(d, ref, n_boot=300)
    r = t.set_index("term")
    assert r.loc["preferred_value", "estimate"] == pytest.approx(0.75, abs=0.05)
    assert r.loc["preferred_quantile", "estimate"] > 0.99
    assert r.loc["training_mode", "estimate"] == pytest.approx(0.4, abs=0.03)
    # d/dx of -10 (x - .75)^2 at x = 0.4 is 7.
    assert r.loc["slope_at_training_mode", "estimate"] == pytest.approx(7.0, abs=0.8)
    with pytest.raises(ValueError, match="either reference values or a quantile table"):
        ReferenceDistribution()


def _project(tmp_path, weights, with_weights=True, protocols='["nvidia", "grissom2024"]'):
    root = tmp_path / "proj"
    (root / "analysis").mkdir(parents=True)
    (root / "imgs").mkdir()
    (root / "ref").mkdir()
    for b in _bases(3):
        Image.fromarray(b.rgb).save(root / "imgs" / f"{b.image}.png")
    rng = np.random.default_rng(9)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "ref" / f"r{i}.png")
    (root / "ref" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")  # skipped as scoring skips it
    (root / "imgs" / "empty.png").write_bytes(b"")
    w = f'weights = "{weights}"' if with_weights else 'weights = "stylegan3-r-ffhq-1024x1024.pkl"'
    (root / "analysis" / "p.toml").write_text(f"""
[study]
id = "t"
[probes]
{w}
images = "imgs"
reference = "ref"
protocols = {protocols}
fields = true
n_boot = 100
[probes.levels]
exposure = [-1, -0.5, 0.5, 1]
""")
    return root


def test_analysis_end_to_end_with_weights(weights, tmp_path, monkeypatch):
    from discbias.analyses import probes as analysis
    from discbias.config import load_config
    from discbias.paths import project_paths
    from discbias.pipeline import FigureContext, FitContext, MeasureContext, load_measures, load_results
    from discbias.results import write_table

    monkeypatch.delenv("DISCBIAS_CACHE_DIR", raising=False)
    root = _project(tmp_path, weights, protocols='["nvidia"]')
    cfg, paths = load_config(root / "analysis" / "p.toml"), project_paths(root).ensure()
    made, issues = analysis.measure(MeasureContext(cfg, paths))
    assert set(made) == {"probe_scores", "probe_reference"}
    assert issues["problem"].tolist() == ["empty file (0 bytes)"] and "empty" in issues["file"].iloc[0]
    assert len(made["probe_reference"]) == 12
    # the default cache is the scoring stage's (data/cache under the root unless configured)
    with ScoreCache(analysis.cache_path(cfg, paths, analysis.settings(cfg, paths))) as c:
        assert c.path == root / "data" / "cache" / "scores.sqlite" and c.count() == len(made["probe_scores"])
    for k, v in made.items():
        write_table(v, paths.measures / f"{k}.parquet")
    fctx = FitContext(cfg, paths, load_measures(paths))
    analysis.fit(fctx)
    v = fctx.values["probes"]
    assert v["available"] and v["protocols"] == ["nvidia"] and v["n_bases"] == 3
    assert set(v["training"]) == {"nvidia"} and v["has_fields"]
    assert {"probe_dose_response", "probe_curves", "probe_fields", "probe_training"} <= set(fctx.results)
    for k, df in fctx.results.items():
        write_table(df, paths.results / f"{k}.csv")
    import matplotlib

    matplotlib.use("Agg")
    values = json.loads(json.dumps(fctx.values, default=float))
    from discbias.report.figures import figure_module

    figure_module(analysis).figures(FigureContext(cfg, paths, load_measures(paths), load_results(paths), values))
    for f in ("probes_dose_response_nvidia", "probes_fields", "probes_training"):
        assert (paths.figures / f"{f}.png").exists()
    assert (paths.tables / "probes_dose_response.md").exists()


def test_analysis_without_weights_adds_only_the_note(weights, tmp_path, monkeypatch):
    from discbias.analyses import probes as analysis
    from discbias.config import load_config
    from discbias.paths import project_paths
    from discbias.pipeline import FitContext, MeasureContext

    monkeypatch.setenv("DISCBIAS_WEIGHTS_DIR", str(tmp_path / "empty"))
    root = _project(tmp_path, weights, with_weights=False)
    cfg, paths = load_config(root / "analysis" / "p.toml"), project_paths(root)
    made, issues = analysis.measure(MeasureContext(cfg, paths))
    assert made == {} and issues.empty
    fctx = FitContext(cfg, paths, {})
    analysis.fit(fctx)
    v = fctx.values["probes"]
    assert v["available"] is False and "not present" in v["reason"] and "download_weights" in v["how_to"]
    assert fctx.results == {} and fctx.models == []

    from discbias.cli import main

    assert main(["probe", "--config", str(root / "analysis" / "p.toml"), "--root", str(root)]) == 2
