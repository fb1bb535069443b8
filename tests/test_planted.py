"""The planted-bias validation study (discbias.planted): data, training, NVIDIA-layout checkpoints,
the sign of a planted luminance preference as the probes and the audit see it, and the study end to
end at a tiny size."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from discbias.measures.color import luma_709, srgb_to_lab
from discbias.planted.checkpoint import save_nvidia_pickle
from discbias.planted.data import Condition, heldout_set, make_faces, training_sets
from discbias.planted.train import network_kwargs, to_input, train_discriminator

REPO = Path(__file__).resolve().parents[1]


def test_faces_follow_the_declared_attributes():
    imgs, a = make_faces(400, 32, np.random.default_rng(0), exposure_sd=0.5, red_sd=0.3, dark_share=0.25)
    px = imgs.astype(float) / 255
    luma = luma_709(px).mean(axis=(1, 2))
    assert np.corrcoef(a["exposure"], luma)[0, 1] > 0.6  # exposure is the main source of luminance variation (0.70 at seed 0)
    assert abs((a["group"] == "dark").mean() - 0.25) < 0.06
    assert luma[a["group"] == "dark"].mean() < luma[a["group"] == "light"].mean()
    again, _ = make_faces(400, 32, np.random.default_rng(0), exposure_sd=0.5, red_sd=0.3, dark_share=0.25)
    assert np.array_equal(imgs, again)  # seeded
    # the same draws with a shifted mean: every face brighter (exposure) or redder (CIELAB a*, red gain)
    kw = dict(exposure_sd=0.5, red_sd=0.3)
    lo, _ = make_faces(200, 32, np.random.default_rng(1), exposure_mean=-0.25, **kw)
    hi, _ = make_faces(200, 32, np.random.default_rng(1), exposure_mean=0.25, **kw)
    assert (luma_709(hi / 255).mean(axis=(1, 2)) > luma_709(lo / 255).mean(axis=(1, 2))).mean() > 0.97
    lo, _ = make_faces(200, 32, np.random.default_rng(1), red_mean=-0.25, **kw)
    hi, _ = make_faces(200, 32, np.random.default_rng(1), red_mean=0.25, **kw)
    a_star = lambda x: srgb_to_lab(x / 255)[..., 1].mean(axis=(1, 2))  # noqa: E731
    assert (a_star(hi) > a_star(lo)).mean() > 0.97


def test_training_sets_plant_the_shift_and_the_null_plants_nothing():
    _, _, a = training_sets(Condition("lum", luminance_shift=1.0, redness_shift=-0.4), 2000, 16, seed=3)
    m = a.groupby("set")[["exposure", "red_gain"]].mean()
    assert abs((m.loc["real", "exposure"] - m.loc["fake", "exposure"]) - 1.0) < 0.06
    assert abs((m.loc["real", "red_gain"] - m.loc["fake", "red_gain"]) + 0.4) < 0.04
    _, _, n = training_sets(Condition("unplanted"), 2000, 16, seed=3)
    m = n.groupby("set")[["exposure", "red_gain"]].mean()
    assert abs(m.loc["real", "exposure"] - m.loc["fake", "exposure"]) < 0.06
    real, fake, _ = training_sets(Condition("unplanted"), 50, 16, seed=3)
    assert not np.array_equal(real, fake)  # independent draws, not copies
    h, _ = heldout_set(50, 16, seed=3)
    assert not any(np.array_equal(h[0], x) for x in real)


def _train(shift: float, steps: int, seed: int = 0, size: int = 32):
    real, fake, _ = training_sets(Condition("c", luminance_shift=shift), 512, size, seed=seed)
    return train_discriminator(real, fake, network=network_kwargs(size), steps=steps, batch_size=32, seed=seed,
                               log_every=10)


def test_checkpoint_loads_through_discbias_nets_unchanged(tmp_path):
    from discbias.nets import load_discriminator, read_network_pickle

    D, log = _train(1.0, 6)
    before = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")}
    p = save_nvidia_pickle(D, tmp_path / "D.pkl", training_set_kwargs=dict(condition="c", seed=0))
    assert {k: sys.modules.get(k) for k in before} == before  # the stand-in modules are gone again
    rec = read_network_pickle(p)
    assert rec["D"].class_name == "Discriminator" and rec["G"] is None
    assert rec["training_set_kwargs"] == dict(condition="c", seed=0)
    L = load_discriminator(p)
    assert L.init_kwargs == D.init_kwargs
    x = to_input(heldout_set(8, 32, seed=1)[0])
    with torch.no_grad():
        assert torch.equal(L(x), D(x))  # bit for bit: the same weights and the same code
    sd, ld = D.state_dict(), L.state_dict()
    assert sd.keys() == ld.keys() and all(torch.equal(sd[k], ld[k]) for k in sd)
    assert list(log.columns) == ["step", "loss_real", "loss_fake", "r1", "accuracy", "seconds"]


@pytest.mark.slow  # trains two discriminators (about 25 s on a quiet 2-core machine, 77 s under load)
def test_a_planted_luminance_preference_is_found_with_the_right_sign(tmp_path):
    """A discriminator trained to call the brighter set real (+1.5 stops: the two sets' exposures
    are 3 SDs apart, so luminance alone separates them with about 93% accuracy) must score brighter
    versions of the same held-out face higher: the exposure probe's slope at level 0 is positive with
    its 95% interval above 0, and the audit's luminance claim reports the planted direction.

    Why this holds with high probability rather than by luck of the seed: after 120 steps (3,840
    images of each set) the training accuracy is checked to be well above chance, and luminance is
    the only attribute that differs between the sets; brightening an image moves it towards the
    real set along the one direction D was trained on. The probes see 12 faces x 5 exposure levels,
    so the slope's interval is narrow compared with the effect (the test also asserts the margin).
    The opposite plant (-1.5 stops) must give the opposite sign, so a sign error anywhere in the
    chain (scaling, loss, scoring, probe) fails one of the two.
    """
    from discbias.planted.auditing import image_luma, run_probes, training_comparison

    for shift, sign in ((1.5, 1), (-1.5, -1)):
        D, log = _train(shift, 120, seed=1)
        assert log["accuracy"].iloc[-1] > 0.75, log.tail()
        w = save_nvidia_pickle(D, tmp_path / f"D{sign}.pkl")
        imgs, _ = heldout_set(12, 32, seed=5)
        pt, scores = run_probes(w, imgs, tmp_path / f"cache{sign}", {"exposure": [-1.0, -0.5, 0.5, 1.0]}, seed=0,
                                return_scores=True)
        # the training-distribution comparison, with the network's own real set as the reference: D
        # learned the real-vs-fake difference, so at the real data's modal luma its score still moves
        # in the planted direction (a preference "beyond" the real data that the training data explains)
        real, fake, _ = training_sets(Condition("p", luminance_shift=shift), 512, 32, seed=1)
        tc = training_comparison(scores, image_luma(real), image_luma(fake), seed=0, n_boot=100)
        assert tc["converged"] and tc["reading_sign"] == sign, tc
        assert sign * (tc["real_luma_mean"] - tc["fake_luma_mean"]) > 0.05, tc
        assert 0 <= tc["preferred_quantile_real"] <= 1 and tc["slope_low"] <= tc["slope_at_real_mode"] <= tc["slope_high"]
        r = pt.set_index("probe").loc["exposure"]
        assert r["converged"], r
        assert sign * r["conf_low"] > 0 or sign * r["conf_high"] > 0
        lo, hi = sorted((sign * r["conf_low"], sign * r["conf_high"]))
        assert lo > 0, (shift, r.to_dict())  # the whole interval on the planted side


def test_clopper_pearson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    from discbias.planted.study import clopper_pearson

    for k, n in ((0, 10), (1, 10), (7, 12), (12, 12)):
        lo, hi = clopper_pearson(k, n)
        elo, ehi = proportion_confint(k, n, alpha=0.05, method="beta")
        assert abs(lo - elo) < 1e-9 and abs(hi - ehi) < 1e-9


def test_study_kind_and_config_errors(tmp_path):
    from discbias.errors import ConfigError
    from discbias.planted.config import load_planted_config
    from discbias.studies.kind import open_study, study_kind

    assert study_kind(REPO / "analysis" / "planted.toml") == "planted"
    s = open_study(REPO / "analysis" / "planted-quick.toml", root=tmp_path)
    assert s.kind == "planted" and s.id == "planted-quick"
    assert s.paths.build == tmp_path / "build" / "planted-quick"
    bad = tmp_path / "bad.toml"
    bad.write_text('[planted]\nid = "x"\nstep = 3\n[[planted.conditions]]\nid = "unplanted"\n')
    with pytest.raises(ConfigError, match="step"):
        load_planted_config(bad)
    bad.write_text('[planted]\nid = "x"\n[[planted.conditions]]\nid = "lum"\nluminance_shift = 1.0\n')
    with pytest.raises(ConfigError, match="null condition"):
        load_planted_config(bad)
    bad.write_text('[planted]\nid = "x"\n[[planted.conditions]]\nid = "null"\n')
    with pytest.raises(ConfigError, match="missing value"):
        load_planted_config(bad)
    both = tmp_path / "both.toml"
    both.write_text('[planted]\nid = "x"\n[audit]\nname = "y"\n')
    with pytest.raises(ConfigError, match="has one of them"):
        study_kind(both)


TINY = """
[planted]
id = "tiny"
title = "Planted-bias validation (test)"
resolution = 16
seeds = 2
n_train = 128
steps = 30
batch_size = 16
n_heldout = 30
n_probe_bases = 4
threads = 1
gan_steps = 10
gan_batch_size = 8
n_gan_measure = 16

