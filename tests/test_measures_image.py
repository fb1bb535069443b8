"""Image measures against hand-computed reference values, and the streaming runner."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from discbias.measures import discover_images, image_measures, measure_images
from discbias.scoring import ImageError, SourceError
from discbias.measures.image import IMAGE_MEASURES, laplacian_variance

skimage_color = pytest.importorskip("skimage.color")


def _two_colour(c1, c2, shape=(4, 4)):
    img = np.zeros((*shape, 3), np.uint8)
    img[:, : shape[1] // 2] = c1
    img[:, shape[1] // 2:] = c2
    return img


def test_means_luma_lab_against_references():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    m = image_measures(img)
    f = img.astype(float)
    assert m["mean_r"] == pytest.approx(f[..., 0].mean())
    assert m["mean_b"] == pytest.approx(f[..., 2].mean())
    assert m["luma_709"] == pytest.approx((f / 255 @ [0.2126, 0.7152, 0.0722]).mean(), rel=1e-6)
    lab = skimage_color.rgb2lab(img)
    # (skimage's rounded dark-segment slope: see test_measures_color)
    assert m["lab_l"] == pytest.approx(lab[..., 0].mean(), abs=1e-4)
    assert m["lab_a"] == pytest.approx(lab[..., 1].mean(), abs=1e-4)
    assert m["lab_b"] == pytest.approx(lab[..., 2].mean(), abs=1e-4)
    assert m["chroma"] == pytest.approx(np.hypot(lab[..., 1], lab[..., 2]).mean(), abs=1e-4)
    assert m["rel_luminance"] == pytest.approx(skimage_color.rgb2xyz(img)[..., 1].mean(), abs=2e-4)
    assert (m["width"], m["height"]) == (10, 12)
    assert list(m) == IMAGE_MEASURES


def test_hue_is_a_circular_mean():
    # Equal-chroma colours at hue ~ +20 and ~ -20 degrees average to ~0, not 180.
    lab = np.array([[[60.0, 40 * np.cos(np.radians(20)), 40 * np.sin(np.radians(20))],
                     [60.0, 40 * np.cos(np.radians(-20)), 40 * np.sin(np.radians(-20))]]])
    rgb = np.round(skimage_color.lab2rgb(lab) * 255).astype(np.uint8)
    h = image_measures(rgb)["hue_deg"]
    assert min(h, 360 - h) < 2.0


def test_colorfulness_hasler_suesstrunk():
    assert image_measures(np.full((4, 4, 3), 77, np.uint8))["colorfulness"] == 0.0
    img = _two_colour((255, 0, 0), (0, 0, 255))
    rg = np.array([255.0, 0.0]); yb = np.array([127.5, -255.0])
    expected = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    assert image_measures(img)["colorfulness"] == pytest.approx(expected)


def test_contrast_sharpness_clipping():
    flat = np.full((8, 8, 3), 100, np.uint8)
    m = image_measures(flat)
    assert m["rms_contrast"] == 0 and m["sharpness"] == 0 and m["clipped_dark"] == 0
    checker = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)
    m = image_measures(checker)
    assert m["clipped_dark"] == pytest.approx(0.5) and m["clipped_bright"] == pytest.approx(0.5)
    assert m["rms_contrast"] == pytest.approx(0.5)
    assert m["sharpness"] == pytest.approx(1020.0 ** 2)  # the Laplacian of a 0/255 checkerboard is +-1020
    assert laplacian_variance(np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])) == 0.0  # one interior value
    blur = np.tile(np.linspace(0, 255, 8).astype(np.uint8), (8, 1))
    step = np.zeros((8, 8), np.uint8); step[:, 4:] = 255
    assert image_measures(step)["sharpness"] > image_measures(blur)["sharpness"]


def test_checkerboard_laplacian_is_constant_magnitude():
    g = (np.indices((6, 6)).sum(0) % 2).astype(float)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    assert np.all(np.abs(lap) == 4)
    assert laplacian_variance(g) == pytest.approx(16.0)


def test_region_measures():
    img = _two_colour((200, 150, 120), (20, 40, 200))
    mask = np.zeros((4, 4), bool); mask[:, :2] = True
    m = image_measures(img, {"skin": mask, "bg": ~mask})
    assert m["skin_mean_r"] == 200 and m["bg_mean_b"] == 200 and m["skin_share"] == 0.5
    assert m["skin_lab_l"] == pytest.approx(skimage_color.rgb2lab(np.array([[[200, 150, 120]]], np.uint8))[0, 0, 0])
    with pytest.raises(ValueError, match="mask 'skin' has shape"):
        image_measures(img, {"skin": np.ones((3, 3), bool)})


def test_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        image_measures(np.zeros((4, 4, 3), np.float32))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "00000").mkdir()
    (tmp_path / "01000").mkdir()
    for i, sub in enumerate(["00000", "00000", "01000"]):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / sub / f"{i:05d}.png")
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), "L").save(tmp_path / "01000" / "00003.png")
    return tmp_path


def test_measure_images_parallel_equals_serial_and_streams(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("o") / "m.parquet"
    serial, _ = measure_images(folder, workers=1, progress=False)
    par, errors = measure_images(folder, workers=2, chunk=2, out=out, progress=False)
    assert serial["image_id"].tolist() == ["00000", "00001", "00002", "00003"] and errors.empty
    assert serial["image"].iloc[3] == "01000/00003.png" and serial["conversion"].tolist()[2:] == ["", "gray->rgb"]
    pd.testing.assert_frame_equal(serial, par)
    pd.testing.assert_frame_equal(pd.read_parquet(out), par)
    assert not out.with_name(out.name + ".partial").exists()


def test_same_images_and_hashes_as_the_scoring_stage(folder):
    """measure-images sees exactly the files `discbias score` sees, with the score cache's image sha256."""
    from discbias.scoring import discover, sha256_file

    (folder / "notes.txt").write_text("x")
    (folder / "01000" / "x.bmp").write_bytes(b"BM")  # not a scoring suffix: ignored by both
    m, _ = measure_images(folder, workers=1, progress=False)
    items = discover(folder)
    assert m["image"].tolist() == [it.image for it in items]
    assert m["image_sha256"].tolist() == [sha256_file(it.path) for it in items]


