"""Deterministic probe images: base images x probes x levels, and uniform colour fields.

A probe image is a pure function of (the base image's content hash, the probe, the level) and
:data:`GENERATOR_VERSION`: the same inputs give the same bytes on every run, so the scoring
stage's content-addressed cache makes a rerun free.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd

from . import interventions as iv

#: Bump when an intervention's output changes (part of every probe id).
GENERATOR_VERSION = "1"


def image_sha256(img: np.ndarray) -> str:
    """sha256 of a decoded 8-bit image: its shape then its row-major RGB bytes.

    Examples
    --------
    >>> image_sha256(np.zeros((1, 1, 3), np.uint8))[:12]
    'db7d0f6944d1'
    """
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h = hashlib.sha256(f"{img.shape[0]}x{img.shape[1]}x{img.shape[2]}:".encode())
    h.update(img.tobytes())
    return h.hexdigest()


@dataclass
class BaseImage:
    """A base image at the working resolution, its content hash and optional region masks."""

    image: str
    rgb: np.ndarray
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

    @property
    def sha256(self) -> str:
        return image_sha256(self.rgb)


def resize_square(rgb: np.ndarray, resolution: int) -> np.ndarray:
    """Resize to ``resolution`` x ``resolution`` with Lanczos (no-op when already that size)."""
    if rgb.shape[0] == resolution and rgb.shape[1] == resolution:
        return rgb
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((resolution, resolution), Image.LANCZOS))


def load_bases(source, resolution: int, face_method: str | None = "template") -> list[BaseImage]:
    """Read base images (folder, manifest or file), resize to ``resolution``, add skin/background masks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (20, 20), (9, 9, 9)).save(d / "x.png")
    >>> b = load_bases(d, 16)[0]
    >>> b.image, b.rgb.shape, sorted(b.masks)
    ('x', (16, 16, 3), ['background', 'skin'])
    """
    from ..measures.faces import face_regions
    from ..measures.io import discover_images, read_rgb8

    out = []
    for r in discover_images(source).itertuples():
        rgb = resize_square(read_rgb8(r.path), resolution)
        out.append(base_from_array(r.image, rgb, face_method, source=r.path))
    return out


def base_from_array(image: str, rgb: np.ndarray, face_method: str | None = "template", source: str = "") -> BaseImage:
    """A :class:`BaseImage` from an array (masks from ``face_method``; None for no masks)."""
    masks = {}
    if face_method:
        from ..measures.faces import face_regions

        reg = face_regions(rgb, face_method)
        if reg is not None:
            masks = {"skin": reg.skin, "background": reg.background}
    return BaseImage(image, np.ascontiguousarray(rgb, dtype=np.uint8), masks, source)


def probe_id(base_sha256: str, probe: str, level) -> str:
    """The id of one probe image: a hash of (base hash, probe, level, generator version).

    Examples
    --------
    >>> probe_id("ab", "exposure", 1.0) == probe_id("ab", "exposure", 1)
    True
    """
    if isinstance(level, (tuple, list)):
        lv = ",".join(f"{float(v):.6g}" for v in level)
    else:
        lv = f"{float(level):.6g}"
    return hashlib.sha256(f"{base_sha256}|{probe}|{lv}|v{GENERATOR_VERSION}".encode()).hexdigest()[:20]


def probe_plan(bases: list[BaseImage], levels: dict[str, list] | None = None, *, fields: bool = False,
               field_size: int = 64, field_lightness=None, field_hues=None) -> pd.DataFrame:
    """One row per probe image to make: ``probe_id, base, base_sha256, probe, level`` (+ field L*, hue).

    Level 0 is always included; masked probes are planned only for bases with that mask.
    """
    levels = levels if levels is not None else iv.DEFAULT_LEVELS
    rows = []
    for b in bases:
        sha = b.sha256
        for probe, lv in levels.items():
            if probe not in iv.PROBES:
                raise ValueError(f"unknown probe {probe!r} in the level grid; known: {', '.join(iv.PROBES)}")
            if probe in iv.MASKED and iv.MASKED[probe] not in b.masks:
                continue
            for level in sorted(set(float(v) for v in lv) | {0.0}):
                rows.append(dict(probe_id=probe_id(sha, probe, level), base=b.image, base_sha256=sha, probe=probe,
                                 level=level, field_lightness=np.nan, field_hue=np.nan))
    if fields:
        for L in (field_lightness or iv.FIELD_LIGHTNESS):
            for hue in (field_hues or iv.FIELD_HUES):
                rows.append(dict(probe_id=probe_id(f"field{field_size}", "uniform_field", (L, hue)), base="uniform field",
                                 base_sha256="", probe="uniform_field", level=np.nan,
                                 field_lightness=float(L), field_hue=float(hue)))
    return pd.DataFrame(rows)


def make_probe(row, bases: dict[str, BaseImage], field_size: int) -> tuple[np.ndarray, float]:
    """Generate the image of one plan row (deterministic)."""
    if row.probe == "uniform_field":
        x = iv.uniform_field((field_size, field_size), row.field_lightness, row.field_hue)
        return iv._to_uint8(x)
    b = bases[row.base]
    return iv.apply(b.rgb, row.probe, row.level, masks=b.masks, seed=iv.seed_for(row.base_sha256, row.probe, row.level))


def generate_probes(bases: list[BaseImage], plan: pd.DataFrame, *, field_size: int | None = None,
                    out_dir: str | os.PathLike | None = None) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield ``(row, image)`` for each plan row, with ``image_sha256`` and ``clipped`` added to the row.

    ``out_dir`` also writes each image as ``<probe_id>.png`` (skipped when present).

    Examples
    --------
    >>> b = [base_from_array("g", np.full((8, 8, 3), 120, np.uint8))]
    >>> plan = probe_plan(b, {"exposure": [-1, 1]})
    >>> [round(float(img.mean())) for _, img in generate_probes(b, plan)]
    [86, 120, 165]
    """
    by_name = {b.image: b for b in bases}
    field_size = field_size or (bases[0].rgb.shape[0] if bases else 64)
    if out_dir is not None:
        from PIL import Image

        os.makedirs(out_dir, exist_ok=True)
    for row in plan.itertuples(index=False):
        img, clipped = make_probe(row, by_name, field_size)
        d = row._asdict()
        d.update(image_sha256=image_sha256(img), clipped=clipped)
        if out_dir is not None:
            p = os.path.join(out_dir, f"{row.probe_id}.png")
            if not os.path.exists(p):
                Image.fromarray(img).save(p)
        yield d, img