[planted.network]
channel_base = 128
channel_max = 16

[planted.generator]
channels = 8

[[planted.conditions]]
id = "unplanted"

[[planted.conditions]]
id = "lum-1.5"
luminance_shift = 1.5

[[planted.conditions]]
id = "gan-share-0.2"
fake = "generator"
minority_share = 0.2
"""


@pytest.mark.slow  # trains four tiny discriminators and two tiny GANs and renders the HTML (about 50-65 s)
def test_tiny_study_end_to_end(tmp_path, monkeypatch):
    """Three conditions (one a GAN, 10 iterations) x two seeds: train, audit, summarise, figures, publish,
    render (HTML)."""
    from discbias.studies.kind import open_study

    monkeypatch.setenv("DISCBIAS_TEMPLATES", str(REPO / "report"))
    monkeypatch.delenv("DISCBIAS_CACHE_DIR", raising=False)
    cfg = tmp_path / "analysis" / "tiny.toml"
    cfg.parent.mkdir()
    cfg.write_text(textwrap.dedent(TINY))
    study = open_study(cfg, root=tmp_path)
    out = study.run(formats=("html",))
    assert (out["steps"]["status"] == "ran").all()
    res = study.paths.results
    op = pd.read_csv(res / "operating.csv")
    assert set(op["condition"]) == {"unplanted", "lum-1.5", "gan-share-0.2"}
    assert set(op["detector"]) == {"luminance", "redness", "group", "probe_exposure", "probe_red"}
    null = op[op["condition"] == "unplanted"]
    assert (null["quantity"] == "false_positive_rate").all() and (null["n"] == 2).all()
    lum = op[(op["condition"] == "lum-1.5")].set_index("detector")
    assert lum.loc["luminance", "quantity"] == "power" and lum.loc["redness", "quantity"] == "false_positive_rate"
    assert ((op["conf_low"] <= op["share"]) & (op["share"] <= op["conf_high"])).all()
    gan = op[op["condition"] == "gan-share-0.2"].set_index("detector")
    assert gan.loc["group", "quantity"] == "power" and gan.loc["group", "planted_sign"] == -1
    assert gan.loc["luminance", "quantity"] == "false_positive_rate"
    det = pd.read_csv(res / "detections.csv")
    assert len(det) == 2 * 3 * 5 and set(det["seed"]) == {0, 1}
    tr = pd.read_csv(res / "training.csv").set_index(["condition", "seed"])
    g = tr.loc[("gan-share-0.2", 0)]
    assert g["fake"] == "generator" and g["steps"] == 10 and np.isfinite(g["gen_luma_709"])
    assert (study.paths.build / g["generator"]).is_file() and (study.paths.build / g["samples"]).is_file()
    assert tr.loc[("unplanted", 0), "fake"] == "fixed"
    tc = pd.read_csv(res / "training_comparison.csv")
    assert len(tc) == 6 and set(tc["reading_sign"]) <= {-1, 0, 1}
    assert ((tc["slope_low"] <= tc["slope_at_real_mode"]) & (tc["slope_at_real_mode"] <= tc["slope_high"])).all()
    # the audit ran as a user runs it: its configuration, manifest and tables are there
    a = study.paths.build / "audits" / "lum-1.5" / "s0"
    assert (a / "analysis" / "audit.toml").is_file() and (a / "data" / "manifest.csv").is_file()
    assert (a / "build" / "audit" / "engine" / "store" / "results" / "claims.parquet").is_file()
    assert (study.paths.build / "checkpoints" / "unplanted" / "s1.pkl").is_file()
    values = json.loads(study.paths.values.read_text())
    assert values["planted"]["operating"]["unplanted"]["luminance"]["n"] == 2
    html = (study.paths.build / "report" / "paper.html").read_text()
    assert "False positives" in html and "Power" in html and "planted" in html.lower()
    assert "explicable by the training data" in html
    t = values["planted"]["training_comparison"]["unplanted"]
    assert t["n"] == 2 and t["k_brighter"] + t["k_darker"] + t["k_neither"] + t["k_not_estimated"] == 2
    k = values["planted"]["operating"]["lum-1.5"]["luminance"]["k"]
    assert f"direction in {k} of 2 seeds" in html
    gv = values["planted"]["conditions"]["gan-share-0.2"]
    assert values["planted"]["generator_conditions"] == ["gan-share-0.2"] and gv["gan"]["steps"] == 10
    assert "generator-mode GANs" in html and "fig-planted-gan-samples" in html and "fig-planted-gan-training" in html
    assert f"hypothesised direction in {values['planted']['operating']['gan-share-0.2']['group']['k']} of 2 seeds" in html
    again = study.run(formats=("html",))
    assert (again["steps"]["status"] == "skipped").all()  # nothing changed: nothing reruns
