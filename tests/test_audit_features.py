"""Audit user features: early validation, long ratings through the command line, labels, init's conditioning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from discbias.cli import main

BASE = '''[audit]
name = "demo"
[data]
manifest = "m.csv"
groups = ["region"]
[scoring]
weights = "D.pt"
'''


def _write(tmp_path, extra=""):
    rng = np.random.default_rng(0)
    pd.DataFrame({"image": [f"{i}.png" for i in range(8)], "region": ["north", "south"] * 4,
                  "cls": rng.integers(0, 3, 8)}).to_csv(tmp_path / "m.csv", index=False)
    pd.DataFrame({"image": ["0.png", "1.png"], "who": ["ann", "bob"], "item": ["skin", "skin"],
                  "value": [3, 4]}).to_csv(tmp_path / "ratings.csv", index=False)
    p = tmp_path / "a.toml"
    p.write_text(BASE + extra)
    return p


def test_missing_ratings_column_fails_before_scoring_naming_file_column_and_columns(tmp_path, monkeypatch, capsys):
    import discbias.scoring.scorer as scorer
    import discbias.measures.io as mio

    def boom(*a, **k):  # any scoring or measuring would call these
        raise AssertionError("an expensive step ran before validation")

    monkeypatch.setattr(scorer, "Scorer", boom)
    monkeypatch.setattr(mio, "measure_file", boom)
    cfg = _write(tmp_path, '[ratings.skin]\nfile = "ratings.csv"\nitem_column = "item"\nscale = [1, 7]\n'
                           '[[models]]\nid = "m"\nformula = "score ~ regoin + luma_709"\n'
                           '[[models]]\nid = "r"\nlevel = "image"\nformula = "skin ~ rater"\n'
                           'compare = ["cluster:country"]\n')
    assert main(["audit", "run", "--config", str(cfg), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "4 problems" in err
    assert f"the ratings file {tmp_path / 'ratings.csv'} has no column 'rater' (its columns: image, who, item, value)" \
           in err
    assert "[ratings.skin] rater_column" in err
    assert "model 'm' uses ['regoin'], which is not a column at the image level" in err
    assert "rater exist(s) at the other level: set level = \"rating\"" in err
    assert "'cluster:country' clusters by 'country'" in err
    assert not (tmp_path / "build" / "demo" / "tables" / "scores.parquet").exists()


def test_preflight_names_manifest_problems_together(tmp_path):
    from discbias.audit.config import load_audit_config
    from discbias.audit.validate import preflight
    from discbias.errors import ConfigError

    cfg = _write(tmp_path, 'label_column = "klass"\n[ratings.skin]\ncolumns = ["s1", "s2"]\nscale = [1, 7]\n'
                           '[measures]\nimage = ["luma", "lab_l"]\n')
    cfg.write_text(cfg.read_text().replace('groups = ["region"]', 'groups = ["region", "age"]'))
    with pytest.raises(ConfigError) as e:
        preflight(load_audit_config(cfg))
    msgs = [(p.table, p.key) for p in e.value.problems]
    assert msgs == [("data", "groups"), ("scoring", "label_column"), ("ratings.skin", "columns"),
                    ("ratings.skin", "columns"), ("measures", "image")]
    assert "(its columns: image, region, cls)" in e.value.problems[0].message
