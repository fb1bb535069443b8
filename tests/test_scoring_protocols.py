"""Input and grouping protocols: each protocol's numbers, batch-size and order independence, cache keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from discbias.nets import load_discriminator
from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, discover, score_key
from discbias.scoring.images import decode_rgb, resize_square
from discbias.scoring.protocols import ProtocolError
from discbias.scoring.testing import make_images, save_random_discriminator

RES = 16


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("proto")
    w = save_random_discriminator(d / "D.pt", RES, seed=1, mbstd_group_size=4)
    make_images(d / "img", 10, size=(RES, RES), seed=2)
    make_images(d / "ref", 6, size=(RES, RES), seed=3)
    return d, w


def _uint8(path):
    arr, _ = decode_rgb(path.read_bytes(), min_side=1)
    arr, _ = resize_square(arr, RES)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def _score(setup, protocol, batch_size=4, items=None, **kw):
    d, w = setup
    cache = ScoreCache(d / f"cache-{np.random.randint(1 << 30)}")
    s = Scorer(w, protocol, batch_size=batch_size, min_side=1, reference=kw.pop("reference", None), **kw)
    run = s.score_items(items if items is not None else discover(d / "img"), cache, progress=False)
    return run, s


def test_nvidia_single_is_one_image_per_pass_on_scaled_input(setup):
    d, w = setup
    run, _ = _score(setup, ScoringProtocol(input="nvidia"), batch_size=8)
    D = load_discriminator(w)  # fresh network, default group size 4: one image per call => group of one
    with torch.inference_mode():
        expect = {p.name: float(D(_uint8(p)[None].float() / 127.5 - 1)[0, 0]) for p in sorted((d / "img").iterdir())}
    got = dict(zip(run.table["image"], run.table["score"]))
    assert got.keys() == expect.keys()
    np.testing.assert_allclose([got[k] for k in sorted(got)], [expect[k] for k in sorted(expect)], atol=1e-5, rtol=0)
    assert set(run.table["protocol"]) == {"nvidia"} and set(run.table["grouping"]) == {"single"}


def test_grissom2024_passes_unscaled_uint8_values(setup):
    d, w = setup
    run, _ = _score(setup, ScoringProtocol(input="grissom2024"), batch_size=8)
    D = load_discriminator(w)
    with torch.inference_mode():
        expect = [float(D(_uint8(p)[None].float())[0, 0]) for p in sorted((d / "img").iterdir())]
    np.testing.assert_allclose(run.table.sort_values("image")["score"], expect, atol=1e-4, rtol=1e-6)
    nv, _ = _score(setup, ScoringProtocol(input="nvidia"), batch_size=8)
    assert not np.allclose(nv.table["score"], run.table["score"], atol=1e-3)


def test_grissom2024_forbids_reference_groups():
    with pytest.raises(ProtocolError, match="one image per forward pass"):
        ScoringProtocol(input="grissom2024", grouping="reference-group")


def test_reference_group_matches_an_explicit_group_and_reports_spread(setup):
    d, w = setup
    run, s = _score(setup, ScoringProtocol(grouping="reference-group", draws=3, seed=7), reference=d / "ref")
    assert s.refs.shape == (3, 3, 3, RES, RES)  # draws x (G-1) references
    D = load_discriminator(w)  # group size 4
    p0 = sorted((d / "img").iterdir())[0]
    x = _uint8(p0)[None]
    with torch.inference_mode():
        per_draw = [float(D(torch.cat([x, s.refs[k]]).float() / 127.5 - 1)[0, 0]) for k in range(3)]
    r = run.table.set_index("image").loc[p0.name]
    assert r["score"] == pytest.approx(np.mean(per_draw), abs=1e-5)
    assert r["score_sd"] == pytest.approx(np.std(per_draw, ddof=1), abs=1e-5)
    assert r["n_draws"] == 3 and r["grouping"] == "reference-group"
    single, _ = _score(setup, ScoringProtocol())
    assert not np.allclose(single.table["score"], run.table["score"], atol=1e-4)


def test_reference_group_needs_a_reference_set(setup):
    d, w = setup
    with pytest.raises(ProtocolError, match="--reference"):
        Scorer(w, ScoringProtocol(grouping="reference-group"))


@pytest.mark.parametrize("protocol", [ScoringProtocol(), ScoringProtocol(input="grissom2024"),
                                      ScoringProtocol(flip=True),
                                      ScoringProtocol(grouping="reference-group", draws=2, seed=3)],
                         ids=["nvidia", "grissom2024", "flip", "reference-group"])
def test_scores_do_not_depend_on_batch_size_or_order(setup, protocol):
    d, _ = setup
    ref = d / "ref" if protocol.grouping == "reference-group" else None
    items = discover(d / "img")
    one, _ = _score(setup, protocol, batch_size=1, reference=ref)
    eight, _ = _score(setup, protocol, batch_size=8, reference=ref)
    shuffled = [items[i] for i in np.random.default_rng(5).permutation(len(items))]
    mixed, _ = _score(setup, protocol, batch_size=3, items=shuffled, reference=ref)
    a = one.table.set_index("image")["score"]
    for other in (eight, mixed):
        b = other.table.set_index("image")["score"].reindex(a.index)
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert a.std() > 1e-4  # the images do get different scores


def test_flip_averages_image_and_mirror(setup):
    d, w = setup
    run, _ = _score(setup, ScoringProtocol(flip=True))
    D = load_discriminator(w)
    p0 = sorted((d / "img").iterdir())[0]
    x = _uint8(p0)[None].float() / 127.5 - 1
    with torch.inference_mode():
        expect = (float(D(x)[0, 0]) + float(D(x.flip(3))[0, 0])) / 2
    assert run.table.set_index("image").loc[p0.name, "score"] == pytest.approx(expect, abs=1e-5)


@pytest.mark.parametrize("resize", ["stretch", "center-crop", "pad"])
@pytest.mark.parametrize("filt", ["lanczos", "bicubic"])
def test_resize_rules(tmp_path, resize, filt):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 200  # left half bright
    out, note = resize_square(arr, 16, resize, filt)
    assert out.shape == (16, 16, 3) and note.startswith(f"{resize}-{filt}")
    if resize == "pad":
        assert (out[:4] == 0).all() and (out[-4:] == 0).all()  # 40x20 -> 16x8, padded top and bottom
    if resize == "center-crop":
        assert out[:, 0].mean() > 150 and out[:, -1].mean() < 50  # centre crop keeps the boundary in the middle


def test_resize_and_filter_change_scores_of_non_square_images(setup, tmp_path):
    d, w = setup
    make_images(tmp_path / "wide", 4, size=(40, 24), seed=9)
    scores = {}
    for resize in ("stretch", "center-crop", "pad"):
        for filt in ("lanczos", "bicubic"):
            s = Scorer(w, ScoringProtocol(resize=resize, filter=filt), min_side=1)
            run = s.score_items(discover(tmp_path / "wide"), ScoreCache(tmp_path / "c"), progress=False)
            assert run.scored == 4 and set(run.table["resize"]) == {resize} and set(run.table["filter"]) == {filt}
            assert run.table["conversion"].str.contains(f"{resize}-{filt} 40x24->16").all()
            scores[resize, filt] = run.table["score"].to_numpy()
    keys = list(scores)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not np.allclose(scores[keys[i]], scores[keys[j]], atol=1e-9, rtol=0), (keys[i], keys[j])


BASE = ScoringProtocol(grouping="reference-group", draws=2, seed=1, reference_sha256="r" * 64, group_size=4)


@pytest.mark.parametrize("change", [dict(input="nvidia", grouping="single"), dict(resize="pad"),
                                    dict(resize="center-crop"), dict(filter="bicubic"), dict(flip=True),
                                    dict(draws=3), dict(seed=2), dict(reference_sha256="s" * 64), dict(group_size=2),
                                    dict(precision="fp16-blocks")])
def test_cache_key_changes_with_every_protocol_setting(change):
    changed = dataclasses.replace(BASE, **change)
    assert score_key("a" * 64, "w" * 64, changed) != score_key("a" * 64, "w" * 64, BASE)


def test_cache_key_changes_with_weights_image_and_schema():
    k = score_key("a" * 64, "w" * 64, BASE)
    assert score_key("a" * 64, "v" * 64, BASE) != k
    assert score_key("b" * 64, "w" * 64, BASE) != k
    assert score_key("a" * 64, "w" * 64, BASE, schema_version=2) != k
    assert score_key("a" * 64, "w" * 64, dataclasses.replace(BASE)) == k


def test_other_weights_file_is_rescored(setup, tmp_path):
    d, w = setup
    w2 = save_random_discriminator(tmp_path / "D2.pt", RES, seed=99)
    cache = ScoreCache(tmp_path / "c")
    items = discover(d / "img")
    a = Scorer(w, min_side=1).score_items(items, cache, progress=False)
    b = Scorer(w2, min_side=1).score_items(items, cache, progress=False)
    again = Scorer(w, min_side=1).score_items(items, cache, progress=False)
    assert (a.scored, b.scored, b.from_cache, again.from_cache) == (10, 10, 0, 10)
    assert a.weights_sha256 != b.weights_sha256


def test_changing_a_protocol_setting_rescores_only_that(setup, tmp_path):
    d, w = setup
    cache = ScoreCache(tmp_path / "c")
    items = discover(d / "img")
    assert Scorer(w, min_side=1).score_items(items, cache, progress=False).scored == 10
    assert Scorer(w, ScoringProtocol(filter="bicubic"), min_side=1).score_items(items, cache, progress=False).scored == 10
    assert Scorer(w, ScoringProtocol(flip=True), min_side=1).score_items(items, cache, progress=False).scored == 10
    assert Scorer(w, min_side=1).score_items(items, cache, progress=False).from_cache == 10
    assert cache.count() == 30


def test_renamed_file_comes_from_cache_changed_file_is_rescored(setup, tmp_path):
    d, w = setup
    src = tmp_path / "img"
    make_images(src, 3, size=(RES, RES), seed=11)
    cache = ScoreCache(tmp_path / "c")
    Scorer(w, min_side=1).score_items(discover(src), cache, progress=False)
    (src / "00000.png").rename(src / "renamed.png")
    Image.fromarray(np.full((RES, RES, 3), 9, np.uint8)).save(src / "00001.png")
    run = Scorer(w, min_side=1).score_items(discover(src), cache, progress=False)
    assert (run.scored, run.from_cache) == (1, 2)
    assert not run.table.set_index("image").loc["00001.png", "from_cache"]


def test_unchanged_files_are_not_rehashed(setup, tmp_path, monkeypatch):
    import os

    import discbias.scoring.scorer as scorer_mod

    d, w = setup
    src = tmp_path / "img"
    make_images(src, 4, size=(RES, RES), seed=12)
    cache = ScoreCache(tmp_path / "c")
    calls = []
    real = scorer_mod.sha256_regular_file
    s = Scorer(w, min_side=1)
    monkeypatch.setattr(scorer_mod, "sha256_regular_file", lambda p: (calls.append(str(p)), real(p))[1])
    assert s.score_items(discover(src), cache, progress=False).scored == 4 and len(calls) == 4
    calls.clear()
    assert s.score_items(discover(src), cache, progress=False).from_cache == 4 and calls == []
    st = os.stat(src / "00002.png")
    os.utime(src / "00002.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1000))  # touched, same bytes
    run = s.score_items(discover(src), cache, progress=False)
    assert [Path(c).name for c in calls] == ["00002.png"] and run.from_cache == 4
    calls.clear()
    assert s.score_items(discover(src), cache, progress=False, rehash=True).from_cache == 4 and len(calls) == 4
