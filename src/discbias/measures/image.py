"""Image-level colour, luminance and quality measures: one tidy row per image.

Every measure is computed from the 8-bit RGB pixels (an alpha channel is dropped, greyscale is
expanded to three channels). Definitions:

* ``mean_r, mean_g, mean_b``: channel means on the 0-255 scale.
* ``luma_709``: mean of 0.2126 R' + 0.7152 G' + 0.0722 B' on gamma-encoded values scaled to 0-1
  (the "normalized luminance" of Grissom II et al. 2024).
* ``rel_luminance``: mean relative luminance Y, the same weights on sRGB-decoded linear values.
* ``lab_l, lab_a, lab_b``: mean CIELAB (D65) over pixels.
* ``chroma``: mean per-pixel chroma C*ab. ``hue_deg``: circular mean of the per-pixel hue angles
  weighted by chroma, which equals ``atan2(mean b*, mean a*)`` (grey pixels carry no hue).
* ``colorfulness``: Hasler and Suesstrunk (2003), M = sd(rg, yb) + 0.3 mean(rg, yb) with
  rg = R - G, yb = (R + G)/2 - B on 0-255 values.
* ``rms_contrast``: standard deviation of the per-pixel luma (0-1).
* ``sharpness``: variance of the 4-neighbour Laplacian of the luma on the 0-255 scale over the
  interior pixels (the convention of ``cv2.Laplacian(gray).var()``).
* ``clipped_dark`` / ``clipped_bright``: fraction of pixels whose three channels are all
  <= ``dark_level`` (2) / all >= ``bright_level`` (253).
* ``width``, ``height``, ``n_pixels``.

With a region mask, the colour measures are also computed over the region only, with the
region's name as a prefix (``skin_lab_l``, ``bg_luma_709``...), plus ``<region>_share``.
"""

from __future__ import annotations

import numpy as np

from .color import CIE_EPSILON, CIE_KAPPA, REC709, WHITE_D65, XYZ_FROM_RGB, srgb_to_linear

_LIN_LUT = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)

#: The whole-image measures, in output order.
IMAGE_MEASURES = [
    "mean_r", "mean_g", "mean_b", "luma_709", "rel_luminance", "lab_l", "lab_a", "lab_b", "chroma",
    "hue_deg", "colorfulness", "rms_contrast", "sharpness", "clipped_dark", "clipped_bright",
    "width", "height", "n_pixels",
]
#: Measures repeated per region (no sharpness: a Laplacian over a ragged mask mixes edges).
REGION_MEASURES = [
    "mean_r", "mean_g", "mean_b", "luma_709", "rel_luminance", "lab_l", "lab_a", "lab_b", "chroma",
    "hue_deg", "colorfulness", "rms_contrast", "clipped_dark", "clipped_bright",
]


