"""The score cache: resume after a killed run, concurrent writers, merge of shards, released scores."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from discbias.cli import main
from discbias.scoring import ScoreCache, ScoringProtocol, cache_path, default_cache_dir
from discbias.scoring.cache import CacheError
from discbias.scoring.testing import make_images, save_random_discriminator

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env():
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    env.pop("DISCBIAS_CACHE_DIR", None)
    return env


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


@pytest.fixture()
def folder(tmp_path):
    w = save_random_discriminator(tmp_path / "D.pt", 16)
    make_images(tmp_path / "img", 24, size=(16, 16), seed=4)
    return tmp_path, w


def _score_args(tmp, w, *extra):
    return ["score", str(tmp / "img"), "--weights", str(w), "--cache-dir", str(tmp / "cache"), "--min-side", "8",
            "--workers", "0", "--no-progress", *extra]


FORK = mp.get_context("fork")  # children inherit the imported modules: no interpreter start-up per process


def _slow_main(args):
    """`discbias score` with a sleep in every forward pass, so that a test can kill it mid-run."""
    import discbias.scoring.scorer as s

    f = s.Scorer.forward_uint8
    s.Scorer.forward_uint8 = lambda self, x: (time.sleep(0.3), f(self, x))[1]
    sys.stderr = open(os.devnull, "w")
    os._exit(main(args))


def _quiet_main(args, out):
    sys.stderr = open(os.devnull, "w")
    sys.stdout = open(out, "w")
    rc = main(args)
    sys.stdout.flush()
    os._exit(rc)


def test_resume_after_sigkill_scores_only_the_missing_images(folder, capsys):
    tmp, w = folder
    db = tmp / "cache" / "scores.sqlite"
    proc = FORK.Process(target=_slow_main, args=(_score_args(tmp, w, "--batch-size", "4"),))
    proc.start()
    deadline = time.monotonic() + 60
    while _count(db) < 4 and time.monotonic() < deadline and proc.is_alive():
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    done = _count(db)
    assert 4 <= done < 24, f"kill came too late or too early ({done} committed)"
    assert done % 4 == 0  # whole batches only: the batch in flight is lost, nothing else
    capsys.readouterr()
    assert main(_score_args(tmp, w, "--batch-size", "4", "--json")) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["scored"], s["from_cache"], s["failed"]) == (24 - done, done, 0)
    cache = ScoreCache(db)
    assert cache.count() == 24 and cache.verify() == []


def test_ctrl_c_exits_130_and_keeps_committed_batches(folder, monkeypatch, capsys):
    import discbias.scoring.scorer as s

    tmp, w = folder
    calls = []
    f = s.Scorer.forward_uint8

    def interrupt_third(self, x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return f(self, x)

    monkeypatch.setattr(s.Scorer, "forward_uint8", interrupt_third)
    assert main(_score_args(tmp, w, "--batch-size", "4")) == 130
    assert "8 images of this run are saved" in capsys.readouterr().err
    assert ScoreCache(tmp / "cache").count() == 8


def test_two_processes_scoring_into_one_cache(folder):
    tmp, w = folder
    args = _score_args(tmp, w, "--batch-size", "2", "--json")
    procs = [FORK.Process(target=_quiet_main, args=(args, tmp / f"out{i}.json")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    summaries = [json.loads((tmp / f"out{i}.json").read_text()) for i in range(2)]
    assert all(s["scored"] + s["from_cache"] == 24 for s in summaries)
    assert sum(s["scored"] for s in summaries) >= 24  # both wrote; overlapping keys were not duplicated
    cache = ScoreCache(tmp / "cache")
    assert cache.count() == 24 and cache.verify() == []
    df = cache.frame()
    assert df["key"].is_unique and df["image_sha256"].nunique() == 24


def test_put_batch_is_idempotent_and_atomic(tmp_path):
    c = ScoreCache(tmp_path)
    p = ScoringProtocol()
    rows = [dict(image=f"{i}.png", image_sha256=f"{i:064d}", weights_sha256="w" * 64, protocol=p, score=float(i))
            for i in range(5)]
    assert c.put_batch(rows) == 5
    assert c.put_batch(rows) == 0
    bad = rows[:2] + [dict(image="x.png", image_sha256="f" * 64, weights_sha256="w" * 64, protocol=p, score="oops")]
    with pytest.raises(ValueError):
        c.put_batch([dict(r, image_sha256=r["image_sha256"].replace("0", "9")) for r in bad])
    assert c.count() == 5  # nothing of the failed batch was written


def test_sharded_runs_merge_to_the_full_run(folder, capsys):
    tmp, w = folder
    for i in range(3):
        assert main(_score_args(tmp, w, "--shard", f"{i}/3", "--cache-dir", str(tmp / f"shard{i}"))) == 0
    counts = [ScoreCache(tmp / f"shard{i}").count() for i in range(3)]
    assert sum(counts) == 24 and all(c > 0 for c in counts)
    assert main(["cache", "merge", "--cache-dir", str(tmp / "merged")] + [str(tmp / f"shard{i}") for i in range(3)]) == 0
    assert main(["cache", "merge", "--cache-dir", str(tmp / "merged"), str(tmp / "shard0")]) == 0  # idempotent
    merged = ScoreCache(tmp / "merged")
    assert merged.count() == 24 and merged.verify() == []
    assert main(_score_args(tmp, w, "--cache-dir", str(tmp / "full"))) == 0
    a = merged.frame().set_index("key")["score"].sort_index()
    b = ScoreCache(tmp / "full").frame().set_index("key")["score"].sort_index()
    pd.testing.assert_series_equal(a, b)
    capsys.readouterr()
    assert main(_score_args(tmp, w, "--cache-dir", str(tmp / "merged"), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["from_cache"] == 24


def test_released_scores_share_the_cache(tmp_path):
    c = ScoreCache(tmp_path)
    df = pd.DataFrame({"image_id": ["00001", "00002"], "score": [1.5, -2.0]})
    assert c.import_released("grissom2024:study1", df, source="RGB.csv", source_sha256="ab") == 2
    c.import_released("grissom2024:study1", df.assign(score=[1.5, -3.0]), source="RGB.csv", source_sha256="cd")
    got = c.released("grissom2024:study1")
    assert got["score"].tolist() == [1.5, -3.0] and set(got["provenance"]) == {"released"}
    assert c.count("released") == 2 and c.verify() == []
    assert c.released("other").empty


def test_cli_ls_export_verify(folder, capsys):
    tmp, w = folder
    assert main(_score_args(tmp, w)) == 0
    ScoreCache(tmp / "cache").import_released("s", pd.DataFrame({"image_id": ["a"], "score": [1.0]}), source="x")
    capsys.readouterr()
    assert main(["cache", "ls", "--cache-dir", str(tmp / "cache"), "--json"]) == 0
    ls = pd.DataFrame(json.loads(capsys.readouterr().out))
    assert sorted(ls["n"]) == [1, 24] and set(ls["provenance"]) == {"computed", "released"}
    assert main(["cache", "export", "--cache-dir", str(tmp / "cache"), "--out", str(tmp / "e.parquet"),
                 "--provenance", "computed"]) == 0
    e = pd.read_parquet(tmp / "e.parquet")
    assert len(e) == 24 and (e["provenance"] == "computed").all()
    assert main(["cache", "verify", "--cache-dir", str(tmp / "cache")]) == 0
    con = sqlite3.connect(tmp / "cache" / "scores.sqlite")
    con.execute("UPDATE scores SET weights_sha256 = 'tampered' WHERE rowid = 1")
    con.commit()
    con.close()
    assert main(["cache", "verify", "--cache-dir", str(tmp / "cache")]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    # a tampered row whose checksum was recomputed by the tamperer is still caught by its key
    from discbias.scoring.cache import SCORE_COLUMNS, row_checksum
    con = sqlite3.connect(tmp / "cache" / "scores.sqlite")
    r = con.execute(f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE rowid = 1").fetchone()
    con.execute("UPDATE scores SET checksum = ? WHERE rowid = 1", (row_checksum(r),))
    con.commit()
    con.close()
    assert main(["cache", "verify", "--cache-dir", str(tmp / "cache")]) == 1
    assert "key does not match" in capsys.readouterr().err


def test_cache_location_flag_env_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    assert cache_path() == tmp_path / "envcache" / "scores.sqlite"
    assert cache_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    monkeypatch.delenv("DISCBIAS_CACHE_DIR")
    assert cache_path(None, tmp_path) == tmp_path / "data" / "cache" / "scores.sqlite"
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CacheError, match="not a score cache"):
        ScoreCache(tmp_path / "junk.sqlite")
    c = ScoreCache(tmp_path / "old.sqlite")
    c._con.execute("UPDATE meta SET value = '999' WHERE name = 'schema_version'")
    c.close()
    with pytest.raises(CacheError, match="schema version 999"):
        ScoreCache(tmp_path / "old.sqlite")
