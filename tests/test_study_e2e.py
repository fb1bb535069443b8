"""End to end for an audit study on the one command path: `discbias report`, `steps`, `bundle`, and
`verify` from a second clean copy of the project (exit 0; one changed estimate -> exit 1).

The audit is generated: small images of two groups, a random-weights discriminator in NVIDIA's
pickle format (the fixtures of tests/test_audit_e2e.py), ratings by three raters. No Python is
written for the study: the configuration comes from `discbias audit init`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from discbias.cli import main

_spec = importlib.util.spec_from_file_location("_audit_e2e", Path(__file__).parent / "test_audit_e2e.py")
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)


def _study(root: Path, monkeypatch, n: int) -> Path:
    manifest = _e2e._project(root, n=n)
    _e2e._nvidia_pickle(root / "data" / "D-uncond.pkl", 0, seed=1)
    cfg = root / "analysis" / "faces.toml"
    assert main(["audit", "init", str(manifest), "--out", str(cfg), "--weights", "../data/D-uncond.pkl"]) == 0
    text = cfg.read_text().replace('label_column = "cls"', "").replace("stand_in_weights = false",
                                                                       "stand_in_weights = true")
    cfg.write_text(text)
    return cfg


@pytest.mark.slow
def test_report_bundle_and_verify_an_audit_from_a_clean_copy(tmp_path, monkeypatch, capsys):
    first = tmp_path / "first"
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache-first"))
    cfg = _study(first, monkeypatch, n=24)
    # one command for any study: the audit through `discbias report`
    assert main(["report", "--config", str(cfg), "--root", str(first)]) == 0
    build = first / "build" / "faces"
    assert (build / "report" / "faces.pdf").stat().st_size > 10_000
    assert (build / "results" / "claims.csv").exists() and (build / "values.json").exists()
    # the engine's steps of the audit, all up to date after the run
    capsys.readouterr()
    assert main(["steps", "--config", str(cfg), "--root", str(first)]) == 0
    listing = capsys.readouterr().out
    assert "render" in listing and "never ran" not in listing and "changed" not in listing

    # bundle the audit (this failed with "study: is required ... unknown key 'audit'")
    zpath = tmp_path / "faces.zip"
    assert main(["bundle", "--config", str(cfg), "--root", str(first), "--out", str(zpath)]) == 0
    names = set(zipfile.ZipFile(zpath).namelist())
    assert {"results/claims.csv", "results/models.csv", "values.json", "report/paper.pdf", "report/paper.html",
            "config/faces.toml", "bundle.json", "manifest-sha256.txt"} <= names
    meta = json.loads(zipfile.ZipFile(zpath).read("bundle.json"))
    assert meta["study_id"] == "faces" and meta["study_kind"] == "audit"
    # the build it came from verifies
    assert main(["verify", str(zpath), "--config", str(cfg), "--root", str(first)]) == 0

    # a second, clean copy of the project: inputs only, its own empty score cache; rebuilt and verified
    second = tmp_path / "second"
    shutil.copytree(first / "analysis", second / "analysis")
    shutil.copytree(first / "data", second / "data")
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache-second"))
    cfg2 = second / "analysis" / "faces.toml"
    assert main(["verify", str(zpath), "--config", str(cfg2), "--root", str(second), "--rebuild"]) == 0
    rebuilt = second / "build" / "faces" / "verify" / "rebuild" / "build" / "faces"
    assert (rebuilt / "results" / "models.csv").exists()
    assert any((tmp_path / "cache-second").rglob("*")), "the clean copy scored the images itself"

    # one changed estimate: exit 1, and the report names it
    models = pd.read_csv(rebuilt / "results" / "models.csv")
    row = models["estimate"].first_valid_index()
    models.loc[row, "estimate"] = models.loc[row, "estimate"] * 1.01 + 0.01
    models.to_csv(rebuilt / "results" / "models.csv", index=False)
    assert main(["verify", str(zpath), "--config", str(cfg2), "--root", str(second), "--build", str(rebuilt)]) == 1
    report = (second / "build" / "faces" / "verify" / "report.md").read_text()
    assert "models" in report

    # a bundle from another study is refused (exit 2)
    other = tmp_path / "other.toml"
    other.write_text(cfg.read_text().replace('name = "faces"', 'name = "other"'))
    assert main(["verify", str(zpath), "--config", str(other), "--root", str(first)]) == 2


DONE_WHEN = '''[audit]
name = "fullstudy"
stand_in_weights = true
[data]
manifest = "../data/faces.csv"
groups = ["region", "wears_glasses"]
[scoring]
min_side = 16
[[scoring.networks]]
id = "uncond"
weights = "../data/D-uncond.pkl"
[[scoring.networks]]
id = "cond"
weights = "../data/D-cond.pkl"
label_column = "cls"
[measures]
image = ["luma_709"]
[ratings.skin_tone]
file = "../data/ratings.csv"
item_column = "item"
scale = [1, 7]
[ratings.hair_length]
file = "../data/ratings.csv"
item_column = "item"
scale = [1, 5]
[[models]]
id = "main"
formula = "score_cond ~ region + wears_glasses + luma_709 + score_uncond"
[[models]]
id = "hair"
formula = "hair_length ~ wears_glasses + score_cond"
[[claims]]
id = "south_higher"
description = "Southern images score higher than northern ones"
model = "main"
term = "region[south]"
[labels]
region = "Region"
wears_glasses = "Wears glasses"
skin_tone = "Skin tone"
hair_length = "Hair length"
cls = "Class"
'''


@pytest.mark.slow
def test_two_networks_long_ratings_report_bundle_verify_from_a_clean_copy(tmp_path, monkeypatch):
    """The issue's Done-when study: two random-weight NVIDIA-format networks (one class-conditional),
    200 generated images, a LONG ratings file (item column, raters rating 60% of the images, missing,
    out-of-range and unknown-image values) and an item called hair_length with user labels: `report`
    with no Python written renders with every render check passing, `bundle`, and `verify --rebuild`
    from a second clean copy exits 0; one changed estimate exits 1."""
    spec = importlib.util.spec_from_file_location("_audit_features", Path(__file__).parent / "test_audit_features.py")
    feats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(feats)
    first = tmp_path / "first"
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache-first"))
    feats._labelled_study(first, n=200)
    m = pd.read_csv(first / "data" / "faces.csv")
    m["cls"] = range(len(m))
    m["cls"] = m["cls"] % 3
    m.to_csv(first / "data" / "faces.csv", index=False)
    _e2e._nvidia_pickle(first / "data" / "D-uncond.pkl", 0, seed=1)
    _e2e._nvidia_pickle(first / "data" / "D-cond.pkl", 3, seed=2)
    cfg = first / "analysis" / "fullstudy.toml"
    cfg.parent.mkdir()
    cfg.write_text(DONE_WHEN)
    assert main(["report", "--config", str(cfg), "--root", str(first)]) == 0
    build = first / "build" / "fullstudy"
    assert (build / "report" / "render_checks.txt").read_text().startswith("all render checks passed\n")
    issues = pd.read_csv(build / "results" / "data_issues.csv")
    assert len(issues) == 4  # missing, two out of range, an unknown image: listed, not a stop
    zpath = tmp_path / "fullstudy.zip"
    assert main(["bundle", "--config", str(cfg), "--root", str(first), "--out", str(zpath)]) == 0

    second = tmp_path / "second"
    shutil.copytree(first / "analysis", second / "analysis")
    shutil.copytree(first / "data", second / "data")
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache-second"))
    cfg2 = second / "analysis" / "fullstudy.toml"
    assert main(["verify", str(zpath), "--config", str(cfg2), "--root", str(second), "--rebuild"]) == 0
    rebuilt = second / "build" / "fullstudy" / "verify" / "rebuild" / "build" / "fullstudy"
    models = pd.read_csv(rebuilt / "results" / "models.csv")
    row = models["estimate"].first_valid_index()
    models.loc[row, "estimate"] = models.loc[row, "estimate"] * 1.01 + 0.01
    models.to_csv(rebuilt / "results" / "models.csv", index=False)
    assert main(["verify", str(zpath), "--config", str(cfg2), "--root", str(second), "--build", str(rebuilt)]) == 1
