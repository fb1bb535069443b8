"""End to end: `discbias audit init` then `discbias audit run` on generated images, with an
unconditional and a class-conditional random-weights discriminator in NVIDIA's pickle format.

Checks the HTML and PDF report, a mixed model with crossed rater and image random effects,
reliability, a claim and the class conditioning recorded with the scores.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from discbias.cli import main
from discbias.nets import Discriminator
from discbias.planted.checkpoint import save_nvidia_pickle

_spec = importlib.util.spec_from_file_location("_nets_conftest", Path(__file__).parent / "nets" / "conftest.py")
_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_nets)


def _nvidia_pickle(path: Path, c_dim: int, seed: int) -> Path:
    """A random-weight network written by the package's NVIDIA-layout writer (planted.checkpoint)."""
    kw = dict(c_dim=c_dim, img_resolution=16, img_channels=3, channel_base=128, channel_max=16)
    if c_dim:
        kw["mapping_kwargs"] = dict(num_layers=1)
    D = _nets._randomize(Discriminator(**kw), seed).eval()
    with torch.no_grad():  # random weights at unit scale saturate; shrink them so scores vary with the image
        for p in D.parameters():
            p.mul_(0.3)
    return save_nvidia_pickle(D, path)


def _project(root: Path, n: int = 30) -> Path:
    rng = np.random.default_rng(0)
    (root / "data" / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        group = ["light", "dark"][i % 2]
        base = 170 if group == "light" else 70
        px = np.clip(rng.normal(base + rng.normal(0, 25), 30, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(px).save(root / "data" / "images" / f"{i:03d}.png")
        tone = 3 + 4 * (group == "dark") + rng.normal(0, 1)
        rows.append(dict(image=f"images/{i:03d}.png", group=group, hair=float(rng.uniform(0, 5)), cls=i % 3,
                         **{f"skin_r{k}": int(np.clip(round(tone + rng.normal(0, 0.7) + (k - 2) * 0.5), 1, 10))
                            for k in (1, 2, 3)}))
    (root / "data" / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # listed, cannot be read
    rows.append(dict(image="images/broken.png", group="dark", hair=1.0, cls=0))
    pd.DataFrame(rows).to_csv(root / "data" / "faces.csv", index=False)
    return root / "data" / "faces.csv"


@pytest.mark.slow
def test_audit_init_then_run_produces_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache"))
    manifest = _project(tmp_path)
    _nvidia_pickle(tmp_path / "data" / "D-uncond.pkl", 0, seed=1)
    _nvidia_pickle(tmp_path / "data" / "D-cond.pkl", 3, seed=2)
    cfg = tmp_path / "analysis" / "faces.toml"
    assert main(["audit", "init", str(manifest), "--out", str(cfg), "--weights", "../data/D-uncond.pkl"]) == 0
    text = cfg.read_text()
    # the guesses the new user relies on
    assert 'groups = ["group"]' in text and "[ratings.skin]" in text
    assert 'formula = "skin ~ group + score + (1|rater) + (1|image)"' in text
    # the weights were read: an unconditional network gets no conditioning option (the class column is not guessed)
    assert "label_column =" not in text.replace("# label_column", "") and "unconditional network (c_dim = 0" in text
    # mark the random weights as a stand-in
    text = text.replace("stand_in_weights = false", "stand_in_weights = true")
    cfg.write_text(text)
    assert main(["audit", "run", "--config", str(cfg)]) == 0
    build = tmp_path / "build" / "faces"
    for suffix in ("html", "pdf"):
        assert (build / "report" / f"faces.{suffix}").stat().st_size > 10_000
    models = pd.read_parquet(build / "engine" / "store" / "results" / "models.parquet")
    crossed = models[(models["model"] == "skin_rating") & (models["specification"] == "main")].set_index("term")
    assert {"sd(rater)", "sd(image)", "sd(residual)", "group[light]", "score"} <= set(crossed.index)
    assert crossed.loc["sd(rater)", "n_groups"] == 3 and crossed.loc["sd(image)", "n_groups"] == 30
    assert crossed.loc["group[light]", "estimate"] < 0  # the generated ratings: light images have lighter skin
    assert set(models["specification"]) == {"main", "ols_hc3", "cluster:group", "cluster:image"}
    rel = pd.read_parquet(build / "engine" / "store" / "results" / "reliability.parquet")
    assert set(rel["coefficient"]) == {"Krippendorff alpha (interval)", "ICC(2,k)", "ICC(1,k)"}
    assert rel.loc[rel["coefficient"] == "ICC(2,k)", "n_images"].iloc[0] == 30
    claims = pd.read_parquet(build / "engine" / "store" / "results" / "claims.parquet")
    assert claims["claim_id"].tolist() == ["group_difference"] and claims["verdict"].iloc[0] in (
        "robust", "fragile", "contradicted", "negligible", "inconclusive")
    html = (build / "report" / "faces.html").read_text()
    assert "Stand-in weights" in html and "Model skin_rating" in html
    failures = pd.read_parquet(build / "engine" / "store" / "results" / "score_failures.parquet")
    assert failures["image"].tolist() == ["images/broken.png"] and "broken.png" in html  # failures reported
    images = pd.read_parquet(build / "engine" / "store" / "results" / "images.parquet")
    assert {"group", "hair", "cls", "luma_709", "skin", "score"} <= set(images.columns)  # metadata kept throughout

    # unchanged configuration: nothing reruns
    from discbias.audit import audit

    again = audit(cfg)
    assert set(again["steps"]["status"]) == {"skipped"}, again["steps"][["step", "reason"]].values.tolist()

    # the class-conditional network, scored with each image's own class from the manifest
    cond = text.replace('weights = "../data/D-uncond.pkl"', 'weights = "../data/D-cond.pkl"\nlabel_column = "cls"')
    cfg.write_text(cond)
    out = audit(cfg, formats=("html",))
    steps = out["steps"].set_index("step")["status"]
    assert steps["audit:score"] == "ran" and steps["audit:ratings"] == "skipped"
    scores = pd.read_parquet(build / "engine" / "store" / "results" / "scores.parquet")
    assert scores["condition"].tolist() == [f"class:{i % 3}" for i in range(30)]

    # the average over classes, and a missing label column named in the error
    cfg.write_text(cond.replace('label_column = "cls"', "average_classes = true"))
    audit(cfg, formats=("html",))
    assert set(pd.read_parquet(build / "engine" / "store" / "results" / "scores.parquet")["condition"]) == {"average"}
    cfg.write_text(cond.replace('label_column = "cls"', 'label_column = "klass"'))
    assert main(["audit", "run", "--config", str(cfg), "--to", "html"]) == 2

    # init on the conditional network writes label_column; a label column on the unconditional one is an
    # error naming the option as it is spelled in the file
    cfg2 = tmp_path / "analysis" / "cond.toml"
    assert main(["audit", "init", str(manifest), "--out", str(cfg2), "--weights", "../data/D-cond.pkl"]) == 0
    assert 'label_column = "cls"   # class-conditional network (c_dim = 3, read from D-cond.pkl)' in cfg2.read_text()
    cfg.write_text(cond.replace('weights = "../data/D-cond.pkl"', 'weights = "../data/D-uncond.pkl"'))
    capsys.readouterr()
    assert main(["audit", "run", "--config", str(cfg), "--to", "html"]) == 2
    assert ('[scoring] label_column: label_column = "cls" is set, but the network ../data/D-uncond.pkl is '
            'unconditional (c_dim = 0): delete label_column from [scoring]') in capsys.readouterr().err
