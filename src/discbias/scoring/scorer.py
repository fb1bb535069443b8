"""Batched, resumable scoring of image sets into the score cache.

Decoding and preprocessing run in :class:`torch.utils.data.DataLoader` workers, overlapped with
the forward pass; every batch's scores, failures and image statistics are committed in one
transaction, so an interrupted run loses at most the batch in flight and a rerun scores only what
is missing (images are looked up by the sha256 of their bytes, so renaming or moving files does
not trigger rescoring, and changing a file does).

Images made in memory (the controlled probes) go through :meth:`Scorer.score_arrays` /
:func:`score_arrays`: the same preprocessing, grouping, cache and batch transactions, with the
sha256 of the decoded pixels (:func:`~discbias.scoring.images.sha256_pixels`) as their identity.
"""

from __future__ import annotations

import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .. import __version__
from .cache import ScoreCache
from .columns import FAILURE_COLUMNS, OUTPUT_COLUMNS  # noqa: F401  (re-exported: discbias.scoring.scorer.OUTPUT_COLUMNS)
from .images import (DEFAULT_MIN_SIDE, ImageError, check_size, check_rgb8, colour_stats, decode_rgb, display_name,
                     read_regular_file, resize_square, sha256_bytes, sha256_file, sha256_pixels, sha256_regular_file)
from .protocols import ProtocolError, ScoringProtocol
from .sources import ImageItem, discover
from ..errors import SetupError
from ..errors import MissingInputError


def resolve_weights(weights: str | os.PathLike) -> Path:
    """A weights file by path, or by registry name (looked up in the weights directory).

    Raises :class:`FileNotFoundError` naming the download command when a registry file is absent.

    Examples
    --------
    >>> resolve_weights("/nonexistent/d.pt")
    Traceback (most recent call last):
    ...
    discbias.errors.MissingInputError: weights file /nonexistent/d.pt does not exist (give a path or a registry name such as stylegan3-r-ffhq-1024x1024.pkl)
    """
    p = Path(weights).expanduser()
    if p.is_file():
        return p
    if os.path.lexists(p):  # a folder, FIFO, device, socket or link loop: say what it is (never opened)
        from ..safeio import regular_file

        regular_file(p, what="weights file")
    from ..nets import KNOWN_WEIGHTS, weights_path

    if str(weights) in KNOWN_WEIGHTS:
        q = weights_path(str(weights))
        if q.is_file():
            return q
        raise MissingInputError(
            f"registry weights {weights} are not in {q.parent}; download them with "
            f"`python -c \"from discbias.nets import download_weights; download_weights('{weights}')\"` "
            f"(or set DISCBIAS_WEIGHTS_DIR to where they are)")
    raise MissingInputError(f"weights file {p} does not exist (give a path or a registry name such as "
                            f"stylegan3-r-ffhq-1024x1024.pkl)")


def _mbstd_layers(D: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in D.modules() if type(m).__name__ == "MinibatchStdLayer"]


