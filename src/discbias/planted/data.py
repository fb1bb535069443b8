"""Procedural, seeded face-like images whose luminance, redness and skin group follow declared
distributions (nothing is downloaded).

Each image is drawn on a ``size`` x ``size`` canvas: a background with a vertical gradient, shoulders,
a hair ellipse, a skin ellipse (the face) in one of two skin groups (``light`` or ``dark``), eyes and a
mouth, and pixel noise. Two continuous attributes are then applied in linear light:

* ``exposure`` (stops): every channel x ``2**exposure`` -- the planted *luminance* attribute;
* ``red_gain`` (stops): the red channel x ``2**red_gain`` -- the planted *redness* attribute.

A *condition* (:class:`Condition`) plants a difference between the images the discriminator is
trained to call real and those it is trained to call fake: the real set's mean exposure is
``+luminance_shift / 2`` and the fake set's ``-luminance_shift / 2`` (likewise ``redness_shift``), and
the real set's share of the ``dark`` group is ``minority_share`` (the fake set's ``fake_share``). The
null condition plants nothing: both sets are independent draws from one distribution.

In *generator mode* (``Condition(fake="generator")``) only the real set is drawn here (its
``dark`` share is ``minority_share``; the shifts must be 0) and the fake images are a generator's
samples (:mod:`discbias.planted.generator`): what is planted is the group share of the data the
GAN learns from, relative to a balanced 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..measures.color import linear_to_srgb, srgb_to_linear

__all__ = ["Condition", "make_faces", "training_sets", "heldout_set", "SKIN"]

#: sRGB skin colours of the two groups (before exposure and red gain).
SKIN = {"light": (0.86, 0.69, 0.58), "dark": (0.44, 0.30, 0.22)}


@dataclass(frozen=True)
class Condition:
    """One planted condition.

    Parameters
    ----------
    id : str
        Name (``null``, ``lum-0.5``, ...).
    luminance_shift : float
        Real-set mean exposure minus fake-set mean exposure, in stops (0: nothing planted).
    redness_shift : float
        Real-set mean red gain minus fake-set mean red gain, in stops.
    minority_share : float
        Share of the ``dark`` skin group in the real set.
    fake_share : float
        Share of the ``dark`` skin group in the fake set (fixed mode).
    fake : {"fixed", "generator"}
        Where the fake images come from: a fixed draw from the declared distribution, or a generator
        trained on the real set.

    Examples
    --------
    >>> Condition("null").planted, Condition("lum", luminance_shift=0.5).planted
    ([], ['luminance'])
    >>> Condition("g", minority_share=0.2, fake="generator").planted
    ['group']
    """

    id: str
    luminance_shift: float = 0.0
    redness_shift: float = 0.0
    minority_share: float = 0.5
    fake_share: float = 0.5
    fake: str = "fixed"

    @property
    def reference_share(self) -> float:
        """The dark-group share the real set's is compared with: the fake set's (fixed mode) or a
        balanced 0.5 (generator mode: the generator imitates the real set)."""
        return 0.5 if self.fake == "generator" else self.fake_share

    @property
    def planted(self) -> list[str]:
        """Which attributes differ between the real and the fake set."""
        out = []
        if self.luminance_shift:
            out.append("luminance")
        if self.redness_shift:
            out.append("redness")
        if self.minority_share != self.reference_share:
            out.append("group")
        return out


def make_faces(n: int, size: int, rng: np.random.Generator, *, exposure_mean: float = 0.0,
               exposure_sd: float = 0.5, red_mean: float = 0.0, red_sd: float = 0.25,
               dark_share: float = 0.5) -> tuple[np.ndarray, pd.DataFrame]:
    """Draw ``n`` face-like images.

    Parameters
    ----------
    n, size : int
        Number of images and their side in pixels.
    rng : numpy.random.Generator
    exposure_mean, exposure_sd : float
        Normal distribution of the exposure, in stops.
    red_mean, red_sd : float
        Normal distribution of the red-channel gain, in stops.
    dark_share : float
        Probability that a face is in the ``dark`` skin group.

    Returns
    -------
    images : ndarray of uint8, shape (n, size, size, 3)
    attributes : DataFrame
        One row per image: ``group`` (``light``/``dark``), ``exposure``, ``red_gain`` (the drawn values).

    Examples
    --------
    >>> imgs, attrs = make_faces(4, 32, np.random.default_rng(0))
    >>> imgs.shape, imgs.dtype, list(attrs.columns)
    ((4, 32, 32, 3), dtype('uint8'), ['group', 'exposure', 'red_gain'])
    >>> bright, _ = make_faces(50, 32, np.random.default_rng(1), exposure_mean=1.0)
    >>> dark, _ = make_faces(50, 32, np.random.default_rng(1), exposure_mean=-1.0)
    >>> bool(bright.mean() > dark.mean() + 30)
    True
    """
    if n < 0 or size < 8:
        raise ValueError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    if not 0.0 <= dark_share <= 1.0:
        raise ValueError(f"dark_share must be in [0, 1], got {dark_share}")
    u = (np.arange(size) + 0.5) / size
    yy, xx = u[None, :, None], u[None, None, :]
    col = lambda a: np.asarray(a, dtype=np.float64).reshape(n, 1, 1)  # noqa: E731

    def ellipse(cx, cy, ax, ay):
        return ((xx - col(cx)) / col(ax)) ** 2 + ((yy - col(cy)) / col(ay)) ** 2 <= 1.0

    dark = rng.random(n) < dark_share
    exposure = rng.normal(exposure_mean, exposure_sd, n)
    red = rng.normal(red_mean, red_sd, n)
    scale = rng.uniform(0.9, 1.1, n)
    cx = 0.5 + rng.normal(0, 0.03, n)
    cy = 0.45 + rng.normal(0, 0.03, n)
    bg = rng.uniform(0.25, 0.8, (n, 3))
    hair = rng.uniform(0.05, 0.4, n)[:, None] * np.array([1.0, 0.78, 0.6])
    clothes = rng.uniform(0.1, 0.8, (n, 3))
    skin = np.where(dark[:, None], SKIN["dark"], SKIN["light"]) + rng.normal(0, 0.03, (n, 3))

    img = np.broadcast_to(bg[:, None, None, :] * (0.85 + 0.3 * yy)[..., None], (n, size, size, 3)).copy()

    def paint(mask, colour):
        np.copyto(img, np.broadcast_to(np.asarray(colour)[:, None, None, :], img.shape), where=mask[..., None])

    paint(ellipse(cx, np.full(n, 1.08), 0.42 * scale, 0.25 * scale), clothes)
    paint(ellipse(cx, cy - 0.03, 0.33 * scale, 0.38 * scale), hair)
    paint(ellipse(cx, cy + 0.05, 0.25 * scale, 0.31 * scale), skin)
    for side in (-1, 1):
        paint(ellipse(cx + side * 0.1 * scale, cy, 0.05 * scale, 0.028 * scale), np.tile([0.1, 0.08, 0.07], (n, 1)))
    paint(ellipse(cx, cy + 0.2 * scale, 0.09 * scale, 0.026 * scale), skin * np.array([0.75, 0.45, 0.45]))

    lin = srgb_to_linear(np.clip(img, 0, 1))
    lin[..., 0] *= 2.0 ** red[:, None, None]
    lin *= 2.0 ** exposure[:, None, None, None]
    out = linear_to_srgb(np.clip(lin, 0, 1)) + rng.normal(0, 0.015, img.shape)
    images = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
    attrs = pd.DataFrame({"group": np.where(dark, "dark", "light"), "exposure": exposure, "red_gain": red})
    return images, attrs


def training_sets(condition: Condition, n: int, size: int, seed: int, *, exposure_sd: float = 0.5,
                  red_sd: float = 0.25) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The real and the fake training images of one condition and seed (``n`` each).

    Returns ``real, fake, attributes`` (``attributes`` has a ``set`` column, ``real`` or ``fake``). In
    generator mode ``fake`` is empty (shape ``(0, size, size, 3)``) and ``attributes`` has only the real
    set's rows.

    Examples
    --------
    >>> real, fake, a = training_sets(Condition("lum", luminance_shift=1.0), 64, 16, seed=0)
    >>> m = a.groupby("set")["exposure"].mean()
    >>> bool(m["real"] - m["fake"] > 0.7), real.shape
    (True, (64, 16, 16, 3))
    """
    rng = np.random.default_rng([seed, 1])
    c = condition
    real, ar = make_faces(n, size, rng, exposure_mean=c.luminance_shift / 2, exposure_sd=exposure_sd,
                          red_mean=c.redness_shift / 2, red_sd=red_sd, dark_share=c.minority_share)
    if c.fake == "generator":
        if c.luminance_shift or c.redness_shift:
            raise ValueError(f"condition {c.id!r}: generator mode plants only a group share (shifts must be 0)")
        return real, np.zeros((0, size, size, 3), np.uint8), ar.assign(set="real")
    fake, af = make_faces(n, size, rng, exposure_mean=-c.luminance_shift / 2, exposure_sd=exposure_sd,
                          red_mean=-c.redness_shift / 2, red_sd=red_sd, dark_share=c.fake_share)
    attrs = pd.concat([ar.assign(set="real"), af.assign(set="fake")], ignore_index=True)
    return real, fake, attrs


def heldout_set(n: int, size: int, seed: int, *, exposure_sd: float = 0.6, red_sd: float = 0.3,
                dark_share: float = 0.5) -> tuple[np.ndarray, pd.DataFrame]:
    """The held-out images an audit scores: one neutral distribution for every condition (exposure
    and red gain centred on 0, wider than the training sets', half of each group), independent of
    the training draws (its own seed stream)."""
    rng = np.random.default_rng([seed, 2])
    return make_faces(n, size, rng, exposure_mean=0.0, exposure_sd=exposure_sd, red_mean=0.0, red_sd=red_sd,
                      dark_share=dark_share)
