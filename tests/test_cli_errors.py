"""Honest errors: a user error is one line and exit 2; a bug shows its traceback and exits 1 (issue 16)."""

import logging
import types

import pandas as pd
import pytest

from discbias import pipeline
from discbias.cli import main

STUDY = '[study]\nid = "x"\n'


@pytest.fixture
def config(tmp_path):
    p = tmp_path / "study.toml"
    p.write_text(STUDY)
    return p


def _fake_analysis(monkeypatch, tmp_path, fit):
    """Replace the replication's analyses with one whose fit step runs ``fit`` (on the engine)."""
    from discbias.stages import fit_step

    fake = types.SimpleNamespace(__name__="discbias.analyses.fake",
                                 steps=lambda config, paths: [fit_step("fake", fit, section="fake")])
    monkeypatch.setattr(pipeline, "require_current_build", lambda *args, **kwargs: None)
    monkeypatch.setattr(pipeline, "_analyses", lambda: [fake])
    (tmp_path / "build" / "measures").mkdir(parents=True)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "build" / "measures" / "table.parquet")


def _bug_in_an_analysis(monkeypatch, tmp_path):
    def fit(ctx):
        return pd.DataFrame({"a": [1]})["a_column_that_is_not_there"]  # a bug: KeyError

    _fake_analysis(monkeypatch, tmp_path, fit)


def test_bug_inside_an_analysis_shows_its_traceback(tmp_path, config, monkeypatch, capsys):
    _bug_in_an_analysis(monkeypatch, tmp_path)
    assert main(["fit", "--config", str(config), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "KeyError: 'a_column_that_is_not_there'" in err and "in fit" in err  # where it happened
    assert "internal error (KeyError)" in err and "bug" in err


def test_user_error_is_one_line_without_traceback(tmp_path, monkeypatch, capsys):
    p = tmp_path / "study.toml"
    p.write_text(STUDY + "[models]\ndraw = 1000\n")
    assert main(["fit", "--config", str(p), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [f"discbias fit: error: {p}: [models] unknown key 'draw'; did you mean 'draws'?"]


def test_stale_build_is_a_user_error(tmp_path, config, capsys):
    assert main(["fit", "--config", str(config), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bug_in_a_plugin_command_shows_its_traceback(tmp_path, monkeypatch, capsys):
    import discbias.scoring.scorer as scorer

    class Broken:
        def __init__(self, *a, **k):
            raise RuntimeError("an internal invariant failed")

    monkeypatch.setattr(scorer, "Scorer", Broken)
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "imgs" / "a.png")
    rc = main(["score", str(tmp_path / "imgs"), "--weights", "w.pt", "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" in err and "RuntimeError: an internal invariant failed" in err


def test_user_error_in_a_plugin_command(tmp_path, capsys):
    rc = main(["score", str(tmp_path / "missing"), "--weights", "w.pt", "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_verbose_and_quiet(tmp_path, config, monkeypatch, capsys):
    def fit(ctx):
        logging.getLogger("discbias.analyses.fake").debug("a debug detail")
        logging.getLogger("discbias.analyses.fake").info("an info line")
        raise KeyboardInterrupt  # stop right after the analysis ran (exit 130, nothing else written)

    _fake_analysis(monkeypatch, tmp_path, fit)
    for flags, shown, hidden in ((["-v"], ["a debug detail", "an info line"], []),
                                 ([], ["an info line"], ["a debug detail"]),
                                 (["-q"], [], ["an info line", "a debug detail"])):
        assert main(["fit", *flags, "--config", str(config), "--root", str(tmp_path)]) == 130
        err = capsys.readouterr().err
        assert all(f"[discbias] {s}" in err for s in shown) and not any(s in err for s in hidden), (flags, err)
