"""A study kind plugs into `discbias report/steps/bundle/verify` by registering its table and opener."""

import pytest

from discbias.errors import ConfigError
from discbias.studies import kind


def test_a_registered_kind_is_opened_by_its_table(tmp_path, monkeypatch):
    monkeypatch.setattr(kind, "KINDS", dict(kind.KINDS))
    monkeypatch.setattr(kind, "_OPENERS", dict(kind._OPENERS))
    opened = []
    kind.register_kind("toy", "toy", lambda path, root, template_dir: opened.append(path) or "a toy build")
    cfg = tmp_path / "t.toml"
    cfg.write_text('[toy]\nname = "t"\n')
    assert kind.study_kind(cfg) == "toy" and kind.open_study(cfg) == "a toy build" and opened == [cfg]
    cfg.write_text('[toy]\nname = "t"\n[audit]\nname = "a"\n')
    with pytest.raises(ConfigError, match=r"has the tables \[audit\], \[toy\]; a study configuration has one"):
        kind.study_kind(cfg)
    with pytest.raises(ValueError, match="registered already"):
        kind.register_kind("other", "audit", lambda *a: None)
    cfg.write_text('[paper]\ntitle = "x"\n')  # no kind's table: the replication's schema names what is missing
    assert kind.study_kind(cfg) == "replication"
