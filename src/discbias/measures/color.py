"""Colour conversions used by the image measures and the probes (pure NumPy).

Conventions: RGB arrays have a trailing axis of 3; gamma-encoded sRGB values are in [0, 1]
(divide 8-bit values by 255); linear-light values are sRGB-decoded (IEC 61966-2-1). CIE XYZ uses
the sRGB primaries and the D65 white with Y = 1 for white; CIELAB is relative to D65
(Xn, Yn, Zn) = (0.95047, 1, 1.08883), the same constants as scikit-image, which the tests use as
the independent reference.

Why not ``skimage.color``: these few lines are kept, and scikit-image is the reference the tests
compare them with (``tests/test_measures_color.py``), because

- scikit-image's ``rgb2lab`` rounds the CIE slope of the dark segment, kappa = (29/6)**2/3 =
  7.787037..., to 7.787, so its L*a*b* differ from the CIE definition by up to 1.6e-4 on dark
  pixels: switching would change the image measures (``build/results`` must stay equal);
- it is not faster. Measured on the build machine (2 cores), a 1024 x 1024 random image, best of 5:
  sRGB -> Lab float64 0.44 s here vs 0.45 s ``skimage.color.rgb2lab``; float32 0.30 s vs 0.29 s;
  sRGB -> XYZ 0.17 s vs 0.23 s ``rgb2xyz``; Lab -> sRGB 0.44 s vs 0.44 s ``lab2rgb``;
- the measures and probes need the steps separately (linear light, XYZ, Lab), in the input's
  floating-point precision, which ``skimage.color`` does not expose one by one.
"""

from __future__ import annotations

import numpy as np

#: Rec. 709 / sRGB luminance weights (R, G, B).
REC709 = np.array([0.2126, 0.7152, 0.0722])
#: Linear sRGB -> XYZ (D65), as in IEC 61966-2-1 (scikit-image's constants).
XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
#: D65 reference white (2-degree observer).
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
CIE_EPSILON = (6.0 / 29.0) ** 3
CIE_KAPPA = (29.0 / 6.0) ** 2 / 3.0


def srgb_to_linear(v):
    """Decode gamma-encoded sRGB values in [0, 1] to linear light.

    Examples
    --------
    >>> float(srgb_to_linear(0.5).round(4))
    0.214
    """
    v = np.asarray(v, dtype=np.float64) if not isinstance(v, np.ndarray) else v
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v):
    """Encode linear-light values to gamma-encoded sRGB (inverse of :func:`srgb_to_linear`).

    Examples
    --------
    >>> float(linear_to_srgb(srgb_to_linear(0.5)).round(6))
    0.5
    """
    v = np.asarray(v, dtype=np.float64) if not isinstance(v, np.ndarray) else v
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.maximum(v, 0.0031308) ** (1 / 2.4) - 0.055)


def linear_to_xyz(rgb):
    """Linear sRGB (..., 3) -> CIE XYZ (..., 3), D65."""
    return rgb @ XYZ_FROM_RGB.T.astype(rgb.dtype if np.issubdtype(rgb.dtype, np.floating) else np.float64)


def xyz_to_linear(xyz):
    """CIE XYZ (..., 3) -> linear sRGB (..., 3); out-of-gamut values are not clipped."""
    return xyz @ RGB_FROM_XYZ.T.astype(xyz.dtype if np.issubdtype(xyz.dtype, np.floating) else np.float64)


def xyz_to_lab(xyz):
    """CIE XYZ -> CIELAB (D65).

    Examples
    --------
    >>> xyz_to_lab(np.array([0.95047, 1.0, 1.08883])).round(6).tolist()
    [100.0, 0.0, 0.0]
    """
    t = xyz / WHITE_D65.astype(xyz.dtype if np.issubdtype(xyz.dtype, np.floating) else np.float64)
    f = np.where(t > CIE_EPSILON, np.cbrt(np.maximum(t, CIE_EPSILON)), t * CIE_KAPPA + 4.0 / 29.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_xyz(lab):
    """CIELAB (D65) -> CIE XYZ (inverse of :func:`xyz_to_lab`)."""
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    d = 6.0 / 29.0
    t = np.where(f > d, f ** 3, (f - 4.0 / 29.0) / CIE_KAPPA)
    return t * WHITE_D65


def srgb_to_lab(rgb):
    """Gamma-encoded sRGB in [0, 1] (..., 3) -> CIELAB (D65).

    Examples
    --------
    >>> srgb_to_lab(np.array([1.0, 0.0, 0.0])).round(2).tolist()
    [53.24, 80.09, 67.2]
    """
    return xyz_to_lab(linear_to_xyz(srgb_to_linear(rgb)))


def lab_to_srgb(lab, clip: bool = True):
    """CIELAB (D65) -> gamma-encoded sRGB; ``clip`` limits linear values to [0, 1] first."""
    lin = xyz_to_linear(lab_to_xyz(lab))
    if clip:
        lin = np.clip(lin, 0.0, 1.0)
    return linear_to_srgb(lin)


def luma_709(rgb):
    """Rec. 709 luma of gamma-encoded values: 0.2126 R' + 0.7152 G' + 0.0722 B'.

    Examples
    --------
    >>> float(luma_709(np.array([1.0, 1.0, 1.0])))
    1.0
    """
    return rgb @ REC709.astype(rgb.dtype if np.issubdtype(rgb.dtype, np.floating) else np.float64)


def relative_luminance(rgb):
    """Relative luminance Y: the Rec. 709 weights on sRGB-decoded (linear-light) values.

    Examples
    --------
    >>> float(relative_luminance(np.array([0.5, 0.5, 0.5])).round(4))
    0.214
    """
    return luma_709(srgb_to_linear(rgb))


def lab_chroma_hue(lab):
    """Chroma C*ab and hue angle h_ab (degrees in [0, 360)) of CIELAB values.

    Examples
    --------
    >>> c, h = lab_chroma_hue(np.array([50.0, 0.0, 10.0]))
    >>> float(c), float(h)
    (10.0, 90.0)
    """
    c = np.hypot(lab[..., 1], lab[..., 2])
    h = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0
    return c, h