@dataclass
class ScoreRun:
    """What a scoring run produced.

    Attributes
    ----------
    table : DataFrame
        One row per scored image (columns :data:`OUTPUT_COLUMNS` plus manifest metadata).
    failures : DataFrame
        ``image, image_sha256, reason`` for every input that could not be scored.
    scored, from_cache, failed : int
        Counts (scored now, found in the cache, failed).
    seconds : float
        Wall time.
    """

    table: pd.DataFrame
    failures: pd.DataFrame
    scored: int
    from_cache: int
    failed: int
    seconds: float
    weights_sha256: str = ""
    protocol: ScoringProtocol | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Counts and settings as a JSON-ready dict."""
        return dict(scored=self.scored, from_cache=self.from_cache, failed=self.failed, total=len(self.table) + self.failed,
                    seconds=round(self.seconds, 3), weights_sha256=self.weights_sha256,
                    protocol=self.protocol.label if self.protocol else None,
                    settings=self.protocol.settings() if self.protocol else None)


class ImageFiles(torch.utils.data.Dataset):
    """Reads, hashes, decodes and resizes one file per item (runs in DataLoader workers)."""

    def __init__(self, paths: Sequence[Path], resolution: int, resize: str, filter: str, min_side: int):
        self.paths = list(paths)
        self.resolution, self.resize, self.filter, self.min_side = resolution, resize, filter, min_side

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        out = dict(i=i, sha=None, x=None, reason=None, notes="", stats=None)
        try:
            data = read_regular_file(self.paths[i])
        except OSError as exc:
            out["reason"] = f"cannot read file ({exc.strerror or exc})"
            return out
        except ImageError as exc:
            out["reason"] = str(exc)
            return out
        out["sha"] = sha256_bytes(data)
        try:
            arr, notes = decode_rgb(data, min_side=self.min_side)
            stats = colour_stats(arr)
            stats.update(width=int(arr.shape[1]), height=int(arr.shape[0]))
            arr, note = resize_square(arr, self.resolution, self.resize, self.filter)
        except ImageError as exc:
            out["reason"] = str(exc)
            return out
        if note:
            notes.append(note)
        out.update(x=torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))), notes="; ".join(notes),
                   stats=stats)
        return out


def _collate(batch):
    return batch


class Scorer:
    """Score images with one discriminator under one protocol, through the cache.

    Parameters
    ----------
    weights : path-like or str
        Weights file (NVIDIA pickle, our ``.safetensors``/``.pt``) or registry name.
    protocol : ScoringProtocol
        Input, resize and grouping settings (``precision`` and the reference identity are
        filled in here).
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``.
    fp32 : bool
        On CUDA, force float32 in every block (otherwise the high-resolution blocks run in
        float16 as in NVIDIA's code). Always float32 on the CPU.
    reference : path-like, optional
        Folder or manifest of reference images (``reference-group`` only).
    batch_size : int
        Images per forward pass (scores agree across batch sizes within 1e-5 x max(1, |score|), float32 rounding).
    num_workers : int
        DataLoader worker processes for decoding (0: in the main process).
    min_side : int
        Smallest accepted image side (smaller images are recorded as failures).

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> from discbias.nets import Discriminator, save_discriminator
    >>> d = Path(tempfile.mkdtemp())
    >>> torch.manual_seed(0) and None
    >>> save_discriminator(Discriminator(0, 16, 3, channel_base=128, channel_max=16), d / "D.pt")
    >>> for k in range(3): Image.new("RGB", (40, 40), (60 * k, 20, 90)).save(d / f"{k}.png")
    >>> s = Scorer(d / "D.pt", ScoringProtocol(), min_side=8)
    >>> run = s.score_items(discover(d), ScoreCache(d / "cache"), progress=False)
    >>> run.scored, run.from_cache, run.failed
    (3, 0, 0)
    >>> s.score_items(discover(d), ScoreCache(d / "cache"), progress=False).from_cache
    3
    """

    def __init__(self, weights, protocol: ScoringProtocol | None = None, *, device: str = "cpu", fp32: bool = False,
                 reference=None, batch_size: int = 8, num_workers: int = 0, min_side: int = DEFAULT_MIN_SIDE,
                 network: torch.nn.Module | None = None, weights_sha256: str | None = None):
        from ..nets import load_discriminator

        protocol = protocol or ScoringProtocol()
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise SetupError(f"device {str(device)[:60]!r} is not a device name; use cpu, cuda or cuda:N") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise SetupError(f"device {device!r} requested but CUDA is not available; use --device cpu")
        if network is None:
            self.weights_path = resolve_weights(weights)
            self.weights_sha256 = sha256_file(self.weights_path)
            self.D = load_discriminator(self.weights_path, device=self.device)
        else:
            if not weights_sha256:
                raise ValueError("pass weights_sha256 together with network")
            self.weights_path, self.weights_sha256, self.D = None, weights_sha256, network.to(self.device).eval()
        self.c_dim = int(getattr(self.D, "c_dim", 0) or 0)
        if self.c_dim and not protocol.condition:
            raise ProtocolError(f"this discriminator is conditional (c_dim={self.c_dim}); say which label to score "
                                f"with: condition 'class:K' (K = 0..{self.c_dim - 1}), 'average' (mean over the "
                                f"{self.c_dim} classes), or a manifest label column (--label-column / "
                                f"[scoring] label_column)")
        if not self.c_dim and protocol.condition:
            raise ProtocolError(f"condition {protocol.condition!r} given, but this discriminator is unconditional "
                                f"(c_dim=0); drop the condition")
        if protocol.condition.startswith("label:"):
            raise ProtocolError(f"condition {protocol.condition!r}: scoring by a label column goes through "
                                f"score_by_label (build the Scorer with condition 'average' or 'class:K')")
        k = protocol.class_index
        if k is not None and not 0 <= k < self.c_dim:
            raise ProtocolError(f"condition {protocol.condition!r}: class {k} is out of range for c_dim={self.c_dim} "
                                f"(classes 0..{self.c_dim - 1})")
        self.resolution = int(self.D.img_resolution)
        self.force_fp32 = fp32 or self.device.type != "cuda"
        precision = "fp32" if self.force_fp32 or not getattr(self.D, "num_fp16_res", 0) else "fp16-blocks"
        protocol = protocol.with_(precision=precision)
        self.batch_size = max(1, int(batch_size))
        self.num_workers = max(0, int(num_workers))
        self.min_side = int(min_side)
        layers = _mbstd_layers(self.D)
        self.refs = None
        if protocol.grouping == "single":
            for m in layers:  # group of one == one image per forward pass, whatever the batch size
                m.group_size = 1
        else:
            sizes = {m.group_size for m in layers}
            if not layers or sizes == {None} or len(sizes) != 1:
                raise ProtocolError(f"reference-group needs a network with a fixed minibatch-std group size "
                                    f"(found {sorted(map(str, sizes)) or 'no minibatch-std layer'})")
            G = int(sizes.pop())
            if reference is None:
                raise ProtocolError("grouping 'reference-group' needs a reference set (--reference FOLDER|CSV)")
            refs, ref_sha = self._load_references(reference, protocol, G)
            protocol = protocol.with_(group_size=G, reference_sha256=ref_sha)
            self.refs = refs  # uint8 [draws, G-1, 3, R, R]
        self.protocol = protocol

    # ---- references -----------------------------------------------------------------------
    def _load_references(self, reference, protocol: ScoringProtocol, G: int):
        items = discover(reference)
        bad = [it for it in items if it.error is not None]
        if bad:
            raise ProtocolError(f"reference image {bad[0].path}: {bad[0].error}; remove it from the reference set")
        try:
            shas = [sha256_regular_file(it.path) for it in items]
        except (OSError, ImageError) as exc:
            raise ProtocolError(f"reference set {reference}: {exc}") from None
        ref_sha = sha256_bytes("\n".join(sorted(shas)).encode())
        if G - 1 > len(items):
            raise ProtocolError(f"reference set {reference} has {len(items)} images; group size {G} needs at least {G - 1}")
        order = sorted(range(len(items)), key=lambda i: shas[i])  # draws do not depend on file names
        draws = []
        cache: dict[int, torch.Tensor] = {}
        for d in range(protocol.draws):
            rng = np.random.default_rng([int(protocol.seed), d])
            pick = rng.choice(len(order), size=G - 1, replace=False) if G > 1 else []
            imgs = []
            for j in pick:
                k = order[int(j)]
                if k not in cache:
                    try:
                        arr, _ = decode_rgb(read_regular_file(items[k].path), min_side=self.min_side)
                    except (ImageError, OSError) as exc:
                        raise ProtocolError(f"reference image {items[k].path}: {exc}; remove it from the reference set") from None
                    arr, _ = resize_square(arr, self.resolution, protocol.resize, protocol.filter)
                    cache[k] = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
                imgs.append(cache[k])
            draws.append(torch.stack(imgs) if imgs else torch.zeros(0, 3, self.resolution, self.resolution,
                                                                   dtype=torch.uint8))
        return torch.stack(draws), ref_sha

    # ---- forward --------------------------------------------------------------------------
    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).float()
        if self.protocol.input == "nvidia":
            x = x / 127.5 - 1
        return x

    def _labels(self, n: int, k: int) -> torch.Tensor:
        c = torch.zeros(n, self.c_dim, device=self.device)
        c[:, k] = 1
        return c

    def _d1(self, x: torch.Tensor) -> torch.Tensor:
        """Raw scores of one batch under the protocol's conditioning (mean over classes for 'average')."""
        if not self.c_dim:
            return self.D(x, None, force_fp32=self.force_fp32)[:, 0].float()
        k = self.protocol.class_index
        ks = [k] if k is not None else range(self.c_dim)
        outs = [self.D(x, self._labels(x.shape[0], j), force_fp32=self.force_fp32)[:, 0].float() for j in ks]
        return torch.stack(outs).mean(0)

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        out = self._d1(x)
        if self.protocol.flip:
            out = (out + self._d1(x.flip(3))) / 2
        return out

    def with_condition(self, condition: str) -> "Scorer":
        """A scorer sharing this one's network and settings, with another ``condition`` (conditional networks).

        Examples
        --------
        See :func:`score_by_label`.
        """
        import copy

        new = copy.copy(self)
        p = self.protocol.with_(condition=condition)
        k = p.class_index
        if k is not None and not 0 <= k < self.c_dim:
            raise ProtocolError(f"class {k} is out of range for c_dim={self.c_dim} (classes 0..{self.c_dim - 1})")
        new.protocol = p
        return new

    @torch.inference_mode()
    def forward_uint8(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Scores of a uint8 batch ``[B, 3, R, R]`` under the protocol: (mean, SD over draws).

        The SD is NaN unless ``reference-group`` with more than one draw.
        """
        x = self._scale(x)
        B = x.shape[0]
        if self.protocol.grouping == "single":
            s = self._d(x).cpu().numpy().astype(np.float64)
            return s, np.full(B, np.nan)
        per_draw = []
        for d in range(self.refs.shape[0]):
            refs = self._scale(self.refs[d])  # [G-1, 3, R, R]
            # Image k's group must be {x_k, ref_1..ref_{G-1}}: the layer puts positions k, B+k, 2B+k...
            # in one group when the batch is G*B, so stack the references as G-1 blocks of B copies.
            parts = [x] + [refs[j:j + 1].expand(B, -1, -1, -1) for j in range(refs.shape[0])]
            per_draw.append(self._d(torch.cat(parts))[:B].cpu().numpy().astype(np.float64))
        arr = np.stack(per_draw)
        sd = arr.std(axis=0, ddof=1) if arr.shape[0] > 1 else np.full(B, np.nan)
        return arr.mean(axis=0), sd

    # ---- the run --------------------------------------------------------------------------
    @staticmethod
    def _hashes(items: Sequence[ImageItem], cache: ScoreCache, rehash: bool) -> list[str | None]:
        """sha256 of every file; unchanged files (same path, size, mtime) come from the cache's memo."""
        keys, stats = [], []
        for it in items:
            try:
                st = os.stat(it.path)
                stats.append((st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None)
            except OSError:
                stats.append(None)
            try:
                keys.append(str(Path(it.path).resolve()))
            except (OSError, RuntimeError):  # a symbolic-link loop: no memo, the read reports it
                keys.append(os.path.abspath(it.path))
        memo = {} if rehash else cache.known_hashes(keys)
        shas: list[str | None] = [None] * len(items)
        todo = []
        for i, (k, st) in enumerate(zip(keys, stats)):
            m = memo.get(k)
            if st is not None and m is not None and (m[0], m[1]) == st:
                shas[i] = m[2]
            elif st is not None:
                todo.append(i)

        def _hash(i):
            try:
                return sha256_regular_file(items[i].path)
            except (OSError, ImageError):
                return None

        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as ex:
            for i, sha in zip(todo, ex.map(_hash, todo, chunksize=64)):
                shas[i] = sha
        cache.remember_hashes([(keys[i], stats[i][0], stats[i][1], shas[i]) for i in todo if shas[i]])
        return shas

    def score_items(self, items: Sequence[ImageItem], cache: ScoreCache, *, progress: bool = True,
                    on_batch: Callable[[int], None] | None = None, rehash: bool = False) -> ScoreRun:
        """Score every item not yet in ``cache``; return the full table (cached and new rows).

        Parameters
        ----------
        items : sequence of ImageItem
            From :func:`~discbias.scoring.sources.discover` (optionally sharded).
        cache : ScoreCache
        progress : bool
            Progress bar (images/s, ETA) on stderr.
        on_batch : callable, optional
            Called with the number of images committed after each batch.
        rehash : bool
            Read and hash every file even if its path, size and modification time are unchanged
            since the cache last hashed it.
        """
        t0 = time.perf_counter()
        p = self.protocol
        items = list(items)
        rows, todo, failures = self._plan(items, cache, rehash)
        n_cached, n_scored = len(rows), 0
        if todo:
            ds = ImageFiles([it.path for it in todo], self.resolution, p.resize, p.filter, self.min_side)
            loader = torch.utils.data.DataLoader(
                ds, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers, collate_fn=_collate,
                prefetch_factor=2 if self.num_workers else None, pin_memory=self.device.type == "cuda")

            def scored():
                for batch in loader:
                    ok = [b for b in batch if b["x"] is not None]
                    if ok:
                        mean, sd = self.forward_uint8(torch.stack([b["x"] for b in ok]))
                        for b, m, s in zip(ok, mean, sd):
                            b.update(score=float(m), score_sd=None if np.isnan(s) else float(s))
                    yield batch

            new_rows, new_failures = self._commit_all(cache, todo, scored(), progress=progress, on_batch=on_batch,
                                                      desc=f"scoring ({p.label})")
            rows += new_rows
            failures += new_failures
            n_scored = len(new_rows)
        return self._result(items, rows, failures, n_scored, n_cached, t0)

    def _plan(self, items: list[ImageItem], cache: ScoreCache,
              rehash: bool) -> tuple[list[dict], list[ImageItem], list[dict]]:
        """Hash the items and look them up in the cache.

        Returns (output rows of the cached ones, items to score, failures of the items that
        discovery already found unreadable: those are recorded in the cache and never opened).
        """
        wsha, p = self.weights_sha256, self.protocol
        listed = [it for it in items if it.error is not None]
        items = [it for it in items if it.error is None]
        if listed:
            cache.put_batch([], [dict(image=it.image, image_sha256="", weights_sha256=wsha, protocol=p, reason=it.error)
                                 for it in listed])
        failures = [dict(image=it.image, image_sha256="", reason=it.error) for it in listed]
        shas = self._hashes(items, cache, rehash)
        cached = cache.get_scores([s for s in shas if s], self.weights_sha256, self.protocol)
        rows, todo = [], []
        for it, sha in zip(items, shas):
            hit = cached.get(sha) if sha else None
            if hit is not None:
                rows.append(self._row(it, sha, hit["score"], hit["score_sd"], hit["n_draws"], True,
                                      hit["conversion"] or "", hit["discbias_version"]))
            else:
                todo.append(it)
        return rows, todo, failures

    def _commit_all(self, cache: ScoreCache, todo: list[ImageItem], batches, *, progress: bool,
                    on_batch: Callable[[int], None] | None, desc: str) -> tuple[list[dict], list[dict]]:
        """:meth:`_commit` every batch of results as it comes, with a progress bar (images/s, ETA)."""
        rows, failures, bar = [], [], None
        if progress:
            from ..progress import progress as _progress

            bar = _progress(total=len(todo), unit="img", desc=desc)
        try:
            for batch in batches:
                new_rows, fails = self._commit(cache, todo, batch)
                rows += new_rows
                failures += fails
                if bar is not None:
                    bar.update(len(batch))
                if on_batch is not None:
                    on_batch(len(batch))
        finally:
            if bar is not None:
                bar.close()
        return rows, failures

    def _commit(self, cache: ScoreCache, todo: list[ImageItem], results: list[dict]) -> tuple[list[dict], list[dict]]:
        """Write one batch into the cache in one transaction; return its (output rows, failures).

        ``results``: one dict per image, ``i`` (index into ``todo``), ``sha``, ``reason`` (empty
        when decoded), ``notes``, ``stats`` and, when decoded, ``score`` and ``score_sd``.
        """
        p, wsha = self.protocol, self.weights_sha256
        nd = p.draws if p.grouping == "reference-group" else 1
        new_rows, db_rows, stats, fails = [], [], [], []
        for b in results:
            it = todo[int(b["i"])]
            if b["reason"]:
                fails.append(dict(image=it.image, image_sha256=b["sha"] or "", weights_sha256=wsha, protocol=p,
                                  reason=b["reason"]))
                continue
            new_rows.append(self._row(it, b["sha"], b["score"], b["score_sd"], nd, False, b["notes"], __version__))
            db_rows.append(dict(image=it.image, image_sha256=b["sha"], weights_sha256=wsha, protocol=p,
                                score=b["score"], score_sd=b["score_sd"], n_draws=nd, conversion=b["notes"],
                                source=str(it.path)))
            stats.append(dict(image_sha256=b["sha"], **b["stats"]))
        cache.put_batch(db_rows, fails, stats)
        self._as_stored(new_rows, cache)
        return new_rows, [dict(image=f["image"], image_sha256=f["image_sha256"], reason=f["reason"]) for f in fails]

    def _result(self, items: list[ImageItem], rows: list[dict], failures: list[dict], n_scored: int, n_cached: int,
                t0: float, **extra) -> ScoreRun:
        """The run's table (sorted by image) and failures (in input order)."""
        table = pd.DataFrame(rows, columns=OUTPUT_COLUMNS + sorted({k for it in items for k in it.meta}))
        if len(table):
            table = table.sort_values("image", kind="stable").reset_index(drop=True)
        order = {it.image: k for k, it in enumerate(items)}
        failures = sorted(failures, key=lambda f: order.get(f["image"], len(order)))
        fail = pd.DataFrame([dict(f, image=display_name(f["image"])) for f in failures], columns=FAILURE_COLUMNS)
        return ScoreRun(table, fail, n_scored, n_cached, len(fail), time.perf_counter() - t0, self.weights_sha256,
                        self.protocol, extra=extra)

    def _as_stored(self, new_rows: list[dict], cache: ScoreCache) -> None:
        """Replace freshly computed scores by the values the cache holds for them.

        Another process may have stored the same key first (``INSERT OR IGNORE`` keeps the first
        value, which can differ in the last bits; see the README on batch size), so the table a run
        reports is always the cache's value.
        """
        if not new_rows:
            return
        stored = cache.get_scores([r["image_sha256"] for r in new_rows], self.weights_sha256, self.protocol)
        for r in new_rows:
            h = stored.get(r["image_sha256"])
            if h is not None:
                r["score"] = h["score"]
                r["score_sd"] = np.nan if h["score_sd"] is None else h["score_sd"]

    def score_arrays(self, arrays: Sequence[np.ndarray], cache: ScoreCache, *, names: Sequence[str] | None = None,
                     image_sha256s: Sequence[str] | None = None, source: str = "memory", progress: bool = False,
                     on_batch: Callable[[int], None] | None = None) -> ScoreRun:
        """Score in-memory RGB images (never written to disk) through the cache.

        The in-memory counterpart of :meth:`score_items`, for images made by code (the probes):
        the same protocol, preprocessing (:func:`~discbias.scoring.images.resize_square`, colour
        statistics before resizing), grouping, ``min_side`` rule, cache and batch transactions.
        Each image's cache identity is :func:`~discbias.scoring.images.sha256_pixels` (sha256 of
        the decoded bytes); identical arrays are scored once. An image smaller than ``min_side``
        is recorded as a failure, as a small file would be.

        Parameters
        ----------
        arrays : sequence of ndarray
            ``H x W x 3`` uint8 images (a wrong dtype or shape raises ``TypeError``/``ValueError``).
        cache : ScoreCache
        names : sequence of str, optional
            Name of each image in the outputs and the cache's ``image`` column (default
            ``array-<i>``).
        image_sha256s : sequence of str, optional
            Precomputed :func:`~discbias.scoring.images.sha256_pixels` of the arrays (saves
            hashing twice; not checked).
        source : str
            Recorded as the ``source`` of new cache rows.
        progress, on_batch
            As in :meth:`score_items`.

        Returns
        -------
        ScoreRun
            ``table`` has one row per scored input, in input order (duplicates included);
            ``scored`` counts the distinct images computed now, ``from_cache`` the inputs whose
            score was already cached, ``failed`` the inputs rejected.

        Examples
        --------
        >>> import tempfile
        >>> from discbias.scoring.testing import save_random_discriminator
        >>> d = Path(tempfile.mkdtemp())
        >>> s = Scorer(save_random_discriminator(d / "D.pt", resolution=16), ScoringProtocol(), min_side=8)
        >>> imgs = [np.full((16, 16, 3), v, np.uint8) for v in (0, 128, 255, 128)]
        >>> run = s.score_arrays(imgs, ScoreCache(d / "cache"))
        >>> run.scored, run.from_cache, len(run.table)
        (3, 0, 4)
        >>> again = s.score_arrays(imgs, ScoreCache(d / "cache"))
        >>> again.scored, again.from_cache, bool((again.table["score"] == run.table["score"]).all())
        (0, 4, True)
        """
        t0 = time.perf_counter()
        p, wsha = self.protocol, self.weights_sha256
        arrays = [check_rgb8(a) for a in arrays]
        names = [f"array-{i}" for i in range(len(arrays))] if names is None else [str(n) for n in names]
        if len(names) != len(arrays):
            raise ValueError(f"{len(names)} names for {len(arrays)} arrays")
        if image_sha256s is None:
            shas = [sha256_pixels(a) for a in arrays]
        else:
            shas = list(image_sha256s)
            if len(shas) != len(arrays):
                raise ValueError(f"{len(shas)} image_sha256s for {len(arrays)} arrays")
        cached = cache.get_scores(shas, wsha, p)
        first: dict[str, int] = {}
        for i, sha in enumerate(shas):
            if sha not in cached:
                first.setdefault(sha, i)
        todo = list(first.values())  # one forward pass per distinct uncached image
        new: dict[str, dict] = {}
        reasons: dict[str, str] = {}
        bar = None
        if progress and todo:
            from ..progress import progress as _progress

            bar = _progress(total=len(todo), unit="img", desc=f"scoring ({p.label})")
        try:
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start:start + self.batch_size]
                ok, xs, notes, stats, fails = [], [], [], [], []
                for i in batch:
                    a = arrays[i]
                    try:
                        check_size(a, self.min_side)
                    except ImageError as exc:
                        reasons[shas[i]] = str(exc)
                        fails.append(dict(image=names[i], image_sha256=shas[i], weights_sha256=wsha, protocol=p,
                                          reason=str(exc)))
                        continue
                    st = colour_stats(a)
                    st.update(width=int(a.shape[1]), height=int(a.shape[0]))
                    x, note = resize_square(a, self.resolution, p.resize, p.filter)
                    ok.append(i), notes.append(note or ""), stats.append(dict(image_sha256=shas[i], **st))
                    xs.append(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))))
                db_rows = []
                if ok:
                    mean, sd = self.forward_uint8(torch.stack(xs))
                    nd = p.draws if p.grouping == "reference-group" else 1
                    for i, m, sdv, note in zip(ok, mean, sd, notes):
                        sdv = None if np.isnan(sdv) else float(sdv)
                        rec = dict(image=names[i], image_sha256=shas[i], weights_sha256=wsha, protocol=p,
                                   score=float(m), score_sd=sdv, n_draws=nd, conversion=note, source=source)
                        db_rows.append(rec)
                        new[shas[i]] = dict(score=float(m), score_sd=sdv, n_draws=nd, conversion=note,
                                            discbias_version=__version__)
                cache.put_batch(db_rows, fails, stats)
                if db_rows:  # report what the cache holds (another writer may have stored the key first)
                    held = cache.get_scores([r["image_sha256"] for r in db_rows], wsha, p)
                    for sha, h in held.items():
                        new[sha].update(score=h["score"], score_sd=h["score_sd"])
                if bar is not None:
                    bar.update(len(batch))
                if on_batch is not None:
                    on_batch(len(batch))
        finally:
            if bar is not None:
                bar.close()
        rows, failures, n_cached = [], [], 0
        for i, (name, sha) in enumerate(zip(names, shas)):
            it = ImageItem(name, Path(source), name)
            if sha in cached:
                h = cached[sha]
                n_cached += 1
                rows.append(self._row(it, sha, h["score"], h["score_sd"], h["n_draws"], True, h["conversion"] or "",
                                      h["discbias_version"]))
            elif sha in new:
                h = new[sha]
                rows.append(self._row(it, sha, h["score"], h["score_sd"], h["n_draws"], False, h["conversion"],
                                      h["discbias_version"]))
            else:
                failures.append(dict(image=name, image_sha256=sha, reason=reasons[sha]))
        table = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
        fail = pd.DataFrame([dict(f, image=display_name(f["image"])) for f in failures], columns=FAILURE_COLUMNS)
        return ScoreRun(table, fail, len(new), n_cached, len(fail), time.perf_counter() - t0, wsha, p)

    def _row(self, it: ImageItem, sha, score, sd, n_draws, from_cache, conversion, version) -> dict:
        p = self.protocol
        r = dict(image=display_name(it.image), image_id=display_name(it.image_id), image_sha256=sha, score=score,
                 score_sd=np.nan if sd is None else sd, n_draws=n_draws, protocol=p.input, grouping=p.grouping,
                 resize=p.resize, filter=p.filter, flip=bool(p.flip), precision=p.precision, label=p.label,
                 weights_sha256=self.weights_sha256, discbias_version=version, from_cache=from_cache,
                 conversion=conversion, condition=p.condition)
        r.update(it.meta)
        return r