def test_bad_files_handled_as_in_scoring(folder, weights_for_failures):
    """The same files fail, with the same reasons, in measure-images and in the scoring stage."""
    from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, discover

    (folder / "01000" / "00009.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (folder / "01000" / "00010.png").write_bytes(b"")
    Image.new("RGB", (12, 12)).save(folder / "01000" / "00011.png")
    m, failures = measure_images(folder, workers=1, progress=False)
    assert len(m) == 4 and failures["image"].tolist() == ["01000/00009.png", "01000/00010.png", "01000/00011.png"]
    assert failures["reason"].iloc[1] == "empty file (0 bytes)" and "too small" in failures["reason"].iloc[2]
    run = Scorer(weights_for_failures, ScoringProtocol(), num_workers=0).score_items(
        discover(folder), ScoreCache(folder.parent / "cache"), progress=False)
    pd.testing.assert_frame_equal(failures.reset_index(drop=True), run.failures.reset_index(drop=True))
    with pytest.raises(ImageError, match="00009.png"):
        measure_images(folder, workers=1, progress=False, on_error="error")


@pytest.fixture(scope="module")
def weights_for_failures(tmp_path_factory):
    from discbias.scoring.testing import save_random_discriminator

    return save_random_discriminator(tmp_path_factory.mktemp("w") / "D.pt", resolution=16)


def test_manifest_and_errors(folder, tmp_path):
    man = folder / "manifest.csv"
    pd.DataFrame({"image": ["00000/00000.png", "01000/00002.png"], "group": ["a", "b"]}).to_csv(man, index=False)
    d = discover_images(man)
    assert d["image_id"].tolist() == ["00000", "00002"] and d["group"].tolist() == ["a", "b"]
    assert measure_images(man, workers=1, progress=False)[0]["image"].tolist() == ["00000/00000.png", "01000/00002.png"]
    pd.DataFrame({"file": ["x"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SourceError, match="`image` column"):
        discover_images(tmp_path / "bad.csv")
    with pytest.raises(SourceError, match="does not exist"):
        discover_images(tmp_path / "nope")


def test_faces_option_adds_face_and_region_columns(folder):
    m, _ = measure_images(folder, workers=1, progress=False, faces="template")
    for c in ("skin_L", "ita_deg", "ita_class", "monk_tone", "skin_lab_l", "bg_luma_709", "skin_share"):
        assert c in m.columns
    assert m["face_found"].all()


def test_cli_measure_images(folder, tmp_path, capsys):
    from discbias.cli import main

    out = tmp_path / "cli.parquet"
    assert main(["measure-images", str(folder), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert len(pd.read_parquet(out)) == 4 and not (tmp_path / "cli.failures.csv").exists()
    (folder / "bad.png").write_bytes(b"")
    assert main(["measure-images", str(folder), "--out", str(out), "--workers", "1", "--quiet"]) == 3
    assert "failed: bad.png: empty file (0 bytes)" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "cli.failures.csv")["image"].tolist() == ["bad.png"]
    assert main(["measure-images", str(tmp_path / "missing"), "--out", str(out), "--quiet"]) == 2


def test_manifest_metadata_columns_are_kept(tmp_path):
    """measure-images keeps every metadata column of the manifest (issue 14)."""
    from PIL import Image

    from discbias.measures.io import measure_images

    for k in range(3):
        Image.new("RGB", (32, 32), (80 * k, 10, 10)).save(tmp_path / f"{k}.png")
    pd.DataFrame({"image": [f"{k}.png" for k in range(3)], "group": ["a", "b", "a"], "hair": [1.5, 2.0, 3.0]}
                 ).to_csv(tmp_path / "m.csv", index=False)
    m, _ = measure_images(tmp_path / "m.csv", workers=1, progress=False, out=tmp_path / "o.parquet")
    assert m["group"].tolist() == ["a", "b", "a"] and m["hair"].tolist() == [1.5, 2.0, 3.0]
    assert pd.read_parquet(tmp_path / "o.parquet")["group"].tolist() == ["a", "b", "a"]
    pd.DataFrame({"image": ["0.png"], "mean_r": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"\['mean_r'\] have the names of measures"):
        measure_images(tmp_path / "bad.csv", workers=1, progress=False)
