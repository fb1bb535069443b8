"""Photograph-like test images for the measures' tests and benchmarks (scikit-image's bundled samples).

Examples
--------
>>> imgs = sample_photographs(64)
>>> sorted(imgs)[:3], imgs["astronaut"].shape, imgs["astronaut"].dtype.name
(['astronaut', 'black', 'chelsea'], (64, 64, 3), 'uint8')
"""

from __future__ import annotations

import numpy as np

#: scikit-image samples shipped inside its wheel (no download), all photographs but the colour wheel.
SKIMAGE_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "colorwheel")


def sample_photographs(size: int = 1024, *, seed: int = 0) -> dict[str, np.ndarray]:
    """scikit-image's sample photographs stretched to ``size x size`` (Lanczos), plus edge cases.

    The edge cases: a noise image, a smooth gradient with noise, and flat black, white and grey
    images (dark-segment CIELAB branch, clipping, no hue).

    Parameters
    ----------
    size : int
        Side in pixels.
    seed : int
        Seed of the noise images.

    Returns
    -------
    dict of str to ndarray
        ``size x size x 3`` uint8 images by name.
    """
    import skimage.data
    from PIL import Image

    from ..scoring.testing import random_image

    out = {}
    for name in SKIMAGE_SAMPLES:
        a = getattr(skimage.data, name)()[..., :3]
        out[name] = np.asarray(Image.fromarray(a).resize((size, size), Image.LANCZOS))
    rng = np.random.default_rng(seed)
    out["noise"] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    out["gradient"] = random_image(rng, (size, size))
    for name, v in (("black", 0), ("white", 255), ("grey", 128)):
        out[name] = np.full((size, size, 3), v, np.uint8)
    return out
