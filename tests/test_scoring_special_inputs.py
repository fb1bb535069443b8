"""Special inputs (issue 12): symbolic-link loops, FIFOs, devices, broken links, non-UTF-8 names and
sub-folders that cannot be listed become listed failures with a reason; the rest of the run completes.

Special files are never opened for reading (a FIFO would block forever, /dev/zero never ends). Each
test has a timeout (pytest-timeout), so a regression fails instead of hanging the run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import types
from pathlib import Path

import pandas as pd
import pytest

from discbias.scoring.testing import make_images, save_random_discriminator

CAFE = b"caf\xe9.png"  # Latin-1, not valid UTF-8

pytestmark = [pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and byte file names are POSIX"),
              pytest.mark.timeout(120)]


def _tree(tmp_path) -> Path:
    d = tmp_path / "img"
    make_images(d, 3, size=(16, 16), seed=5)
    (d / "loop.png").symlink_to("loop.png")
    (d / "ping.png").symlink_to("pong.png")
    (d / "pong.png").symlink_to("ping.png")
    (d / "gone.png").symlink_to("does-not-exist.png")
    (d / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(d / "fifo.png")
    from PIL import Image

    with open(os.path.join(os.fsencode(d), CAFE), "wb") as fh:  # a distinct image under a byte name
        Image.new("RGB", (16, 16), (200, 30, 90)).save(fh, "PNG")
    return d


EXPECTED = {
    "loop.png": "symbolic link loop",
    "ping.png": "symbolic link loop",
    "pong.png": "symbolic link loop",
    "gone.png": "broken symbolic link",
    "zero.png": "symbolic link to a character device",
    "fifo.png": "a FIFO",
}


def _run(args, capsys):
    """``discbias ARGS`` in this process: (exit status, stdout, stderr)."""
    from discbias.cli import main

    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return types.SimpleNamespace(returncode=rc, stdout=out.out, stderr=out.err)


def test_score_lists_special_files_and_scores_the_rest(tmp_path, capsys):
    d = _tree(tmp_path)
    w = save_random_discriminator(tmp_path / "D.pt", 16)
    out = tmp_path / "out.csv"
    res = _run(["score", str(d), "--weights", str(w), "--cache-dir", str(tmp_path / "cache"), "--min-side", "8",
                "--workers", "0", "--no-progress", "--out", str(out), "--json"], capsys)
    assert res.returncode == 3, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    s = json.loads(res.stdout)
    assert s["scored"] == 4 and s["failed"] == len(EXPECTED)
    fails = pd.read_csv(out.with_name("out.failures.csv"))
    got = dict(zip(fails["image"], fails["reason"]))
    for name, reason in EXPECTED.items():
        assert reason in got[name], (name, got.get(name))
    table = pd.read_csv(out)
    assert sorted(table["image"]) == ["00000.png", "00001.png", "00002.png", "caf\\xe9.png"]
    # the cache keeps the exact bytes of the name, and the same image bytes under both names
    con = sqlite3.connect(tmp_path / "cache" / "scores.sqlite")
    names = {r[0] for r in con.execute("SELECT image FROM scores")}
    assert CAFE in names
    con.close()
    # a rerun finds everything in the cache (the memo of file hashes handles the byte name too)
    res2 = _run(["score", str(d), "--weights", str(w), "--cache-dir", str(tmp_path / "cache"), "--min-side", "8",
                 "--workers", "0", "--no-progress", "--json"], capsys)
    assert res2.returncode == 3 and json.loads(res2.stdout)["from_cache"] == 4
    res3 = _run(["cache", "export", "--failures", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "f.csv")], capsys)
    assert res3.returncode == 0, res3.stderr


def test_measure_images_lists_special_files_and_measures_the_rest(tmp_path, capsys):
    d = _tree(tmp_path)
    out = tmp_path / "m.parquet"
    res = _run(["measure-images", str(d), "--out", str(out), "--workers", "1", "--min-side", "8", "--quiet"], capsys)
    assert res.returncode == 3, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    m = pd.read_parquet(out)
    assert sorted(m["image"]) == ["00000.png", "00001.png", "00002.png", "caf\\xe9.png"]
    fails = pd.read_csv(out.with_name("m.failures.csv"))
    got = dict(zip(fails["image"], fails["reason"]))
    for name, reason in EXPECTED.items():
        assert reason in got[name], (name, got.get(name))


def test_unlistable_subfolder_is_a_listed_failure(tmp_path, monkeypatch):
    """Root reads mode-000 folders, so the unreadable folder is simulated by making os.scandir refuse it."""
    from discbias.measures.io import measure_images
    from discbias.scoring import ScoreCache, ScoringProtocol
    from discbias.scoring.scorer import Scorer
    from discbias.scoring.sources import discover

    d = tmp_path / "img"
    make_images(d / "a", 2, size=(16, 16), seed=1)
    make_images(d / "locked", 2, size=(16, 16), seed=2)
    real = os.scandir

    def scandir(path="."):
        if Path(os.fsdecode(path)).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items = discover(d)
    bad = [it for it in items if it.error]
    assert [it.image for it in bad] == ["locked/"] and "Permission denied" in bad[0].error
    w = save_random_discriminator(tmp_path / "D.pt", 16)
    run = Scorer(w, ScoringProtocol(), min_side=8).score_items(items, ScoreCache(tmp_path / "c"), progress=False)
    assert run.scored == 2 and run.failed == 1
    assert run.failures["image"].tolist() == ["locked/"] and "cannot list folder" in run.failures["reason"][0]
    m, f = measure_images(d, workers=1, progress=False, min_side=8)
    assert len(m) == 2 and f["image"].tolist() == ["locked/"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can list a mode-000 folder; covered by the simulated test above")
def test_mode_000_subfolder_is_a_listed_failure(tmp_path):  # pragma: no cover - only when not root
    from discbias.scoring.sources import discover

    d = tmp_path / "img"
    make_images(d / "a", 1, size=(16, 16))
    (d / "locked").mkdir()
    os.chmod(d / "locked", 0)
    try:
        assert [it.image for it in discover(d) if it.error] == ["locked/"]
    finally:
        os.chmod(d / "locked", 0o755)
