"""The one place where probes meet the discriminator: :func:`score_images`.

Probe images are scored through a content-addressed SQLite cache (key = sha256 of the decoded
image, sha256 of the weights file, input protocol, grouping and cache-schema version), so a rerun
is free. This module is the bridge to the scoring stage: when :mod:`discbias.scoring` provides its
Python API, :func:`score_images` delegates to it (see ``_scoring_stage``); until then it uses the
local implementation below, which follows the same contract.

Input protocols:

* ``nvidia``: 8-bit RGB scaled to [-1, 1] (``x / 127.5 - 1``), as D was trained.
* ``grissom2024``: 8-bit values passed as floats in [0, 255], as in the authors' scoring script.

Both resize to the discriminator's resolution when needed (bilinear, antialiased). Grouping
``single`` scores each image alone (the minibatch-standard-deviation group is the image itself,
so its feature is constant), whatever the batch size.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np

CACHE_SCHEMA = "probes-local-1"
PROTOCOLS = ("nvidia", "grissom2024")


def _scoring_stage():
    """The scoring stage's API when it is installed (branch ``scoring``), else None."""
    try:
        from .. import scoring  # noqa: F401
    except ImportError:
        return None
    return scoring if hasattr(scoring, "score_arrays") else None


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(chunk), b""):
            h.update(b)
    return h.hexdigest()


def protocol_tensor(images: Sequence[np.ndarray], protocol: str, resolution: int):
    """Stack 8-bit (H, W, 3) images into the NCHW float tensor a protocol feeds to D.

    Examples
    --------
    >>> t = protocol_tensor([np.full((4, 4, 3), 255, np.uint8)], "nvidia", 4)
    >>> tuple(t.shape), float(t.max())
    ((1, 3, 4, 4), 1.0)
    """
    import torch

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown input protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    x = torch.from_numpy(np.stack([np.ascontiguousarray(i) for i in images])).permute(0, 3, 1, 2).float()
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True,
                                            align_corners=False)
    return x / 127.5 - 1.0 if protocol == "nvidia" else x


@contextmanager
def single_grouping(D):
    """Make every image its own minibatch-std group while the context is open."""
    layers = [m for m in D.modules() if hasattr(m, "group_size") and type(m).__name__ == "MinibatchStdLayer"]
    old = [m.group_size for m in layers]
    for m in layers:
        m.group_size = 1
    try:
        yield D
    finally:
        for m, g in zip(layers, old):
            m.group_size = g


class ScoreCache:
    """Content-addressed score cache in SQLite (one row per image x weights x protocol x grouping)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, image_sha256 TEXT, weights_sha256 TEXT,"
                        " protocol TEXT, grouping TEXT, schema TEXT, score REAL, created REAL)")
        self.db.commit()

    @staticmethod
    def key(image_sha: str, weights_sha: str, protocol: str, grouping: str) -> str:
        return hashlib.sha256(f"{image_sha}|{weights_sha}|{protocol}|{grouping}|{CACHE_SCHEMA}".encode()).hexdigest()

    def get(self, keys: list[str]) -> dict[str, float]:
        out = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            q = f"SELECT key, score FROM scores WHERE key IN ({','.join('?' * len(part))})"
            out.update(dict(self.db.execute(q, part).fetchall()))
        return out

    def put(self, rows: list[tuple]) -> None:
        with self.db:  # one transaction per batch: a crash loses at most the batch in flight
            self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?)", rows)

    def close(self) -> None:
        self.db.close()


_LOADED: dict[tuple[str, str], object] = {}


def _load(weights: str | os.PathLike, device: str):
    from ..nets import load_discriminator

    k = (str(weights), device)
    if k not in _LOADED:
        _LOADED.clear()
        _LOADED[k] = load_discriminator(weights, device)
    return _LOADED[k]


def score_images(images: Sequence[np.ndarray], *, weights: str | os.PathLike, protocol: str = "nvidia",
                 cache: str | os.PathLike | None = None, grouping: str = "single", batch_size: int = 8,
                 device: str = "cpu", image_hashes: Sequence[str] | None = None,
                 progress: bool = False) -> tuple[np.ndarray, int]:
    """Score 8-bit RGB images with D under an input protocol, through the score cache.

    Parameters
    ----------
    images : sequence of ndarray
        ``(H, W, 3)`` uint8 images.
    weights : path
        A discriminator file :func:`discbias.nets.load_discriminator` reads.
    protocol : {"nvidia", "grissom2024"}
    cache : path, optional
        SQLite cache file; None scores without caching.
    grouping : {"single"}
        Only ``single`` (each image its own minibatch-std group) is supported here.
    image_hashes : sequence of str, optional
        Precomputed :func:`~discbias.probes.generate.image_sha256` of the images.

    Returns
    -------
    scores : ndarray of float
        D's logits, in the order of ``images``.
    n_computed : int
        How many were computed (the rest came from the cache).

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from discbias.nets import Discriminator, save_discriminator
    >>> torch.manual_seed(0) and None
    >>> w = os.path.join(tempfile.mkdtemp(), "d.safetensors")
    >>> save_discriminator(Discriminator(0, 16, 3, channel_base=256, channel_max=16), w)
    >>> imgs = [np.full((16, 16, 3), v, np.uint8) for v in (0, 128, 255)]
    >>> c = os.path.join(tempfile.mkdtemp(), "cache.sqlite")
    >>> s1, n1 = score_images(imgs, weights=w, cache=c)
    >>> s2, n2 = score_images(imgs, weights=w, cache=c)
    >>> n1, n2, bool(np.array_equal(s1, s2))
    (3, 0, True)
    """
    stage = _scoring_stage()
    if stage is not None:  # pragma: no cover - switched on when the scoring stage lands
        return stage.score_arrays(images, weights=weights, protocol=protocol, cache=cache, grouping=grouping,
                                  batch_size=batch_size, device=device)
    import torch

    from .generate import image_sha256

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown input protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if grouping != "single":
        raise ValueError(f"grouping {grouping!r} is not supported for probes; use 'single'")
    hashes = list(image_hashes) if image_hashes is not None else [image_sha256(i) for i in images]
    wsha = file_sha256(weights)
    keys = [ScoreCache.key(h, wsha, protocol, grouping) for h in hashes]
    db = ScoreCache(cache) if cache is not None else None
    have = db.get(keys) if db else {}
    todo = [i for i, k in enumerate(keys) if k not in have]
    todo_unique = list(dict.fromkeys(keys[i] for i in todo))
    first = {}
    for i in todo:
        first.setdefault(keys[i], i)
    t0 = time.perf_counter()
    if todo_unique:
        D = _load(weights, device)
        with torch.inference_mode(), single_grouping(D):
            for s in range(0, len(todo_unique), batch_size):
                part = todo_unique[s:s + batch_size]
                x = protocol_tensor([images[first[k]] for k in part], protocol, D.img_resolution).to(device)
                out = D(x).reshape(-1).double().cpu().numpy()
                new = {k: float(v) for k, v in zip(part, out)}
                have.update(new)
                if db:
                    now = time.time()
                    db.put([(k, hashes[first[k]], wsha, protocol, grouping, CACHE_SCHEMA, v, now) for k, v in new.items()])
                if progress:
                    print(f"\r[discbias] scored {min(s + batch_size, len(todo_unique))}/{len(todo_unique)} "
                          f"({protocol}, {time.perf_counter() - t0:.0f}s)", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    if db:
        db.close()
    return np.array([have[k] for k in keys], dtype=np.float64), len(todo_unique)