def as_rgb8(img) -> np.ndarray:
    """Return an ``(H, W, 3)`` uint8 array from a uint8 array (grey, RGB or RGBA) or a PIL image.

    Raises
    ------
    ValueError
        The array is not 2-D or 3-D with 1, 3 or 4 channels, or is not uint8.

    Examples
    --------
    >>> as_rgb8(np.zeros((2, 3), np.uint8)).shape
    (2, 3, 3)
    """
    if not isinstance(img, np.ndarray):  # PIL image
        img = np.asarray(img.convert("RGB"))
    if img.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image (uint8), got {img.dtype}; convert with "
                         "np.clip(x * 255, 0, 255).round().astype(np.uint8)")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W[, 1|3|4]) image, got shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def colour_histogram(px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct colours of an ``(N, 3)`` uint8 pixel array and how many pixels have each.

    Every colour measure is a mean or a standard deviation of a function of the pixel's colour,
    so it is computed once per distinct colour and weighted by the counts: a photograph of
    1024 x 1024 pixels has a few hundred thousand distinct colours, and the per-colour
    quantities are the very float32/float64 numbers the per-pixel code computed (the means
    differ from a per-pixel sum only in the order of the float64 additions).

    Returns
    -------
    colours : ndarray
        ``(U, 3)`` uint8, sorted by ``R * 65536 + G * 256 + B``.
    counts : ndarray
        ``(U,)`` int64, summing to ``N``.

    Examples
    --------
    >>> c, n = colour_histogram(np.array([[9, 0, 1], [0, 0, 0], [9, 0, 1]], np.uint8))
    >>> c.tolist(), n.tolist()
    ([[0, 0, 0], [9, 0, 1]], [1, 2])
    """
    return _histogram_of_codes(_colour_codes(np.asarray(px)))


def _colour_codes(px: np.ndarray) -> np.ndarray:
    return (px[:, 0].astype(np.uint32) << 16) | (px[:, 1].astype(np.uint32) << 8) | px[:, 2]


def _histogram_of_codes(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    code.sort()
    starts = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1]))) if len(code) else np.zeros(0, np.int64)
    uniq = code[starts]
    counts = np.diff(np.append(starts, len(code))).astype(np.int64)
    colours = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.uint8)
    return colours, counts


class ColourHistograms:
    """The colour histograms of one image and of regions of it, each made once.

    :func:`image_measures` and :func:`~discbias.measures.faces.face_measures` both need the
    skin and background histograms; :func:`~discbias.measures.measure_images` gives both the
    same instance. A region is recognised by its mask object (the same array, not equal values).

    Examples
    --------
    >>> img = np.zeros((2, 2, 3), np.uint8); img[0, 0] = 255
    >>> h = ColourHistograms(img)
    >>> h.of()[1].tolist(), h.of(np.array([[True, False], [False, False]]))[0].tolist()
    ([3, 1], [[255, 255, 255]])
    """

    def __init__(self, rgb: np.ndarray):
        self.shape = rgb.shape[:2]
        self._codes = _colour_codes(rgb.reshape(-1, 3))
        self._memo: dict[int, tuple] = {}
        self._table: dict[str, np.ndarray] | None = None

    def of(self, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(colours, counts)`` of the whole image (``mask=None``) or of the pixels where ``mask``."""
        hit = self._memo.get(id(mask))
        if hit is not None and hit[0] is mask:
            return hit[1]
        codes = self._codes.copy() if mask is None else self._codes[np.asarray(mask, dtype=bool).reshape(-1)]
        res = _histogram_of_codes(codes)
        self._memo[id(mask)] = (mask, res)  # the mask is kept alive, so its id is not reused
        return res

    def table(self, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per-colour quantities for the colours of :meth:`of` (``mask``), made once for the whole image."""
        if self._table is None:
            self._table = _colour_table(self.of()[0])
        if mask is None:
            return self._table
        whole, part = self.of()[0], self.of(mask)[0]
        idx = np.searchsorted(_colour_codes(whole), _colour_codes(part))  # region colours are image colours
        return {k: v[idx] for k, v in self._table.items()}


def _wmean(w: np.ndarray, v: np.ndarray, n: int) -> float:
    return float(w @ v.astype(np.float64) / n)


def _wstd(w: np.ndarray, v: np.ndarray, n: int) -> float:
    v = v.astype(np.float64)
    m = w @ v / n
    return float(np.sqrt(w @ np.square(v - m) / n))


def _colour_stats(px: np.ndarray, dark_level: int, bright_level: int) -> dict[str, float]:
    """Colour measures of an (N, 3) uint8 pixel array (per distinct colour, weighted by counts)."""
    return _histogram_stats(*colour_histogram(px), dark_level, bright_level)


def _colour_table(colours: np.ndarray) -> dict[str, np.ndarray]:
    """Per-colour float32 quantities of ``(U, 3)`` uint8 colours (each row a function of its colour only)."""
    # float32 per colour (means accumulate in float64): 8-bit input carries no more precision.
    f = colours.astype(np.float32)
    luma = f @ (REC709 / 255.0).astype(np.float32)
    # Per-level lookup tables make the gamma decoding exact and cheap.
    lin = _LIN_LUT[colours]
    xyz = lin @ (XYZ_FROM_RGB.T / WHITE_D65[None, :]).astype(np.float32)  # XYZ / white
    fx = np.cbrt(xyz)
    small = xyz <= CIE_EPSILON
    if small.any():
        fx[small] = xyz[small] * CIE_KAPPA + np.float32(4.0 / 29.0)
    a = 500.0 * (fx[:, 0] - fx[:, 1])
    b = 200.0 * (fx[:, 1] - fx[:, 2])
    return dict(luma=luma, Y=xyz[:, 1], L=116.0 * fx[:, 1] - 16.0, a=a, b=b, chroma=np.hypot(a, b),
                rg=f[:, 0] - f[:, 1], yb=0.5 * (f[:, 0] + f[:, 1]) - f[:, 2])


def _histogram_stats(colours: np.ndarray, counts: np.ndarray, dark_level: int, bright_level: int,
                     table: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    n = int(counts.sum())
    if n == 0:
        return {k: float("nan") for k in REGION_MEASURES}
    t = table if table is not None else _colour_table(colours)
    w = counts.astype(np.float64)
    mean = colours.T.astype(np.int64) @ counts / n  # exact integer sums
    lab_mean = np.array([_wmean(w, t["L"], n), _wmean(w, t["a"], n), _wmean(w, t["b"], n)])
    rg, yb = t["rg"], t["yb"]
    colorfulness = float(np.hypot(_wstd(w, rg, n), _wstd(w, yb, n))
                         + 0.3 * np.hypot(_wmean(w, rg, n), _wmean(w, yb, n)))
    r, g, b = colours[:, 0], colours[:, 1], colours[:, 2]
    dark = (r <= dark_level) & (g <= dark_level) & (b <= dark_level)
    bright = (r >= bright_level) & (g >= bright_level) & (b >= bright_level)
    return dict(
        mean_r=float(mean[0]), mean_g=float(mean[1]), mean_b=float(mean[2]),
        luma_709=_wmean(w, t["luma"], n), rel_luminance=_wmean(w, t["Y"], n),
        lab_l=float(lab_mean[0]), lab_a=float(lab_mean[1]), lab_b=float(lab_mean[2]),
        chroma=_wmean(w, t["chroma"], n),
        hue_deg=float(np.degrees(np.arctan2(lab_mean[2], lab_mean[1])) % 360.0),
        colorfulness=colorfulness, rms_contrast=_wstd(w, t["luma"], n),
        clipped_dark=float(counts[dark].sum() / n),
        clipped_bright=float(counts[bright].sum() / n),
    )


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels of a 2-D array.

    Examples
    --------
    >>> laplacian_variance(np.ones((5, 5)))
    0.0
    """
    g = gray.astype(np.float64)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return float("nan")
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def image_measures(img, masks: dict[str, np.ndarray] | None = None, *, dark_level: int = 2,
                   bright_level: int = 253, histograms: ColourHistograms | None = None) -> dict[str, float]:
    """Measure one image (see the module docstring for the definitions).

    Parameters
    ----------
    img : ndarray or PIL.Image.Image
        8-bit image, ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``.
    masks : dict of str to ndarray of bool, optional
        Region masks of shape ``(H, W)``; each adds ``<name>_<measure>`` columns and
        ``<name>_share`` (fraction of pixels in the region).
    dark_level, bright_level : int
        Clipping thresholds on the 0-255 scale.
    histograms : ColourHistograms, optional
        This image's histograms, when another measure already made some of them.

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> img = np.zeros((4, 4, 3), np.uint8); img[..., 0] = 255
    >>> m = image_measures(img)
    >>> m["mean_r"], m["mean_g"], round(m["luma_709"], 4), round(m["lab_l"], 2)
    (255.0, 0.0, 0.2126, 53.24)
    """
    rgb = as_rgb8(img)
    h, w = rgb.shape[:2]
    hists = histograms if histograms is not None else ColourHistograms(rgb)
    out = _histogram_stats(*hists.of(), dark_level, bright_level, hists.table())
    out["sharpness"] = laplacian_variance(rgb.astype(np.float32) @ REC709.astype(np.float32))
    out.update(width=float(w), height=float(h), n_pixels=float(h * w))
    out = {k: out[k] for k in IMAGE_MEASURES}
    for name, mask in (masks or {}).items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (h, w):
            raise ValueError(f"mask '{name}' has shape {mask.shape}, the image is {(h, w)}")
        stats = _histogram_stats(*hists.of(mask), dark_level, bright_level, hists.table(mask))
        out.update({f"{name}_{k}": stats[k] for k in REGION_MEASURES})
        out[f"{name}_share"] = np.count_nonzero(mask) / mask.size  # = mask.mean()
    return out