def score_arrays(arrays: Sequence[np.ndarray], weights, protocol: ScoringProtocol | None = None, *,
                 cache: ScoreCache | str | None = None, names: Sequence[str] | None = None, progress: bool = False,
                 **kwargs) -> ScoreRun:
    """Convenience wrapper: score in-memory images with ``weights`` into ``cache``.

    ``kwargs`` go to :class:`Scorer` (``device``, ``batch_size``, ``min_side``...). To score many
    sets with one network, build a :class:`Scorer` once and call :meth:`Scorer.score_arrays`.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.scoring.testing import save_random_discriminator
    >>> d = Path(tempfile.mkdtemp())
    >>> w = save_random_discriminator(d / "D.pt", resolution=16)
    >>> imgs = [np.full((16, 16, 3), v, np.uint8) for v in (10, 200)]
    >>> run = score_arrays(imgs, w, ScoringProtocol(input="grissom2024"), cache=d / "cache", min_side=8)
    >>> run.table["label"].tolist()
    ['grissom2024/single/stretch-lanczos', 'grissom2024/single/stretch-lanczos']
    """
    if not isinstance(cache, ScoreCache):
        cache = ScoreCache(cache)
    return Scorer(weights, protocol, **kwargs).score_arrays(arrays, cache, names=names, progress=progress)


