"""Face-level measures: skin and background masks, skin L*, hue, ITA, Monk skin tone.

Three ways to find the skin region:

* ``"template"`` (default, no model): for FFHQ-aligned images, whose alignment puts the eyes and
  mouth at fixed positions, a fixed landmark template (:data:`FFHQ_TEMPLATE`, in fractions of the
  image size) gives a face oval minus eyes, brows and lips. Faces that are turned, or images that
  are not FFHQ-aligned, get a wrong mask: use it only for aligned images.
* ``"mediapipe"``: MediaPipe 0.10.21's face mesh (its weights ship inside the wheel), face oval
  minus eyes, brows and lips. Needs the optional extra ``discbias[faces]`` (``mediapipe==0.10.21``,
  ``opencv-python-headless<5``, and numpy<2).
* ``"haar"``: OpenCV's bundled frontal-face Haar cascade gives a face box; the skin region is an
  ellipse inside the box minus the template's eye, brow and mouth regions mapped into the box.

Race is never inferred. ITA (individual typology angle) is a colorimetric quantity of the pixels,
not of the person: it moves with exposure and white balance (the probes measure by how much).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .color import lab_chroma_hue, linear_to_xyz, srgb_to_lab, srgb_to_linear, xyz_to_lab
from .image import ColourHistograms
from ..errors import ConfigError, MissingExtraError

#: FFHQ alignment template (fractions of width/height). FFHQ's aligner centres the crop on the
#: eye midpoint moved 10% towards the mouth, with side four times the eye distance, so the eyes sit
#: near (0.375, 0.48) and (0.625, 0.48) and the mouth near (0.5, 0.71).
FFHQ_TEMPLATE = dict(
    left_eye=(0.375, 0.48), right_eye=(0.625, 0.48), mouth=(0.5, 0.71), nose=(0.5, 0.60),
    face_oval=((0.5, 0.58), (0.215, 0.30)),          # centre, semi-axes
    eye_axes=(0.075, 0.045), brow_offset=0.065, brow_axes=(0.085, 0.03),
    mouth_axes=(0.105, 0.05),
    head=((0.5, 0.50), (0.33, 0.47)),               # head incl. hair, for the background mask
)

#: ITA classes (Chardon et al. 1991; Del Bino et al. 2006): lower bound in degrees, label.
ITA_CLASSES = [(55.0, "very light"), (41.0, "light"), (28.0, "intermediate"), (10.0, "tan"),
               (-30.0, "brown"), (-np.inf, "dark")]

#: The Monk Skin Tone scale (Monk 2019, Google), sRGB hex, tones 1 (lightest) to 10.
MONK_HEX = ["#f6ede4", "#f3e7db", "#f7ead0", "#eadaba", "#d7bd96",
            "#a07e56", "#825c43", "#604134", "#3a312a", "#292420"]


def _hex_rgb(h: str) -> np.ndarray:
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64) / 255.0


MONK_LAB = srgb_to_lab(np.stack([_hex_rgb(h) for h in MONK_HEX]))


def ita_degrees(L, b):
    """Individual typology angle: ``arctan((L* - 50) / b*)`` in degrees.

    Examples
    --------
    >>> round(float(ita_degrees(70.0, 20.0)), 2)
    45.0
    """
    L = np.asarray(L, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.degrees(np.arctan((L - 50.0) / b))


def ita_class(ita: float) -> str:
    """Six-class label of an ITA value (very light > 55 > light > 41 > intermediate > 28 > tan > 10 > brown > -30 > dark).

    Examples
    --------
    >>> ita_class(45.0), ita_class(-40.0)
    ('light', 'dark')
    """
    if ita is None or not np.isfinite(ita):
        return "undefined"
    for lower, label in ITA_CLASSES:
        if ita > lower:
            return label
    return "dark"


def nearest_monk(lab) -> tuple[int, float]:
    """Nearest Monk skin tone (1-10) to a CIELAB colour by CIE76 distance, and that distance.

    Examples
    --------
    >>> nearest_monk(MONK_LAB[6])
    (7, 0.0)
    """
    d = np.linalg.norm(MONK_LAB - np.asarray(lab, dtype=np.float64)[None, :], axis=1)
    i = int(np.argmin(d))
    return i + 1, float(round(d[i], 10))


def ellipse_mask(h: int, w: int, centre, axes) -> np.ndarray:
    """Boolean ``h x w`` mask of an axis-aligned ellipse; ``centre`` and ``axes`` are fractions of the width and height.

    Examples
    --------
    >>> m = ellipse_mask(4, 4, (0.5, 0.5), (0.5, 0.5))
    >>> m.shape, int(m.sum()), bool(m[0, 0])
    ((4, 4), 12, False)
    """
    y = (np.arange(h) + 0.5)[:, None] / h
    x = (np.arange(w) + 0.5)[None, :] / w
    return ((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 <= 1.0


@dataclass
class FaceRegions:
    """Masks of one face: ``skin`` and ``background`` (bool, image-sized) and the face box."""

    skin: np.ndarray
    background: np.ndarray
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    method: str


def template_regions(height: int, width: int, template: dict | None = None) -> FaceRegions:
    """Skin and background masks from the FFHQ template (no model; aligned images only).

    Examples
    --------
    >>> r = template_regions(64, 64)
    >>> bool(r.skin[38, 32]), bool(r.skin[30, 24]), bool(r.background[2, 2])  # cheek/nose, eye, corner
    (True, False, True)
    """
    t = template or FFHQ_TEMPLATE
    h, w = height, width
    oval = ellipse_mask(h, w, *t["face_oval"])
    holes = np.zeros((h, w), bool)
    for eye in (t["left_eye"], t["right_eye"]):
        holes |= ellipse_mask(h, w, eye, t["eye_axes"])
        holes |= ellipse_mask(h, w, (eye[0], eye[1] - t["brow_offset"]), t["brow_axes"])
    holes |= ellipse_mask(h, w, t["mouth"], t["mouth_axes"])
    skin = oval & ~holes
    head = ellipse_mask(h, w, *t["head"])
    yy = (np.arange(h) + 0.5)[:, None] / h
    background = ~head & (yy < 0.80) & np.ones((1, w), bool)  # leave out the shoulders
    (cx, cy), (ax, ay) = t["face_oval"]
    box = ((cx - ax) * w, (cy - ay) * h, (cx + ax) * w, (cy + ay) * h)
    return FaceRegions(skin, background, box, "template")


@functools.lru_cache(maxsize=8)
def _template_cached(height: int, width: int) -> FaceRegions:
    """:func:`template_regions` for the default template, made once per image size (read-only masks)."""
    r = template_regions(height, width)
    r.skin.setflags(write=False)
    r.background.setflags(write=False)
    return r


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"face method needs '{module}', which is not installed: pip install 'discbias[faces]' "
            "(mediapipe==0.10.21 and opencv-python-headless<5; MediaPipe 0.10.21 needs numpy<2, so use "
            "a separate environment), or use method='template' for FFHQ-aligned images") from exc


def haar_regions(rgb: np.ndarray) -> FaceRegions | None:
    """Face box from OpenCV's bundled Haar cascade; skin = ellipse in the box minus eyes/brows/mouth.

    Returns None when no face is found (the largest face is used when several are).
    """
    cv2 = _require("cv2")
    if not hasattr(cv2, "CascadeClassifier"):
        raise MissingExtraError("this OpenCV build has no CascadeClassifier (OpenCV 5 dropped it): pin opencv-python-headless<5")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
    if len(faces) == 0:
        return None
    x, y, fw, fh = max(faces, key=lambda f: f[2] * f[3])
    h, w = gray.shape
    # Map the template's face oval onto the detected box.
    t = FFHQ_TEMPLATE
    (cx, cy), (ax, ay) = t["face_oval"]
    def to_img(p):
        return (x + (p[0] - (cx - ax)) / (2 * ax) * fw) / w, (y + (p[1] - (cy - ay)) / (2 * ay) * fh) / h
    sx, sy = fw / w / (2 * ax), fh / h / (2 * ay)
    skin = ellipse_mask(h, w, ((x + fw / 2) / w, (y + fh / 2) / h), (fw / 2 / w * 0.9, fh / 2 / h * 0.95))
    for eye in (t["left_eye"], t["right_eye"]):
        skin &= ~ellipse_mask(h, w, to_img(eye), (t["eye_axes"][0] * sx, t["eye_axes"][1] * sy))
        skin &= ~ellipse_mask(h, w, to_img((eye[0], eye[1] - t["brow_offset"])), (t["brow_axes"][0] * sx, t["brow_axes"][1] * sy))
    skin &= ~ellipse_mask(h, w, to_img(t["mouth"]), (t["mouth_axes"][0] * sx, t["mouth_axes"][1] * sy))
    head = ellipse_mask(h, w, ((x + fw / 2) / w, (y + fh / 2) / h), (fw / w * 0.85, fh / h * 1.0))
    yy = np.arange(h)[:, None]
    background = ~head & (yy < min(h, y + 1.5 * fh))
    return FaceRegions(skin, background, (float(x), float(y), float(x + fw), float(y + fh)), "haar")


# MediaPipe face-mesh landmark indices (FACEMESH_* connection sets), outline polygons.
_MP_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
            148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
_MP_HOLES = [
    [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7],        # right eye
    [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249],     # left eye
    [70, 63, 105, 66, 107, 55, 65, 52, 53, 46],                                           # right brow
    [300, 293, 334, 296, 336, 285, 295, 282, 283, 276],                                   # left brow
    [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146],  # lips
]


def mediapipe_regions(rgb: np.ndarray) -> FaceRegions | None:
    """Skin = MediaPipe face-mesh oval minus eyes, brows and lips; None when no face is found."""
    mp = _require("mediapipe")
    cv2 = _require("cv2")
    h, w = rgb.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        res = mesh.process(rgb)
    if not res.multi_face_landmarks:
        return None
    lm = res.multi_face_landmarks[0].landmark
    pts = lambda idx: np.array([[lm[i].x * w, lm[i].y * h] for i in idx], dtype=np.int32)
    skin = np.zeros((h, w), np.uint8)
    cv2.fillPoly(skin, [pts(_MP_OVAL)], 1)
    for hole in _MP_HOLES:
        cv2.fillPoly(skin, [pts(hole)], 0)
    oval = pts(_MP_OVAL)
    x0, y0 = oval.min(axis=0)
    x1, y1 = oval.max(axis=0)
    cx, cy, fw, fh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    head = ellipse_mask(h, w, (cx / w, (cy - 0.1 * fh) / h), (0.8 * fw / w, 0.8 * fh / h))
    yy = np.arange(h)[:, None]
    background = ~head & (yy < min(h, y1 + 0.3 * fh))
    return FaceRegions(skin.astype(bool), background, (float(x0), float(y0), float(x1), float(y1)), "mediapipe")


FACE_METHODS = ("template", "mediapipe", "haar")


def face_regions(rgb: np.ndarray, method: str = "template") -> FaceRegions | None:
    """Find the skin and background regions of a face image with ``method`` (see module docstring).

    The template's masks are made once per image size and shared (read-only arrays).

    Examples
    --------
    >>> face_regions(np.zeros((32, 32, 3), np.uint8)).method
    'template'
    """
    if method == "template":
        return _template_cached(*rgb.shape[:2])
    if method == "haar":
        return haar_regions(rgb)
    if method == "mediapipe":
        return mediapipe_regions(rgb)
    raise ConfigError(f"unknown face method {method!r}; use one of {FACE_METHODS}")


FACE_COLUMNS = ["face_method", "face_found", "skin_L", "skin_a", "skin_b", "skin_chroma", "skin_hue_deg",
                "ita_deg", "ita_class", "monk_tone", "monk_delta_e", "face_box_share", "background_L",
                "background_luma_709", "skin_pixels"]


_LIN64 = srgb_to_linear(np.arange(256) / 255.0)


def _lab64(colours: np.ndarray) -> np.ndarray:
    """float64 CIELAB of ``(U, 3)`` uint8 colours; the numbers of ``srgb_to_lab(colours / 255.0)``
    (the gamma decoding by lookup: the same function of the same 256 values)."""
    return xyz_to_lab(linear_to_xyz(_LIN64[colours]))


def face_measures(img, method: str = "template", regions: FaceRegions | None = None, *,
                  histograms=None) -> dict:
    """Per-face measures: skin L*, a*, b*, chroma, hue angle, ITA and its class, nearest Monk tone,
    face box area share and background lightness.

    The skin colour is the mean CIELAB colour of the skin pixels; ITA and the Monk tone are those
    of that mean colour. ``histograms`` (a :class:`~discbias.measures.image.ColourHistograms` of
    this image) reuses region histograms that :func:`~discbias.measures.image_measures` made.

    Examples
    --------
    >>> img = np.full((64, 64, 3), (200, 160, 140), np.uint8)
    >>> m = face_measures(img)
    >>> m["ita_class"], m["monk_tone"], round(m["skin_L"], 1)
    ('light', 5, 69.0)
    """
    from .image import as_rgb8

    rgb = as_rgb8(img)
    h, w = rgb.shape[:2]
    r = regions if regions is not None else face_regions(rgb, method)
    out = {c: float("nan") for c in FACE_COLUMNS}
    out.update(face_method=method if r is None else r.method, face_found=r is not None, ita_class="undefined",
               monk_tone=float("nan"))
    if r is None or not r.skin.any():
        out["face_found"] = False
        return out
    hists = histograms if histograms is not None else ColourHistograms(rgb)
    skin_colours, skin_counts = hists.of(r.skin)
    lab = skin_counts @ _lab64(skin_colours) / skin_counts.sum()
    c, hue = lab_chroma_hue(lab)
    ita = float(ita_degrees(lab[0], lab[2]))
    tone, de = nearest_monk(lab)
    x0, y0, x1, y1 = r.box
    box = max(0.0, min(x1, w) - max(x0, 0)) * max(0.0, min(y1, h) - max(y0, 0))
    bg_colours, bg_counts = hists.of(r.background)
    bg_n = int(bg_counts.sum())
    out.update(skin_L=float(lab[0]), skin_a=float(lab[1]), skin_b=float(lab[2]), skin_chroma=float(c),
               skin_hue_deg=float(hue), ita_deg=ita, ita_class=ita_class(ita), monk_tone=tone, monk_delta_e=de,
               face_box_share=box / (h * w), skin_pixels=int(skin_counts.sum()),
               background_L=float(bg_counts @ _lab64(bg_colours)[:, 0] / bg_n) if bg_n else float("nan"),
               background_luma_709=float(bg_counts @ ((bg_colours / 255.0) @ np.array([0.2126, 0.7152, 0.0722])) / bg_n)
               if bg_n else float("nan"))
    return out
