"""Small random discriminators and synthetic image folders for tests, examples and benchmarks.

Examples
--------
>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> w = save_random_discriminator(d / "D.pt", resolution=16)
>>> paths = make_images(d / "img", 3, size=(20, 20))
>>> len(paths), w.suffix
(3, '.pt')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def random_discriminator(resolution: int = 16, *, seed: int = 0, mbstd_group_size: int = 4, channel_base: int = 256,
                         channel_max: int = 16):
    """A small random :class:`~discbias.nets.Discriminator` (eval mode, deterministic weights)."""
    import torch

    from ..nets import Discriminator

    g = torch.Generator().manual_seed(seed)
    D = Discriminator(0, resolution, 3, channel_base=channel_base, channel_max=channel_max,
                      epilogue_kwargs=dict(mbstd_group_size=mbstd_group_size, mbstd_num_channels=1))
    with torch.no_grad():
        for p in D.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.ndim > 1 else 0.1))
    return D.eval()


def save_random_discriminator(path, resolution: int = 16, **kw) -> Path:
    """Save :func:`random_discriminator` with :func:`discbias.nets.save_discriminator`; returns the path."""
    from ..nets import save_discriminator

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_discriminator(random_discriminator(resolution, **kw), path)
    return path


def random_image(rng: np.random.Generator, size=(32, 32)) -> np.ndarray:
    """A smooth random RGB uint8 image ``H x W x 3`` (a colour gradient plus noise)."""
    h, w = size[1], size[0]
    base = rng.uniform(20, 235, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    grad = (xx / max(w - 1, 1))[..., None] * rng.uniform(-40, 40, size=3) + (yy / max(h - 1, 1))[..., None] * rng.uniform(-40, 40, size=3)
    img = base + grad + rng.normal(0, 12, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(folder, n: int, *, size=(32, 32), seed: int = 0, fmt: str = "png", layout: str = "flat",
                quality: int = 95) -> list[Path]:
    """Write ``n`` random images into ``folder``; ``layout="ffhq"`` writes ``00000/00000.png`` ...

    Returns the paths in order.
    """
    from PIL import Image

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        name = f"{k:05d}.{fmt}"
        p = folder / (f"{(k // 1000) * 1000:05d}/{name}" if layout == "ffhq" else name)
        p.parent.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(random_image(rng, size))
        if fmt in ("jpg", "jpeg"):
            img.save(p, quality=quality)
        else:
            img.save(p)
        out.append(p)
    return out