def score_folder(source, weights, protocol: ScoringProtocol | None = None, *, cache: ScoreCache | str | None = None,
                 shard: tuple[int, int] | None = None, progress: bool = False, **kwargs) -> ScoreRun:
    """Convenience wrapper: discover ``source``, score it with ``weights`` into ``cache``.

    Examples
    --------
    See :class:`Scorer`.
    """
    from .sources import shard as _shard

    items = discover(source)
    if shard is not None:
        items = _shard(items, *shard)
    if not isinstance(cache, ScoreCache):
        cache = ScoreCache(cache)
    return Scorer(weights, protocol, **kwargs).score_items(items, cache, progress=progress)


def group_by_label(items, label_column: str, c_dim: int | None = None) -> dict[int, list]:
    """Images grouped by the integer class in their manifest column ``label_column``; a missing,
    non-integer or (with ``c_dim``) out-of-range label is a :class:`ProtocolError` naming the image.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> g = group_by_label([NS(image="a", meta={"c": 1}), NS(image="b", meta={"c": "0"})], "c", 2)
    >>> {k: [it.image for it in v] for k, v in g.items()}
    {1: ['a'], 0: ['b']}
    """
    groups: dict[int, list] = {}
    for it in items:
        if label_column not in it.meta:
            raise ProtocolError(f"image {it.image}: no column {label_column!r} in the manifest (columns: "
                                f"{', '.join(sorted(it.meta)) or 'none besides image'}); fix label_column")
        v = it.meta[label_column]
        classes = f" (0..{c_dim - 1})" if c_dim else ""
        try:
            k = int(v)
            if float(v) != k:
                raise ValueError
        except (TypeError, ValueError):
            raise ProtocolError(f"image {it.image}: label {v!r} in column {label_column!r} is not an integer "
                                f"class{classes}") from None
        if c_dim and not 0 <= k < c_dim:
            raise ProtocolError(f"image {it.image}: label {k} in column {label_column!r} is out of range for "
                                f"c_dim={c_dim} (classes 0..{c_dim - 1})")
        groups.setdefault(k, []).append(it)
    return groups


