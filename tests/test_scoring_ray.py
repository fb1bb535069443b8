"""``discbias score --engine ray``: same keys and scores as the local engine, resumable after a killed driver.

These tests start a local Ray instance (2 CPUs) and score about 100 generated images with a small
random-weights discriminator. They need the optional extra (``pip install 'discbias[ray]'``;
``.ci/run`` installs it) and are skipped without it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'discbias[ray]' to run the Ray engine tests")
pytest.importorskip("ray.data", reason="the Ray engine needs ray[data]: pip install 'discbias[ray]'")

from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, discover  # noqa: E402
from discbias.scoring.ray_engine import RayScorer  # noqa: E402
from discbias.scoring.testing import make_images, save_random_discriminator  # noqa: E402

N_IMAGES = 100
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("ray_scoring")
    weights = save_random_discriminator(d / "D.pt", resolution=32)
    make_images(d / "img", N_IMAGES, size=(40, 36), seed=3)  # not square: resized by the protocol
    (d / "img" / "zz_broken.png").write_bytes(b"not an image")  # listed as a failure by both engines
    return d, weights


def _computed(cache: ScoreCache):
    df = cache.frame("provenance = 'computed'")
    return df.drop(columns=["created_at", "checksum"]).set_index("key").sort_index()  # both record when the row was written


def test_ray_engine_matches_local_engine(ray_local, images, tmp_path):
    d, weights = images
    items = discover(d / "img")
    proto = ScoringProtocol(resize="center-crop")
    local_cache, ray_cache = ScoreCache(tmp_path / "local"), ScoreCache(tmp_path / "ray")
    local = Scorer(weights, proto, batch_size=8, min_side=8).score_items(items, local_cache, progress=False)
    rs = RayScorer(weights, proto, batch_size=8, min_side=8, threads=1)
    run = rs.score_items(items, ray_cache, progress=False)

    assert (run.scored, run.from_cache, run.failed) == (N_IMAGES, 0, 1)
    a, b = _computed(local_cache), _computed(ray_cache)
    assert len(a) == N_IMAGES and list(a.index) == list(b.index)  # identical keys
    assert np.array_equal(a["score"].to_numpy(), b["score"].to_numpy())  # identical scores, bit for bit
    assert a.drop(columns=["score"]).equals(b.drop(columns=["score"]))
    assert run.table.drop(columns="from_cache").equals(local.table.drop(columns="from_cache"))
    assert run.failures[["image", "reason"]].values.tolist() == local.failures[["image", "reason"]].values.tolist()
    assert "not a readable image" in run.failures["reason"].iloc[0]
    assert len(ray_cache.failures()) == 1
    assert ray_cache.image_stats().sort_values("image_sha256").reset_index(drop=True).equals(
        local_cache.image_stats().sort_values("image_sha256").reset_index(drop=True))

    again = rs.score_items(items, ray_cache, progress=False)  # everything cached: nothing rescored
    assert (again.scored, again.from_cache) == (0, N_IMAGES)
    assert np.array_equal(again.table["score"].to_numpy(), run.table["score"].to_numpy())


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or its schema is being written
        return 0


def test_killed_ray_driver_resumes_without_loss_or_duplicates(ray_local, images, tmp_path):
    d, weights = images
    cache_dir = tmp_path / "cache"
    # the driver: `discbias score --engine ray` in a subprocess, killed (SIGKILL) after some batches
    cmd = [sys.executable, "-m", "discbias.cli", "score", str(d / "img"), "--weights", str(weights),
           "--engine", "ray", "--batch-size", "1", "--threads", "1", "--min-side", "8", "--cache-dir", str(cache_dir),
           "--no-progress", "--json"]
    env = dict(os.environ, RAY_ADDRESS="")  # its own local Ray instance
    # its own session, so that killing its process group also kills the Ray processes it started
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    db = cache_dir / "scores.sqlite"
    deadline = time.monotonic() + 240
    n_at_kill = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            n_at_kill = _count(db)
            if n_at_kill >= 5:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    n_before = _count(db)
    assert 5 <= n_at_kill <= n_before < N_IMAGES, (n_at_kill, n_before)  # killed mid-run, after some batches

    # rerun (in this process, on the module's Ray instance: the same code path as the command)
    cache = ScoreCache(cache_dir)
    run = RayScorer(weights, ScoringProtocol(), batch_size=1, min_side=8, threads=1).score_items(
        discover(d / "img"), cache, progress=False)
    assert run.from_cache == n_before  # nothing committed before the kill is recomputed
    assert run.scored == N_IMAGES - n_before and run.failed == 1
    cache = ScoreCache(cache_dir)
    assert cache.count() == N_IMAGES and cache.verify() == []  # nothing lost, nothing duplicated
    assert cache.failures()["image"].tolist() == ["zz_broken.png"]

    # the resumed scores are those of an uninterrupted local run (batch size 1 in both)
    ref = ScoreCache(tmp_path / "ref")
    Scorer(weights, ScoringProtocol(), batch_size=1, min_side=8).score_items(discover(d / "img"), ref, progress=False)
    a, b = _computed(ref), _computed(cache)
    assert list(a.index) == list(b.index)
    assert np.array_equal(a["score"].to_numpy(), b["score"].to_numpy())


def test_ray_engine_needs_the_extra_message():
    from discbias.scoring.ray_engine import RAY_MISSING, ray_available

    assert ray_available()
    assert "pip install 'discbias[ray]'" in RAY_MISSING
