"""Invariants of each intervention, and determinism of the probe images."""

import numpy as np
import pytest

from discbias.measures import color
from discbias.probes import interventions as iv
from discbias.probes.generate import base_from_array, generate_probes, image_sha256, probe_plan


@pytest.fixture
def img():
    rng = np.random.default_rng(0)
    # Muted colours (skin-like and greys) stay inside the gamut under hue rotation.
    lab = np.stack([rng.uniform(35, 75, (16, 16)), rng.uniform(-12, 12, (16, 16)), rng.uniform(-12, 12, (16, 16))], -1)
    return np.round(color.lab_to_srgb(lab) * 255).astype(np.uint8)


@pytest.mark.parametrize("probe", [p for p in iv.PROBES if p not in iv.MASKED])
def test_level_zero_is_identity(img, probe):
    out, clipped = iv.apply(img, probe, 0.0)
    assert np.array_equal(out, img) and clipped == 0


@pytest.mark.parametrize("deg", [-135, -45, 60, 180])
def test_hue_rotation_keeps_lightness_and_chroma(img, deg):
    out, clipped = iv.apply(img, "hue_rotation", deg)
    assert clipped == 0
    a, b = color.srgb_to_lab(img / 255), color.srgb_to_lab(out / 255)
    # Only the 8-bit rounding moves L* and C*: well under 1 unit.
    assert np.abs(a[..., 0] - b[..., 0]).max() < 0.6
    ca, ha = color.lab_chroma_hue(a)
    cb, hb = color.lab_chroma_hue(b)
    assert np.abs(ca - cb).max() < 1.0
    strong = ca > 5
    dh = (hb - ha - deg + 180) % 360 - 180
    assert np.abs(dh[strong]).max() < 8


@pytest.mark.parametrize("level", [0.25, 0.5, 1.0])
def test_desaturation_keeps_relative_luminance(img, level):
    out, clipped = iv.apply(img, "desaturation", level)
    assert clipped == 0
    y0, y1 = color.relative_luminance(img / 255), color.relative_luminance(out / 255)
    assert np.abs(y0 - y1).max() < 0.004  # 8-bit rounding
    assert color.srgb_to_lab(out / 255)[..., 1:].std() < color.srgb_to_lab(img / 255)[..., 1:].std()
    if level == 1.0:
        assert np.abs(out.astype(int) - out[..., :1].astype(int)).max() <= 1  # grey


@pytest.mark.parametrize("level", [0.1, 0.5, 1.0])
def test_shuffle_keeps_histogram_and_destroys_structure(img, level):
    out, _ = iv.apply(img, "shuffle", level, seed=123)
    key = lambda a: np.sort(a.reshape(-1, 3).view([("r", "u1"), ("g", "u1"), ("b", "u1")]).ravel())
    assert np.array_equal(key(out), key(img))
    changed = (out != img).any(-1).mean()
    assert changed > 0.5 * level
    again, _ = iv.apply(img, "shuffle", level, seed=123)
    assert np.array_equal(out, again)
    other, _ = iv.apply(img, "shuffle", level, seed=124)
    assert not np.array_equal(out, other)


def test_exposure_and_gain_act_in_linear_light(img):
    out, _ = iv.apply(img, "exposure", -1.0)
    lin0, lin1 = color.srgb_to_linear(img / 255), color.srgb_to_linear(out / 255)
    ok = lin0 > 0.02
    assert np.allclose(lin1[ok] / lin0[ok], 0.5, atol=0.03)
    red, _ = iv.apply(img, "gain_red", 0.5)
    assert np.array_equal(red[..., 1:], img[..., 1:]) and (red[..., 0] >= img[..., 0]).all()
    g, _ = iv.apply(img, "gamma", 1.0)  # x -> x**2 darkens
    assert (g <= img).all()


def test_exposure_up_reports_clipping():
    bright = np.full((4, 4, 3), 200, np.uint8)
    out, clipped = iv.apply(bright, "exposure", 2.0)
    assert clipped == 1.0 and (out == 255).all()


def test_masked_lightness_shift(img):
    mask = np.zeros(img.shape[:2], bool)
    mask[4:12, 4:12] = True
    out, _ = iv.apply(img, "skin_lightness", 10.0, masks={"skin": mask, "background": ~mask})
    assert np.array_equal(out[~mask], img[~mask])
    dL = color.srgb_to_lab(out / 255)[..., 0] - color.srgb_to_lab(img / 255)[..., 0]
    assert np.abs(dL[mask] - 10).max() < 0.6
    with pytest.raises(ValueError, match="needs a 'background' mask"):
        iv.apply(img, "background_lightness", 5.0)


def test_bad_inputs(img):
    with pytest.raises(ValueError, match="unknown probe"):
        iv.apply(img, "sepia", 1.0)
    with pytest.raises(ValueError, match="uint8"):
        iv.apply(img.astype(float), "exposure", 1.0)


def test_uniform_field_has_its_lab_colour():
    f = iv.uniform_field((4, 4), 60.0, 90.0)
    lab = color.srgb_to_lab(f[0, 0])
    assert lab == pytest.approx([60.0, 0.0, iv.FIELD_CHROMA], abs=1e-6)


def test_probe_images_are_deterministic(img):
    bases = [base_from_array("a", img), base_from_array("b", img[::-1].copy())]
    plan = probe_plan(bases, {"exposure": [-1, 1], "shuffle": [0.5], "skin_lightness": [10]}, fields=True, field_size=8)
    first = [(r["probe_id"], r["image_sha256"]) for r, _ in generate_probes(bases, plan, field_size=8)]
    plan2 = probe_plan([base_from_array("a", img.copy()), base_from_array("b", img[::-1].copy())],
                       {"exposure": [-1, 1], "shuffle": [0.5], "skin_lightness": [10]}, fields=True, field_size=8)
    second = [(r["probe_id"], r["image_sha256"]) for r, _ in generate_probes(bases, plan2, field_size=8)]
    assert first == second
    ids = [p for p, _ in first]
    assert len(set(ids)) == len(ids)
    # Level 0 of every probe of a base is the same image (scored once through the cache).
    zero = plan[(plan["level"] == 0) & (plan["base"] == "a")]
    assert len(zero) == 3
    hashes = {h for (pid, h) in first if pid in set(zero["probe_id"])}
    assert hashes == {image_sha256(img)}
    assert (plan["probe"] == "uniform_field").sum() == len(iv.FIELD_LIGHTNESS) * len(iv.FIELD_HUES)


def test_plan_skips_masked_probes_without_masks(img):
    plan = probe_plan([base_from_array("a", img, face_method=None)], {"skin_lightness": [10], "gamma": [1]})
    assert set(plan["probe"]) == {"gamma"}
