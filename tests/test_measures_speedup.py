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

#: float64 arithmetic whose only change is the order of additions (means over at most ~20,000
#: pixels, per-colour float64 Lab of the face measures): n * 2**-53 relative is below 3e-12.
RTOL = 1e-10
ATOL = 1e-12
#: Unit roundoff of float32. The image and region measures compute each colour's luma, Y and
#: CIELAB in float32 (8-bit input carries no more precision) and average in float64; the float32
#: results are not the same bits on every machine: the 3-term products (pixels @ weights) run through
#: BLAS kernels that sum in different orders, and numpy's float32 ``cbrt`` and ``hypot`` dispatch to
#: SIMD implementations (AVX-512, AVX2, baseline) accurate to a few ULP but not identical.
U32 = 2.0 ** -24
#: A 3-term sum of non-negative float32 products: each order is within 3*U32 relative of the exact
#: value, so two orders differ by at most 6*U32 relative (luma, Y).
DOT32 = 6 * U32
#: f(t) = cbrt(X/Xn) etc.: its input carries DOT32 relative error, which the cube root divides by 3
#: (2*U32); two cube roots each within 4 ULP of the truth differ by 8 ULP, 16*U32 relative (an ULP of
#: a value in [2**k, 2**(k+1)) is at most 2*U32 of it); the linear segment below epsilon adds 2*U32.
#: f <= 1.05 for in-gamut colours, so f's absolute error is at most:
FX32 = (2 + 16 + 2) * U32 * 1.05


def _abs_tolerance(column: str, ref: pd.DataFrame) -> np.ndarray:
    """Absolute tolerance of each reference value of ``column`` that holds on any IEEE-754 machine.

    Derived from the arithmetic, not from one machine's differences: every measure is a float64
    mean of per-colour values, so its error is bounded by the per-colour error bound below. The
    differences seen between an AVX-512 machine with OpenBLAS's SkylakeX kernels and the machine
    that wrote the reference were 30x to 100x inside these bounds (e.g. lab_a 3.0e-5 of 1.25e-3).
    """
    v = ref[column].to_numpy(np.float64)
    base = np.maximum(RTOL * np.abs(v), ATOL)
    # Region measures carry a "skin_"/"bg_" prefix. (The face measures skin_L, skin_a, skin_b, ita_deg
    # are float64 per colour and keep RTOL; skin_chroma and skin_hue_deg are the skin region's.)
    name = column.removeprefix("skin_").removeprefix("bg_")
    da, db = 500 * 2 * FX32, 200 * 2 * FX32  # a* = 500 (fx - fy), b* = 200 (fy - fz)
    if name in ("luma_709", "rel_luminance"):
        return np.maximum(base, DOT32 * np.abs(v))
    if name == "rms_contrast":  # SD of per-pixel luma in [0, 1]: moves by at most the luma's error
        return np.maximum(base, DOT32 * 1.0)
    if name == "sharpness":  # variance of a Laplacian (coefficients summing to 8 in absolute value) of
        d_lap = 8 * DOT32 * 255.0  # float32 luma on the 0-255 scale: |d var| <= 2 sqrt(E lap^2) d_lap
        return np.maximum(base, 2 * np.sqrt(np.abs(v) + 255.0 ** 2) * d_lap)
    if name == "lab_l":
        return np.maximum(base, 116 * FX32 + 2 * 2 * U32 * 100)  # plus the float32 rounding of 116 f - 16
    if name == "lab_a":
        return np.maximum(base, da + 4 * U32 * 100)
    if name == "lab_b":
        return np.maximum(base, db + 4 * U32 * 100)
    if name == "chroma":  # hypot(a, b) of float32 a, b (hypot itself within 4 ULP on each side)
        return np.maximum(base, np.hypot(da, db) + 16 * U32 * np.abs(v) + 8 * U32 * 100)
    if name == "hue_deg":  # atan2 of the mean b*, a*: the angle moves by at most |d(a, b)| / chroma radians;
        # near-grey colours (chroma within 10x that error of 0) have no defined hue: no bound, not compared
        prefix = column[: -len("hue_deg")]
        c = np.hypot(ref[prefix + "lab_a"], ref[prefix + "lab_b"]).to_numpy(np.float64)
        d = np.hypot(da, db)
        with np.errstate(divide="ignore"):
            tol = np.degrees(d / c) * 1.01
        return np.where(c > 10 * d, np.maximum(base, tol), np.inf)
    return base


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
        tol = _abs_tolerance(c, reference)
        both_nan = np.isnan(a) & np.isnan(b)
        bad = ~both_nan & ~(np.abs(a - b) <= tol)
        assert not bad.any(), (c, a[bad][:3], b[bad][:3], tol[bad][:3])
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
