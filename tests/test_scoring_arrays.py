"""In-memory images through the scoring stage: same scores as files, the cache, batches, failures."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, discover, score_arrays, sha256_pixels
from discbias.scoring.testing import random_image, save_random_discriminator

RES = 16



@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_random_discriminator(tmp_path_factory.mktemp("w") / "D.pt", resolution=RES, seed=3)


def _arrays(n=6, size=(RES, RES), seed=1):
    rng = np.random.default_rng(seed)
    return [random_image(rng, size) for _ in range(n)]


@pytest.mark.parametrize("proto", ["nvidia", "grissom2024"])
@pytest.mark.parametrize("size", [(RES, RES), (24, 20)])
def test_array_scores_equal_file_scores(weights, tmp_path, proto, size):
    """An array and a lossless PNG of the same pixels get the same score (same preprocessing), but
    are two cache rows: files are keyed by the file's sha256, arrays by sha256_pixels."""
    arrs = _arrays(4, size)
    for i, a in enumerate(arrs):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    p = ScoringProtocol(input=proto)
    s = Scorer(weights, p, min_side=8)
    files = s.score_items(discover(tmp_path), ScoreCache(tmp_path / "c1"), progress=False)
    mem = s.score_arrays(arrs, ScoreCache(tmp_path / "c2"), names=[f"{i}.png" for i in range(4)])
    np.testing.assert_array_equal(mem.table["score"].to_numpy(), files.table["score"].to_numpy())
    assert mem.table["conversion"].tolist() == files.table["conversion"].tolist()
    assert set(mem.table["image_sha256"]) == {sha256_pixels(a) for a in arrs}
    assert not set(mem.table["image_sha256"]) & set(files.table["image_sha256"])
    # colour statistics go into the cache as for files
    st = ScoreCache(tmp_path / "c2").image_stats(mem.table["image_sha256"])
    assert len(st) == 4 and set(st["width"]) == {size[0]}


def test_rerun_is_free_batches_equal_and_duplicates_scored_once(weights, tmp_path):
    arrs = _arrays(7)
    arrs.append(arrs[2].copy())  # a duplicate: one forward pass, two rows
    cache = ScoreCache(tmp_path / "c")
    s8 = Scorer(weights, ScoringProtocol(), min_side=8, batch_size=8)
    first = s8.score_arrays(arrs, cache, source="test")
    assert (first.scored, first.from_cache, first.failed, len(first.table)) == (7, 0, 0, 8)
    assert first.table["score"].iloc[7] == first.table["score"].iloc[2]
    again = s8.score_arrays(arrs, cache)
    assert (again.scored, again.from_cache) == (0, 8) and again.table["from_cache"].all()
    pd.testing.assert_series_equal(first.table["score"], again.table["score"])
    # batch size 1 in a fresh cache: same numbers
    one = Scorer(weights, ScoringProtocol(), min_side=8, batch_size=1).score_arrays(arrs, ScoreCache(tmp_path / "c1"))
    np.testing.assert_allclose(one.table["score"], first.table["score"], rtol=1e-5, atol=1e-6)
    # another protocol is another key; the cache holds 7 + 7 rows and verifies
    g = Scorer(weights, ScoringProtocol(input="grissom2024"), min_side=8).score_arrays(arrs, cache)
    assert g.scored == 7 and not np.allclose(g.table["score"], first.table["score"])
    assert cache.count() == 14 and cache.verify() == []
    rows = cache.frame()
    assert set(rows["source"]) == {"test", "memory"} and set(rows["image"]) >= {"array-0", "array-6"}


def test_interrupted_run_keeps_committed_batches(weights, tmp_path):
    arrs = _arrays(6, seed=4)
    cache = ScoreCache(tmp_path / "c")
    s = Scorer(weights, ScoringProtocol(), min_side=8, batch_size=2)

    def boom(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        s.score_arrays(arrs, cache, on_batch=boom)
    assert cache.count() == 2
    rest = s.score_arrays(arrs, cache)
    assert (rest.scored, rest.from_cache) == (4, 2)


def test_small_arrays_are_failures_and_wrong_arrays_raise(weights, tmp_path):
    cache = ScoreCache(tmp_path / "c")
    arrs = [np.zeros((4, 4, 3), np.uint8)] + _arrays(2)
    run = score_arrays(arrs, weights, cache=cache, names=["tiny", "a", "b"], min_side=8)
    assert run.failed == 1 and run.table["image"].tolist() == ["a", "b"]
    assert run.failures["image"].tolist() == ["tiny"] and "too small" in run.failures["reason"].iloc[0]
    assert cache.failures()["image"].tolist() == ["tiny"]
    with pytest.raises(TypeError, match="uint8"):
        score_arrays([np.zeros((RES, RES, 3), np.float32)], weights, cache=cache)
    with pytest.raises(ValueError, match="H x W x 3"):
        score_arrays([np.zeros((RES, RES), np.uint8)], weights, cache=cache)
    with pytest.raises(ValueError, match="names"):
        Scorer(weights, min_side=8).score_arrays(arrs, cache, names=["x"])
