"""Controlled colour and luminance interventions on an image.

Every intervention maps an 8-bit RGB image and a *level* to a new 8-bit image, with level 0 the
original (bit-identical). Images are handled as gamma-encoded sRGB in [0, 1]; operations that are
physical (exposure, channel gain, desaturation) act in linear light; perceptual ones (hue rotation,
lightness shifts) in CIELAB (D65). Results are clipped to the sRGB gamut and rounded to 8 bits;
:func:`apply` also returns the fraction of pixels that had to be clipped, so a probe that leaves the
gamut is visible in the results.

Levels:

=====================  =======================================================  ==================
probe                  level                                                    default grid
=====================  =======================================================  ==================
``exposure``           stops: linear light x 2**level (x0.25 ... x4)            -2 ... 2 by 0.5
``gamma``              log2 of the exponent on encoded values (x -> x**2**l)    -1 ... 1 by 0.5
``gain_red`` etc.      stops on one linear channel                              -1 ... 1 by 0.5
``hue_rotation``       degrees of CIELAB hue; L* and C*ab are kept              -135 ... 180 by 45
``desaturation``       fraction towards grey of equal relative luminance        0 ... 1 by 0.25
``skin_lightness``     CIELAB Delta L* inside the skin mask                     -20 ... 20 by 10
``background_lightness``  Delta L* outside the head (background mask)           -20 ... 20 by 10
``shuffle``            fraction of pixels randomly permuted (seeded)            0, .1, .5, 1
``uniform_field``      (L*, hue) of a uniform field at chroma 20 (no base)      L* 20..80 x 6 hues
=====================  =======================================================  ==================
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..measures.color import lab_to_xyz, linear_to_srgb, srgb_to_lab, srgb_to_linear, xyz_to_linear
from ..measures.color import REC709

#: Default level grids (level 0 first is not required; 0 is always added).
DEFAULT_LEVELS: dict[str, list] = {
    "exposure": [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0],
    "gamma": [-1.0, -0.5, 0.0, 0.5, 1.0],
    "gain_red": [-1.0, -0.5, 0.0, 0.5, 1.0],
    "gain_green": [-1.0, -0.5, 0.0, 0.5, 1.0],
    "gain_blue": [-1.0, -0.5, 0.0, 0.5, 1.0],
    "hue_rotation": [-135.0, -90.0, -45.0, 0.0, 45.0, 90.0, 135.0, 180.0],
    "desaturation": [0.0, 0.25, 0.5, 0.75, 1.0],
    "skin_lightness": [-20.0, -10.0, 0.0, 10.0, 20.0],
    "background_lightness": [-20.0, -10.0, 0.0, 10.0, 20.0],
    "shuffle": [0.0, 0.1, 0.5, 1.0],
}
#: Lightness x hue grid of the uniform colour fields, at chroma :data:`FIELD_CHROMA`.
FIELD_LIGHTNESS = [20.0, 35.0, 50.0, 65.0, 80.0]
FIELD_HUES = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
FIELD_CHROMA = 20.0
#: Probes that need a region mask.
MASKED = {"skin_lightness": "skin", "background_lightness": "background"}
#: What the level of each probe is, for axis labels.
LEVEL_UNITS = {
    "exposure": "stops (linear light)", "gamma": "log2 exponent", "gain_red": "stops (red)",
    "gain_green": "stops (green)", "gain_blue": "stops (blue)", "hue_rotation": "degrees of hue",
    "desaturation": "fraction desaturated", "skin_lightness": "Delta L* (skin)",
    "background_lightness": "Delta L* (background)", "shuffle": "fraction of pixels shuffled",
}
PROBES = list(DEFAULT_LEVELS)


def _to_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) / 255.0


def _to_uint8(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Clip to [0, 1], round to 8 bits; also the fraction of pixels that were out of gamut."""
    out_of_gamut = float(((x < -1e-9) | (x > 1 + 1e-9)).any(axis=-1).mean())
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8), out_of_gamut


def _lab_to_linear(lab):
    return xyz_to_linear(lab_to_xyz(lab))


def seed_for(*parts) -> int:
    """A 64-bit seed from the parts' text (used for the pixel shuffle).

    Examples
    --------
    >>> seed_for("abc", "shuffle", 0.5) == seed_for("abc", "shuffle", 0.5)
    True
    """
    return int.from_bytes(hashlib.sha256("|".join(map(repr, parts)).encode()).digest()[:8], "little")


