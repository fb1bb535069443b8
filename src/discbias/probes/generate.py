"""Deterministic probe images: base images x probes x levels, and uniform colour fields.

A probe image is a pure function of (the base image's content hash, the probe, the level) and
:data:`GENERATOR_VERSION`: the same inputs give the same pixels on every run, so the scoring
stage's content-addressed cache (keyed for in-memory images by
:func:`~discbias.scoring.sha256_pixels`) makes a rerun free.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd

from . import interventions as iv
from ..errors import ConfigError
from ..scoring.sources import SourceError

#: Bump when an intervention's output changes (part of every probe id).
GENERATOR_VERSION = "1"


def image_sha256(img: np.ndarray) -> str:
    """The content hash of a decoded 8-bit image: :func:`discbias.scoring.sha256_pixels`.

    The same identity the score cache uses for in-memory images, so a probe's ``image_sha256``
    is the ``image_sha256`` of its score in the cache.

    Examples
    --------
    >>> image_sha256(np.zeros((1, 1, 3), np.uint8))[:12]
    'db7d0f6944d1'
    """
    from ..scoring.images import sha256_pixels

    return sha256_pixels(np.ascontiguousarray(img, dtype=np.uint8))


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
    """Resize to ``resolution`` x ``resolution`` by the scoring stage's default rule (stretch, Lanczos).

    A no-op when the image already has that size.

    Examples
    --------
    >>> resize_square(np.zeros((20, 30, 3), np.uint8), 16).shape
    (16, 16, 3)
    """
    from ..scoring.images import resize_square as _resize

    return _resize(np.ascontiguousarray(rgb, dtype=np.uint8), resolution, "stretch", "lanczos")[0]


def load_bases(source, resolution: int, face_method: str | None = "template", *,
               min_side: int | None = None) -> tuple[list[BaseImage], pd.DataFrame]:
    """Read base images, resize to ``resolution``, add skin/background masks.

    Images are found by the scoring stage's :func:`~discbias.scoring.discover` (a folder,
    searched recursively, or a manifest CSV with an ``image`` column) and decoded by its
    :func:`~discbias.scoring.decode_rgb`, so bad files are handled exactly as in scoring: they
    are skipped and returned with the reason.

    Parameters
    ----------
    min_side : int, optional
        Smallest accepted side (default: the scoring stage's ``DEFAULT_MIN_SIDE``, or
        ``resolution`` when that is smaller).

    Returns
    -------
    bases : list of BaseImage
        Named by the file stem (``image_id``).
    failures : DataFrame
        ``image, image_sha256, reason`` of files that could not be used.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (20, 20), (9, 9, 9)).save(d / "x.png")
    >>> _ = (d / "bad.png").write_bytes(b"")
    >>> bases, failed = load_bases(d, 16)
    >>> bases[0].image, bases[0].rgb.shape, sorted(bases[0].masks), failed["reason"].tolist()
    ('x', (16, 16, 3), ['background', 'skin'], ['empty file (0 bytes)'])
    """
    from ..scoring import DEFAULT_MIN_SIDE, FAILURE_COLUMNS, ImageError, decode_rgb, discover, sha256_bytes

    min_side = min(DEFAULT_MIN_SIDE, resolution) if min_side is None else int(min_side)
    out, failed = [], []
    from ..scoring.images import read_regular_file

    for it in discover(source):
        sha = ""
        if it.error is not None:  # a special file or unlistable folder: listed, never opened
            failed.append(dict(image=it.image, image_sha256="", reason=it.error))
            continue
        try:
            data = read_regular_file(it.path)
            sha = sha256_bytes(data)
            rgb, _ = decode_rgb(data, min_side=min_side)
        except OSError as exc:
            failed.append(dict(image=it.image, image_sha256=sha, reason=f"cannot read file ({exc.strerror or exc})"))
            continue
        except ImageError as exc:
            failed.append(dict(image=it.image, image_sha256=sha, reason=str(exc)))
            continue
        out.append(base_from_array(it.image_id, resize_square(rgb, resolution), face_method, source=str(it.path)))
    names = [b.image for b in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SourceError(f"{source}: base image names {dup} appear more than once (names are file stems); rename "
                         f"the files")
    return out, pd.DataFrame(failed, columns=FAILURE_COLUMNS)


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
                raise ConfigError(f"unknown probe {probe!r} in the level grid ([probes.levels]); known: {', '.join(iv.PROBES)}")
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
