"""Face measures: the FFHQ template path (no model); the optional paths only where installed."""

import numpy as np
import pytest

from discbias.measures import color
from discbias.measures.faces import (FFHQ_TEMPLATE, MONK_HEX, face_measures, face_regions, ita_class, ita_degrees,
                                     nearest_monk, template_regions)


@pytest.mark.parametrize("ita,label", [(60, "very light"), (55.01, "very light"), (50, "light"), (30, "intermediate"),
                                        (20, "tan"), (0, "brown"), (-29.9, "brown"), (-45, "dark"), (np.nan, "undefined")])
def test_ita_classes(ita, label):
    assert ita_class(ita) == label


def test_ita_formula():
    assert ita_degrees(50.0, 10.0) == 0.0
    assert ita_degrees(60.0, 10.0) == pytest.approx(45.0)
    assert ita_degrees(40.0, 10.0) == pytest.approx(-45.0)


def test_nearest_monk_tones():
    for i, h in enumerate(MONK_HEX, start=1):
        rgb = np.array([int(h[k:k + 2], 16) for k in (1, 3, 5)]) / 255
        tone, de = nearest_monk(color.srgb_to_lab(rgb))
        assert tone == i and de < 1e-9
    assert nearest_monk([0.0, 0.0, 0.0])[0] == 10


def test_template_masks_geometry():
    r = template_regions(256, 256)
    assert not (r.skin & r.background).any()
    ys, xs = np.nonzero(r.skin)
    assert abs(xs.mean() - 127.5) < 2  # left-right symmetric
    for key in ("left_eye", "right_eye", "mouth"):
        x, y = FFHQ_TEMPLATE[key]
        assert not r.skin[int(y * 256), int(x * 256)]
    assert r.skin[int(0.62 * 256), int(0.38 * 256)]  # cheek
    assert 0.05 < r.skin.mean() < 0.25 and r.background.mean() > 0.15
    assert face_regions(np.zeros((256, 256, 3), np.uint8)).skin.sum() == r.skin.sum()


def _synthetic_face(skin=(190, 140, 110), bg=(40, 80, 160), size=128):
    img = np.empty((size, size, 3), np.uint8)
    img[:] = bg
    r = template_regions(size, size)
    img[r.skin] = skin
    return img


def test_face_measures_on_synthetic_face():
    img = _synthetic_face()
    m = face_measures(img)
    lab = color.srgb_to_lab(np.array([190, 140, 110]) / 255)
    assert m["skin_L"] == pytest.approx(lab[0]) and m["skin_b"] == pytest.approx(lab[2])
    assert m["ita_deg"] == pytest.approx(np.degrees(np.arctan((lab[0] - 50) / lab[2])))
    assert m["ita_class"] == ita_class(m["ita_deg"])
    assert m["background_L"] == pytest.approx(color.srgb_to_lab(np.array([40, 80, 160]) / 255)[0])
    assert 0 < m["face_box_share"] < 1 and m["face_found"]


def test_ita_moves_with_exposure():
    """The lighting confound: the same skin, exposed brighter, gets a lighter ITA class."""
    skin = np.array([150, 105, 80]) / 255
    lin = color.srgb_to_linear(skin)
    brighter = np.round(color.linear_to_srgb(np.clip(lin * 2, 0, 1)) * 255).astype(np.uint8)
    a = face_measures(_synthetic_face(skin=tuple(np.round(skin * 255).astype(int))))
    b = face_measures(_synthetic_face(skin=tuple(brighter)))
    assert b["ita_deg"] > a["ita_deg"] + 10


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown face method"):
        face_regions(np.zeros((8, 8, 3), np.uint8), "dlib")


def test_optional_methods_error_clearly_when_absent():
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"discbias\[faces\]"):
            face_regions(np.zeros((8, 8, 3), np.uint8), "mediapipe")
    else:
        pytest.skip("mediapipe is installed; the missing-package message cannot be checked")


def test_haar_finds_the_astronaut():
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 (discbias[faces]) not installed")
    data = pytest.importorskip("skimage.data")
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("OpenCV without Haar cascades")
    img = data.astronaut()
    r = face_regions(img, "haar")
    assert r is not None and r.skin.any()
    x0, y0, x1, y1 = r.box
    assert 150 < (x0 + x1) / 2 < 300 and 50 < (y0 + y1) / 2 < 200  # the astronaut's face
    m = face_measures(img, "haar", regions=r)
    assert m["face_found"] and 30 < m["skin_L"] < 90
