"""Switching ``--config`` never reports a previous configuration's tables (issue 10)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from discbias.cli import main
from discbias.config import load_config
from discbias.paths import project_paths
from discbias.pipeline import StaleBuildError, read_stamp, run_fetch, run_figures, run_fit, run_measure

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def two_configs(tmp_path, monkeypatch):
    """Config A (the synthetic study) and B (same files, another id, no face-attribute role)."""
    from discbias.studies.synthetic import make_synthetic_study

    a = make_synthetic_study(tmp_path, n_ffhq=300, n_per_cell=3)
    b = a.with_name("synthetic_b.toml")
    text = a.read_text().replace('id = "synthetic"', 'id = "synthetic-b"')
    b.write_text(text.replace('ffhq_features = "ffhq_features"\n', ""))
    monkeypatch.setenv("DISCBIAS_DATA_MIRROR", str(tmp_path / "mirror"))
    return tmp_path, a, b


def test_measure_a_then_b_then_a_keeps_only_the_current_configs_tables(two_configs):
    """The engine's records decide: the configuration stamp is its external input, the steps B lacks
    are pruned with what they made, and a later stage refuses to run on an earlier stage's outputs
    that did not run with the current configuration (no stamp file, no clearing of build/)."""
    root, a, b = two_configs
    paths = project_paths(root)
    cfg_a, cfg_b = load_config(a), load_config(b)
    run_fetch(cfg_a, paths, allow_download=False)
    run_measure(cfg_a, paths)
    assert (paths.measures / "ffhq_features.parquet").exists()
    assert read_stamp(paths)["study_id"] == "synthetic"
    assert not (paths.build / "config-stamp.json").exists()
    run_measure(cfg_b, paths)
    # B has no face-attribute source: the step that measured it is gone, and so is its table
    assert not (paths.measures / "ffhq_features.parquet").exists()
    assert read_stamp(paths)["study_id"] == "synthetic-b"
    # values.json of an earlier fit (of A) is still there, but B's fit has not run: B's figures refuse it
    from discbias.stages import study_store

    study_store(paths).put_value("values", {"meta": {"study_id": "synthetic"}})
    with pytest.raises(StaleBuildError, match="discbias fit --config"):
        run_figures(cfg_b, paths)
    # the later stages refuse a build made by another configuration
    with pytest.raises(StaleBuildError, match="synthetic_b.toml"):
        run_fit(cfg_a, paths)
    with pytest.raises(StaleBuildError, match="discbias measure --config"):
        run_figures(cfg_a, paths)
    assert main(["render", "--config", str(a), "--root", str(root)]) == 2  # one error line, no traceback
    run_measure(cfg_a, paths)
    assert (paths.measures / "ffhq_features.parquet").exists()
    assert read_stamp(paths)["study_id"] == "synthetic"
    # editing the configuration is a switch too
    a.write_text(a.read_text().replace('title = "Synthetic', 'title = "Edited synthetic'))
    with pytest.raises(StaleBuildError, match="changed"):
        run_fit(load_config(a), paths)


FAKE_CLI = """#!/bin/bash
echo "$*" >> calls.log
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_leaves_every_rerun_to_the_engine(tmp_path):
    """The Makefile (with a stand-in for the discbias command that records its calls) keeps no source
    lists or stamps of its own: each target calls the command line once with the configuration, every
    time (the engine decides what reruns, including after a switch of configuration, tested above
    and in test_pipeline_engine.py)."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / ".installed").write_text("")
    cli = tmp_path / "fakecli"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    log = tmp_path / "calls.log"

    def make(target, cfg):
        log.unlink(missing_ok=True)
        subprocess.run(["make", "-s", target, "VENV=venv", "CLI=./fakecli", f"CONFIG={cfg}"], cwd=tmp_path,
                       check=True, capture_output=True)
        return log.read_text().splitlines() if log.exists() else []

    assert make("report", "a.toml") == ["report --config a.toml"]
    assert make("report", "a.toml") == ["report --config a.toml"]
    assert make("report", "analysis/faces.toml") == ["report --config analysis/faces.toml"]
    assert make("bundle", "b.toml") == ["report --config b.toml", "bundle --config b.toml"]
    assert make("figures", "a.toml") == ["figures --config a.toml"]
    assert not (tmp_path / "build").exists()  # no stamps or marker files of make's own
