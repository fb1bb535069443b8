"""Score-cache integrity (issue 12): row checksums, damaged files, zero-byte and unrelated databases."""

from __future__ import annotations

import random
import shutil
import sqlite3
import struct
from pathlib import Path

import pandas as pd
import pytest

from discbias.cli import main
from discbias.scoring import ScoreCache, ScoringProtocol
from discbias.scoring.cache import SCORE_COLUMNS, CacheError
from discbias.scoring.testing import make_images, save_random_discriminator

P = ScoringProtocol()


def _fill(path, n: int) -> ScoreCache:
    c = ScoreCache(path)
    rng = random.Random(n)
    rows = [dict(image=f"{i:05d}.png", image_sha256=f"{i:064x}", weights_sha256="b" * 64, protocol=P,
                 score=rng.uniform(-5, 5), conversion="") for i in range(n)]
    for i in range(0, n, 500):
        c.put_batch(rows[i:i + 500])
    c.import_released("s", pd.DataFrame({"image_id": ["r1", "r2"], "score": [0.25, -1.5]}), source="x.csv")
    return c


def _flip_score_bit(db: Path, key: str, bit: int) -> None:
    con = sqlite3.connect(db)
    (v,) = con.execute("SELECT score FROM scores WHERE key = ?", (key,)).fetchone()
    (u,) = struct.unpack("<Q", struct.pack("<d", v))
    con.execute("UPDATE scores SET score = ? WHERE key = ?", (struct.unpack("<d", struct.pack("<Q", u ^ (1 << bit)))[0], key))
    con.commit()
    con.close()


def test_one_bit_change_in_any_stored_score_is_found_and_never_served(tmp_path):
    c = _fill(tmp_path / "c.sqlite", 40)
    keys = [r["key"] for r in c._con.execute("SELECT key FROM scores ORDER BY key")]
    c.close()
    db = tmp_path / "c.sqlite"
    for i, key in enumerate(keys):  # every stored score, a different bit each time (0..63)
        _flip_score_bit(db, key, i % 64)
        c = ScoreCache(db)
        problems = c.verify()
        assert len(problems) == 1 and key in problems[0] and "checksum" in problems[0], (i, problems)
        with pytest.raises(CacheError, match="fail their checksum"):
            c.frame()
        c.close()
        _flip_score_bit(db, key, i % 64)  # restore
    c = ScoreCache(db)
    assert c.verify() == []
    shas = [f"{i:064x}" for i in range(40)]
    assert len(c.get_scores(shas, "b" * 64, P)) == 40
    _flip_score_bit(db, keys[3], 0)
    with pytest.raises(CacheError, match="fail their checksum"):
        c.get_scores(shas, "b" * 64, P)