def exposure(x, level):
    return linear_to_srgb(srgb_to_linear(x) * 2.0 ** level)


def gamma(x, level):
    return x ** (2.0 ** level)


def _gain(channel):
    def f(x, level):
        lin = srgb_to_linear(x)
        lin[..., channel] *= 2.0 ** level
        return linear_to_srgb(lin)
    return f


def hue_rotation(x, level):
    lab = srgb_to_lab(x)
    t = np.radians(level)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1] = a * np.cos(t) - b * np.sin(t)
    lab[..., 2] = a * np.sin(t) + b * np.cos(t)
    return _encode_unclipped(_lab_to_linear(lab))


def _encode_unclipped(lin):
    """sRGB-encode linear values, keeping out-of-gamut values out of [0, 1] so they can be counted."""
    return np.sign(lin) * linear_to_srgb(np.abs(lin))


def desaturation(x, level):
    lin = srgb_to_linear(x)
    y = (lin @ REC709)[..., None]
    return linear_to_srgb(y + (1.0 - level) * (lin - y))


def lightness_shift(x, level, mask):
    lab = srgb_to_lab(x)
    lab[..., 0] = np.where(mask, lab[..., 0] + level, lab[..., 0])
    return _encode_unclipped(_lab_to_linear(lab))


def shuffle(x, level, seed):
    if level <= 0:
        return x
    h, w, _ = x.shape
    flat = x.reshape(-1, 3).copy()
    rng = np.random.default_rng(seed)
    n = flat.shape[0]
    k = int(round(level * n))
    idx = rng.choice(n, size=k, replace=False) if k < n else np.arange(n)
    flat[idx] = flat[rng.permutation(idx)]
    return flat.reshape(h, w, 3)


def uniform_field(shape, lightness, hue, chroma=FIELD_CHROMA):
    """A uniform CIELAB colour field (gamma-encoded, unclipped)."""
    t = np.radians(hue)
    lab = np.array([lightness, chroma * np.cos(t), chroma * np.sin(t)])
    return np.broadcast_to(_encode_unclipped(_lab_to_linear(lab)), (*shape, 3)).copy()


_FUNCS = {"exposure": exposure, "gamma": gamma, "gain_red": _gain(0), "gain_green": _gain(1), "gain_blue": _gain(2),
          "hue_rotation": hue_rotation, "desaturation": desaturation}


def apply(img: np.ndarray, probe: str, level: float, *, masks: dict[str, np.ndarray] | None = None,
          seed: int = 0) -> tuple[np.ndarray, float]:
    """Apply one intervention at one level to an 8-bit RGB image.

    Parameters
    ----------
    img : ndarray, uint8, (H, W, 3)
    probe : str
        One of :data:`PROBES`.
    level : float
        The intervention's level (see the module table); 0 returns the image unchanged.
    masks : dict, optional
        ``"skin"`` and ``"background"`` boolean masks for the lightness-shift probes.
    seed : int
        Seed of the pixel shuffle (see :func:`seed_for`).

    Returns
    -------
    image : ndarray, uint8
    clipped : float
        Fraction of pixels that left the sRGB gamut and were clipped.

    Examples
    --------
    >>> img = np.full((2, 2, 3), 100, np.uint8)
    >>> out, clipped = apply(img, "exposure", 1.0)
    >>> int(out[0, 0, 0]), clipped
    (138, 0.0)
    >>> bool((apply(img, "hue_rotation", 0.0)[0] == img).all())
    True
    """
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; known: {', '.join(PROBES)}")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {img.dtype} {img.shape}")
    if float(level) == 0.0:
        return img.copy(), 0.0
    x = _to_float(img)
    if probe in MASKED:
        region = MASKED[probe]
        if not masks or region not in masks:
            raise ValueError(f"probe {probe!r} needs a '{region}' mask; give base images a face method or mask")
        return _to_uint8(lightness_shift(x, level, np.asarray(masks[region], bool)))
    if probe == "shuffle":
        return shuffle(img, level, seed), 0.0
    return _to_uint8(_FUNCS[probe](x, float(level)))
