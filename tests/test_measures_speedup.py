"""The vectorised measures reproduce the per-image implementation's outputs.

``tests/data/measures_reference.csv`` holds ``measure-images --faces template`` outputs of the
per-image implementation (commit f2aa1c5) on generated images (scikit-image's sample photographs
stretched to 97 and 128 px, noise, a gradient, flat black/white/grey), written by
``tests/data/make_measures_reference.py``. The speed target lives in ``benchmarks/bench_measures.py``.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from discbias.measures import image_measures, measure_images
from discbias.measures.image import colour_histogram

RTOL = 1e-10
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(DATA / "measures_reference.csv", keep_default_na=False, na_values=[""])


def test_measures_match_the_per_image_implementation(reference, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_ref", DATA / "make_measures_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.write_images(tmp_path)
    got, failures = measure_images(tmp_path, workers=2, faces="template", progress=False)
    assert len(failures) == 0
    got = got.drop(columns=["path", "image_sha256"])
    assert list(got.columns) == list(reference.columns)
    assert got["image"].tolist() == reference["image"].tolist()
    text = ("image", "image_id", "conversion", "face_method", "ita_class", "face_found")
    num = [c for c in reference.columns if c not in text]
    assert len(num) > 50
    for c in num:
        a, b = got[c].to_numpy(np.float64), reference[c].to_numpy(np.float64)
        # Only the order of the float64 additions changed, so the means agree to 1e-10 relative;
        # but the float32 luma of a colour comes from BLAS (pixels @ weights), whose kernel for a
        # one-colour image rounds differently from its kernel for a million pixels: one float32
        # ulp (1.2e-7 relative, seen on the flat white images), as the per-pixel code already did.
        rtol = 2.5e-7 if c.endswith("luma_709") else RTOL
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, equal_nan=True, err_msg=c)
    for c in ("ita_class", "face_method", "conversion", "image_id"):
        assert got[c].fillna("").astype(str).tolist() == reference[c].fillna("").astype(str).tolist(), c
    assert (got["face_found"].astype(bool) == reference["face_found"].astype(bool)).all()


def test_colour_histogram_counts_every_pixel():
    rng = np.random.default_rng(1)
    px = rng.integers(0, 4, (500, 3)).astype(np.uint8)
    colours, counts = colour_histogram(px)
    assert counts.sum() == 500 and len(colours) == len({tuple(p) for p in px.tolist()})
    for c, k in zip(colours[:10], counts[:10]):
        assert k == (px == c).all(axis=1).sum()
    assert colour_histogram(np.zeros((0, 3), np.uint8))[0].shape == (0, 3)


def test_flat_image_has_zero_spread():
    m = image_measures(np.full((16, 16, 3), 77, np.uint8))
    assert m["colorfulness"] == 0.0 and m["rms_contrast"] == 0.0 and m["mean_r"] == 77.0