def score_by_label(scorer: Scorer, items: Sequence[ImageItem], cache: ScoreCache, label_column: str, *,
                   progress: bool = False) -> ScoreRun:
    """Score a class-conditional network with each image's own class, read from a manifest column.

    Items are grouped by their label and each group is scored with ``condition="class:K"`` (so
    the cache key holds the class). The table's ``condition`` column says ``class:K`` per image.

    Parameters
    ----------
    scorer : Scorer
        A scorer of a conditional network (any ``condition``; it is replaced per group).
    items : sequence of ImageItem
        From a manifest with the column ``label_column`` (integers ``0..c_dim-1``).
    cache : ScoreCache
    label_column : str
    progress : bool

    Raises
    ------
    ProtocolError
        The network is unconditional, the column is absent, or a label is not an integer class
        of the network (naming the image and the value).

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> from discbias.nets import Discriminator, save_discriminator
    >>> d = Path(tempfile.mkdtemp())
    >>> torch.manual_seed(0) and None
    >>> save_discriminator(Discriminator(3, 16, 3, channel_base=128, channel_max=16), d / "D.pt")
    >>> for k in range(4): Image.new("RGB", (16, 16), (60 * k, 20, 90)).save(d / f"{k}.png")
    >>> _ = pd.DataFrame({"image": [f"{k}.png" for k in range(4)], "cls": [0, 2, 2, 1]}).to_csv(d / "m.csv", index=False)
    >>> s = Scorer(d / "D.pt", ScoringProtocol(condition="average"), min_side=8)
    >>> run = score_by_label(s, discover(d / "m.csv"), ScoreCache(d / "cache"), "cls")
    >>> run.table["condition"].tolist()
    ['class:0', 'class:2', 'class:2', 'class:1']
    """
    if not scorer.c_dim:
        raise ProtocolError(f"label column {label_column!r} given, but the discriminator is unconditional (c_dim=0); "
                            f"drop the label column")
    t0 = time.perf_counter()
    groups = group_by_label(items, label_column, scorer.c_dim)
    runs = [scorer.with_condition(f"class:{k}").score_items(g, cache, progress=progress) for k, g in sorted(groups.items())]
    order = {it.image: i for i, it in enumerate(items)}
    table = pd.concat([r.table for r in runs], ignore_index=True) if runs else pd.DataFrame(columns=OUTPUT_COLUMNS)
    fails = pd.concat([r.failures for r in runs], ignore_index=True) if runs else pd.DataFrame(columns=FAILURE_COLUMNS)
    if len(table):
        table = table.assign(_o=table["image"].map(order)).sort_values("_o", kind="stable").drop(columns="_o")
        table = table.reset_index(drop=True)
    return ScoreRun(table, fails, sum(r.scored for r in runs), sum(r.from_cache for r in runs),
                    sum(r.failed for r in runs), time.perf_counter() - t0, scorer.weights_sha256,
                    scorer.protocol.with_(condition=f"label:{label_column}"))
