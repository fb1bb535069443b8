"""Strict study configurations: every file validated against discbias.schema (issue 16)."""

import json
from pathlib import Path

import pytest

from discbias.config import ConfigError, load_config, write_resolved
from discbias.defaults import DEFAULTS
from discbias.schema import StudyFile

ROOT = Path(__file__).parents[1]
BASE = '[study]\nid = "x"\n[sources.a]\nfile = "a.csv"\nsha256 = "00"\n[roles]\nfirst = "a"\n'


def _load(tmp_path, extra: str):
    p = tmp_path / "study.toml"
    p.write_text(BASE + extra)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    return p, info.value


@pytest.mark.parametrize("path", ["analysis/grissom2024.toml", "analysis/probes-demo.toml"])
def test_shipped_configurations_are_valid(path):
    cfg = load_config(ROOT / path)
    assert isinstance(cfg.settings, StudyFile)
    assert cfg.resolved()["models"]["draws"] == DEFAULTS["models"]["draws"]


def test_synthetic_configuration_is_valid(tmp_path):
    from discbias.studies.synthetic import make_synthetic_study

    cfg = load_config(make_synthetic_study(tmp_path, n_ffhq=300, n_per_cell=3))
    assert cfg.resolved()["models"] == {**DEFAULTS["models"], "draws": 500, "tune": 500, "chains": 2, "n_boot": 30}


def test_misspelled_key(tmp_path):
    p, err = _load(tmp_path, "[models]\ndraw = 1000\n")
    assert (err.file, err.table, err.key, err.suggestion) == (str(p), "models", "draw", "'draws'")
    assert str(err) == f"{p}: [models] unknown key 'draw'; did you mean 'draws'?"


def test_misspelled_value(tmp_path):
    p, err = _load(tmp_path, '[models]\nsampler = "nutpei"\n')
    assert (err.file, err.table, err.key, err.suggestion) == (str(p), "models", "sampler", "'nutpie'")


def test_wrong_type(tmp_path):
    p, err = _load(tmp_path, '[models]\nchains = "4"\n')
    assert (err.file, err.table, err.key) == (str(p), "models", "chains")
    assert "valid integer" in str(err) and err.suggestion == "chains = 4 (the default)"


def test_out_of_range(tmp_path):
    p, err = _load(tmp_path, "[models]\ntarget_accept = 1.5\n")
    assert (err.file, err.table, err.key) == (str(p), "models", "target_accept")
    assert "must be < 1" in str(err) and err.suggestion == "target_accept = 0.95 (the default)"


def test_nested_tables(tmp_path):
    _, err = _load(tmp_path, '[scoring]\nprotocols = [{name = "a", input = "nvidia", grouping = "reference-group", draw = 2}]\n')
    assert (err.table, err.key, err.suggestion) == ("scoring.protocols[0]", "draw", "'draws'")
    _, err = _load(tmp_path, '[scoring]\nprotocols = ["nvida"]\n')
    assert (err.table, err.key, err.suggestion) == ("scoring.protocols", "[0]", "'nvidia'")
    _, err = _load(tmp_path, "[probes.levels]\nexposure = [\"a\"]\n")
    assert err.table == "probes.levels.exposure"
    _, err = _load(tmp_path, '[sources.b]\nfile = "b.csv"\nsha256 = "00"\nrowz = 3\n')
    assert (err.table, err.key, err.suggestion) == ("sources.b", "rowz", "'rows'")


def test_unknown_table_and_role(tmp_path):
    _, err = _load(tmp_path, "[model]\ndraws = 1\n")
    assert (err.table, err.key, err.suggestion) == ("", "model", "'models'")
    p = tmp_path / "r.toml"
    p.write_text(BASE + 'second = "b"\n')
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert (info.value.table, info.value.key) == ("roles", "second")


def test_settings_reach_the_models(tmp_path):
    from discbias.analyses.models import _settings

    p = tmp_path / "s.toml"
    p.write_text(BASE + '[models]\ndraws = 7\nsampler = "pymc"\n')
    s, n_boot = _settings(load_config(p))
    assert (s.draws, s.sampler, s.tune, n_boot) == (7, "pymc", DEFAULTS["models"]["tune"], DEFAULTS["models"]["n_boot"])


def test_reference_group_needs_a_reference(tmp_path):
    from discbias.scoring.config import scoring_config

    p = tmp_path / "s.toml"
    p.write_text(BASE + '[scoring]\nprotocols = [{name = "r", grouping = "reference-group"}]\n')
    with pytest.raises(ConfigError) as info:
        scoring_config(load_config(p))
    assert (info.value.table, info.value.key) == ("scoring.protocols[0]", "reference")
    p.write_text(BASE + '[scoring]\nprotocols = [{name = "r", grouping = "reference-group", reference = "ref"}]\n')
    (proto,) = scoring_config(load_config(p)).protocols
    assert proto.protocol.draws == DEFAULTS["protocol"]["draws"]  # the CLI's default too


def test_cli_defaults_come_from_the_table():
    from discbias.cli import build_parser

    args = build_parser().parse_args(["score", "imgs", "--weights", "w.pt"])
    assert args.batch_size == DEFAULTS["scoring"]["batch_size"] and args.draws == DEFAULTS["protocol"]["draws"]
    assert args.workers == DEFAULTS["scoring"]["workers"] and args.min_side == DEFAULTS["scoring"]["min_side"]


def test_schema_literals_match_the_code():
    from typing import get_args

    from discbias import schema
    from discbias.scoring import protocols
    from discbias.stats.bayes import SAMPLERS, SamplerSettings

    assert get_args(schema.InputName) == protocols.INPUTS and get_args(schema.Resize) == protocols.RESIZES
    assert get_args(schema.Filter) == protocols.FILTERS and get_args(schema.Grouping) == protocols.GROUPINGS
    assert get_args(schema.Sampler) == SAMPLERS
    assert SamplerSettings().target_accept == DEFAULTS["models"]["target_accept"]


def test_resolved_written_without_absolute_paths(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(BASE)
    out = write_resolved(load_config(p), tmp_path / "results")
    doc = json.loads(out.read_text())
    assert doc["file"] == "s.toml" and str(tmp_path) not in out.read_text()
    assert doc["resolved"]["sources"]["a"]["kind"] == "file" and doc["resolved"]["scoring"] is None
