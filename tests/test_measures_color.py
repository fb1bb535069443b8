"""Colour conversions checked against scikit-image (an independent implementation)."""

import numpy as np
import pytest

from discbias.measures import color

skimage_color = pytest.importorskip("skimage.color", reason="scikit-image is the independent reference")


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(16, 16, 3)).astype(np.float64) / 255.0
    img[0, 0] = 0.0
    img[0, 1] = 1.0
    img[0, 2] = [0.02, 0.03, 0.01]  # near-black: the linear segment of the sRGB curve
    return img


def test_lab_matches_skimage(rgb):
    # skimage rounds the CIE slope of the dark segment (29/6)**2/3 = 7.787037... to 7.787, which moves
    # L*a*b* of very dark pixels by up to ~1e-4; elsewhere the two agree to 1e-9.
    ours, ref = color.srgb_to_lab(rgb), skimage_color.rgb2lab(rgb)
    np.testing.assert_allclose(ours, ref, atol=2e-4)
    bright = (color.linear_to_xyz(color.srgb_to_linear(rgb)) / color.WHITE_D65 > 0.009).all(axis=-1)
    np.testing.assert_allclose(ours[bright], ref[bright], atol=1e-9)


def test_xyz_and_relative_luminance_match_skimage(rgb):
    xyz = skimage_color.rgb2xyz(rgb)
    np.testing.assert_allclose(color.linear_to_xyz(color.srgb_to_linear(rgb)), xyz, atol=1e-9)
    # Y of skimage's XYZ uses 0.212671/0.715160/0.072169; ours uses the rounded Rec. 709 weights.
    np.testing.assert_allclose(color.relative_luminance(rgb), xyz[..., 1], atol=2e-4)


def test_lab_inverse_matches_skimage_and_round_trips(rgb):
    lab = color.srgb_to_lab(rgb)
    np.testing.assert_allclose(color.lab_to_srgb(lab), skimage_color.lab2rgb(lab), atol=1e-6)
    np.testing.assert_allclose(color.lab_to_srgb(lab), rgb, atol=1e-9)


def test_lch_matches_skimage(rgb):
    lab = color.srgb_to_lab(rgb)
    lch = skimage_color.lab2lch(lab)
    c, h = color.lab_chroma_hue(lab)
    np.testing.assert_allclose(c, lch[..., 1], atol=1e-9)
    mask = c > 1e-6  # hue of greys is arbitrary
    np.testing.assert_allclose(h[mask], np.degrees(lch[..., 2][mask]) % 360, atol=1e-7)


def test_reference_values():
    # sRGB primaries (Bruce Lindbloom's calculator, which uses a slightly different matrix precision).
    np.testing.assert_allclose(color.srgb_to_lab(np.array([0.0, 1.0, 0.0])), [87.7347, -86.1827, 83.1793], atol=2e-3)
    np.testing.assert_allclose(color.srgb_to_lab(np.array([0.0, 0.0, 1.0])), [32.2970, 79.1875, -107.8602], atol=5e-3)
    assert color.srgb_to_linear(np.array(0.04045)) == pytest.approx(0.04045 / 12.92)
    assert color.luma_709(np.array([0.0, 1.0, 0.0])) == pytest.approx(0.7152)
    assert color.relative_luminance(np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    # Mid grey 128/255: luma 0.502 but relative luminance 0.216 (gamma matters).
    g = np.full(3, 128 / 255)
    assert color.luma_709(g) == pytest.approx(128 / 255)
    assert color.relative_luminance(g) == pytest.approx(0.2158605, abs=1e-6)