def test_score_refuses_a_damaged_row_then_drop_damaged_rescores_it(tmp_path, capsys):
    w = save_random_discriminator(tmp_path / "D.pt", 16)
    make_images(tmp_path / "img", 6, size=(16, 16), seed=1)
    args = ["score", str(tmp_path / "img"), "--weights", str(w), "--cache-dir", str(tmp_path / "cache"),
            "--min-side", "8", "--workers", "0", "--no-progress"]
    assert main(args) == 0
    db = tmp_path / "cache" / "scores.sqlite"
    con = sqlite3.connect(db)
    (key,) = con.execute("SELECT key FROM scores LIMIT 1").fetchone()
    con.close()
    _flip_score_bit(db, key, 5)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "fail their checksum" in err and "Traceback" not in err
    assert main(["cache", "verify", "--cache-dir", str(tmp_path / "cache")]) == 1
    assert main(["cache", "verify", "--drop-damaged", "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert main(args + ["--json"]) == 0
    assert '"scored": 1' in capsys.readouterr().out


def _run_all(tmp_path, cache: Path, capsys) -> dict:
    w = tmp_path / "D.pt"
    if not w.exists():
        save_random_discriminator(w, 16)
        make_images(tmp_path / "img", 2, size=(16, 16), seed=2)
    out = {}
    for name, args in {
        "ls": ["cache", "ls", "--cache-dir", str(cache)],
        "export": ["cache", "export", "--cache-dir", str(cache), "--out", str(tmp_path / "e.csv")],
        "verify": ["cache", "verify", "--cache-dir", str(cache)],
        "score": ["score", str(tmp_path / "img"), "--weights", str(w), "--cache-dir", str(cache), "--min-side", "8",
                  "--workers", "0", "--no-progress"],
    }.items():
        capsys.readouterr()
        try:
            rc = main(args)
        except BaseException as exc:  # a crash is what this test looks for
            rc = f"crash: {type(exc).__name__}: {exc}"
        out[name] = (rc, capsys.readouterr().err)
    return out


def test_damaged_btree_page_is_reported_in_one_message(tmp_path, capsys):
    c = _fill(tmp_path / "good.sqlite", 3000)
    c.close()
    page = sqlite3.connect(tmp_path / "good.sqlite").execute("PRAGMA page_size").fetchone()[0]
    db = tmp_path / "bad.sqlite"
    shutil.copy(tmp_path / "good.sqlite", db)
    data = bytearray(db.read_bytes())
    n_pages = len(data) // page
    for pg in range(2, n_pages, 3):  # garbage into every third page after the schema page
        data[pg * page + 8: pg * page + 64] = b"\xa5" * 56
    db.write_bytes(bytes(data))
    res = _run_all(tmp_path, db, capsys)
    for name, (rc, err) in res.items():
        assert not str(rc).startswith("crash") and "Traceback" not in err, (name, rc, err)
    assert res["verify"][0] == 1 and "sqlite integrity" in res["verify"][1], res["verify"]
    for name in ("ls", "export", "score"):
        rc, err = res[name]
        assert rc == 2, (name, rc, err)
        lines = [ln for ln in err.splitlines() if "error" in ln]
        assert len(lines) == 1 and "damaged" in lines[0] and str(db) in lines[0], (name, err)


def test_random_byte_flips_never_crash(tmp_path, capsys):
    c = _fill(tmp_path / "good.sqlite", 800)
    c.close()
    good = (tmp_path / "good.sqlite").read_bytes()
    rng = random.Random(12)
    tried = 0
    for trial in range(8):
        data = bytearray(good)
        for _ in range(rng.choice([1, 20, 200])):
            pos = rng.randrange(100, len(data))
            data[pos] ^= 1 << rng.randrange(8)
        db = tmp_path / f"flip{trial}.sqlite"
        db.write_bytes(bytes(data))
        res = _run_all(tmp_path, db, capsys)
        for name, (rc, err) in res.items():
            tried += 1
            assert not str(rc).startswith("crash") and "Traceback" not in err, (trial, name, rc, err)
            assert rc in (0, 1, 2, 3), (trial, name, rc)
        assert res["verify"][0] == 1, (trial, res["verify"])  # verify finds the damage every time
    assert tried == 32


def test_zero_byte_cache_is_refused(tmp_path, capsys):
    db = tmp_path / "empty.sqlite"
    db.write_bytes(b"")
    with pytest.raises(CacheError, match="empty"):
        ScoreCache(db)
    assert main(["cache", "ls", "--cache-dir", str(db)]) == 2
    assert "empty (0 bytes), not a score cache" in capsys.readouterr().err
    assert db.stat().st_size == 0


def test_merge_from_unrelated_sqlite_is_refused_and_source_untouched(tmp_path, capsys):
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE people (name TEXT)")
    con.execute("INSERT INTO people VALUES ('x')")
    con.commit()
    con.close()
    before = other.read_bytes()
    _fill(tmp_path / "mine.sqlite", 3).close()
    assert main(["cache", "merge", "--cache-dir", str(tmp_path / "mine.sqlite"), str(other)]) == 2
    assert "not a score cache" in capsys.readouterr().err
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("other")) == ["other.sqlite"]
    assert sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    # an unrelated database as the cache itself is refused and left unchanged too
    with pytest.raises(CacheError, match="not a score cache"):
        ScoreCache(other)
    assert other.read_bytes() == before


def test_merge_source_with_damaged_row_is_refused(tmp_path):
    src = _fill(tmp_path / "src.sqlite", 5)
    key = src._con.execute("SELECT key FROM scores LIMIT 1").fetchone()[0]
    src.close()
    _flip_score_bit(tmp_path / "src.sqlite", key, 40)
    dst = ScoreCache(tmp_path / "dst.sqlite")
    with pytest.raises(CacheError, match="nothing merged.*checksum"):
        dst.merge_from(tmp_path / "src.sqlite")
    assert dst.count() == 0


def test_old_cache_without_checksums_is_upgraded_on_open(tmp_path, capsys):
    c = _fill(tmp_path / "old.sqlite", 5)
    c._con.execute("ALTER TABLE scores DROP COLUMN checksum")
    c.close()
    c = ScoreCache(tmp_path / "old.sqlite")
    assert "added row checksums to 7 rows" in capsys.readouterr().err
    assert c.verify() == [] and [r[1] for r in c._con.execute("PRAGMA table_info(scores)")] == SCORE_COLUMNS
    assert len(c.frame()) == 7
