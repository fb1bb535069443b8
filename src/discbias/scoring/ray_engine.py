"""Distributed scoring on a Ray cluster (``discbias score --engine ray``; ``pip install 'discbias[ray]'``).

The pipeline is a Ray Data dataset over the images that are not yet in the cache:

1. the driver discovers the inputs and hashes them (the same file-hash memo as the local engine),
   and looks their keys up in the cache, exactly as :meth:`~discbias.scoring.scorer.Scorer.score_items`;
2. CPU tasks read, hash, decode and resize the missing images (the local engine's DataLoader
   dataset, :class:`~discbias.scoring.scorer._Files`, called in Ray tasks);
3. a pool of actors scores them; each actor loads the discriminator once into a
   :class:`~discbias.scoring.scorer.Scorer` (one actor per GPU with ``num_gpus_per_worker=1``,
   otherwise one per ``threads`` CPUs) and runs its ``forward_uint8``, so an image gets the same
   number under either engine;
4. the driver is the only writer: it commits every batch of results as it arrives, in one cache
   transaction (:meth:`~discbias.scoring.cache.ScoreCache.put_batch`).

Why one writer (the driver) rather than per-worker shard databases merged at the end: a score
is a few bytes, so the driver is never the bottleneck (tens of thousands of rows per second into
SQLite against at most hundreds of images per second per GPU); workers need no shared writable
filesystem (only read access to the images and the weights); and a batch is in the cache as soon
as it is scored, so killing the driver loses only the batches in flight, and rerunning the same
command resumes (nothing to merge, nothing duplicated: keys are the primary key). Shard
databases would lose every row of a worker killed before its merge.

The actors and tasks read the images and the weights by path: on a multi-node cluster they must
be on a filesystem every node sees at the same path (NFS, a mounted bucket...). The driver reads
every input once to hash it (rehashing only changed files on reruns).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path  # noqa: F401 (the examples use it)
from typing import Callable, Sequence

import numpy as np

from .cache import ScoreCache
from .images import DEFAULT_MIN_SIDE
from .protocols import ScoringProtocol
from .scorer import Scorer, ScoreRun, ImageFiles
from .sources import ImageItem
from ..errors import SetupError

RAY_MISSING = ("--engine ray needs the optional Ray extra: pip install 'discbias[ray]' "
               "(or pip install 'ray[data]')")


def ray_available() -> bool:
    """Whether ``ray.data`` can be imported (the ``discbias[ray]`` extra is installed).

    Examples
    --------
    >>> isinstance(ray_available(), bool)
    True
    """
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _decode_batch(batch: dict, *, resolution: int, resize: str, filter: str, min_side: int) -> dict:
    """Ray task: read, hash, decode and resize the images of each row (one row = one scoring batch).

    A row's ``job`` is the JSON list of ``[index, path]`` of one batch; the output row has the
    batch's pixels ``x`` (``[b, 3, R, R]`` uint8, zeros for failures) and ``meta``, the JSON list
    of ``{i, sha, reason, notes, stats}`` (``reason`` non-empty for a failure).
    """
    xs, metas = [], []
    for job in batch["job"]:
        job = json.loads(job)
        files = ImageFiles([path for _, path in job], resolution, resize, filter, min_side)
        x = np.zeros((len(job), 3, resolution, resolution), np.uint8)
        meta = []
        for j, (i, _) in enumerate(job):
            o = files[j]
            if o["x"] is not None:
                x[j] = o["x"].numpy()
            meta.append(dict(i=i, sha=o["sha"] or "", reason=o["reason"] or "", notes=o["notes"], stats=o["stats"]))
        xs.append(x)
        metas.append(json.dumps(meta))
    return dict(x=_stack(xs), meta=np.array(metas, dtype=object))


def _stack(xs: list[np.ndarray]) -> np.ndarray:
    if len({x.shape for x in xs}) == 1:
        return np.stack(xs)
    out = np.empty(len(xs), dtype=object)  # batches of different sizes (the last one)
    out[:] = xs
    return out


class _ScoreActor:
    """Ray actor: holds one :class:`Scorer` (the discriminator loaded once) and scores batches.

    Each input row is one whole scoring batch, so every image is scored in a forward pass of the
    same size as under the local engine (float32 results can depend on the batch size in the
    last bit, never on the other images of the batch).
    """

    def __init__(self, weights: str, protocol: ScoringProtocol, expect_key: str, *, device: str, fp32: bool,
                 reference, batch_size: int, min_side: int, threads: int | None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.scorer = Scorer(weights, protocol, device=device, fp32=fp32, reference=reference,
                             batch_size=batch_size, num_workers=0, min_side=min_side)
        if self.scorer.protocol.key() != expect_key:  # e.g. a node without the GPU the driver assumed
            raise RuntimeError(f"a scoring worker resolved the protocol to {self.scorer.protocol.settings()}, the "
                               f"driver expected {json.loads(expect_key)}; check --device / --num-gpus-per-worker")

    def __call__(self, batch: dict) -> dict:
        import torch

        out = []
        for x, meta in zip(batch["x"], batch["meta"]):
            meta = json.loads(meta)
            ok = np.array([m["reason"] == "" for m in meta], dtype=bool)
            if ok.any():
                x = np.asarray(x, dtype=np.uint8)
                mean, sd = self.scorer.forward_uint8(torch.from_numpy(np.ascontiguousarray(x[ok])))
                for m, v, s in zip([m for m, k in zip(meta, ok) if k], mean, sd):
                    m.update(score=float(v), score_sd=None if np.isnan(s) else float(s))
            out.append(json.dumps(meta))
        return dict(meta=np.array(out, dtype=object))


def _expected_protocol(probe: Scorer, *, gpu: bool, fp32: bool) -> ScoringProtocol:
    """The protocol a worker on a GPU (or CPU) will record; the driver's probe scorer runs on the CPU."""
    if not gpu:
        return probe.protocol
    fp16 = not fp32 and getattr(probe.D, "num_fp16_res", 0)
    return probe.protocol.with_(precision="fp16-blocks" if fp16 else "fp32")


def _init_ray(address: str | None):
    import ray

    if not ray.is_initialized():
        kw = dict(logging_level=logging.WARNING, log_to_driver=True)
        if address is None:
            kw["include_dashboard"] = False
        ray.init(address=address, **kw)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # our own bar below counts committed images
    return ray


class RayScorer:
    """Score images on a Ray cluster; same keys, scores, outputs and cache as :class:`~discbias.scoring.scorer.Scorer`.

    Parameters
    ----------
    weights, protocol, fp32, reference, batch_size, min_side
        As for :class:`~discbias.scoring.scorer.Scorer`.
    device : str
        ``cpu`` or ``cuda``; ``cuda`` with ``num_gpus_per_worker=0`` means one GPU per worker.
    address : str, optional
        Ray cluster address (``auto``, ``ray://host:10001``); ``None`` starts a local cluster
        unless Ray is already initialised in this process.
    num_gpus_per_worker : float
        GPUs per scoring actor (0: CPU actors, unless ``device`` is ``cuda``).
    actors : int, optional
        Number of scoring actors (default: the cluster's GPUs divided by
        ``num_gpus_per_worker``, or on CPUs the cluster's CPUs divided by ``threads``, minus
        one slot for decoding).
    threads : int, optional
        torch threads (and reserved CPUs) per CPU actor (default 1). CPU float32 scores can
        differ in the last bit with the thread count and the batch size, so use the same
        ``threads`` and ``batch_size`` as a local run you compare against.

    Examples
    --------
    >>> import tempfile, ray
    >>> from discbias.scoring import ScoreCache, ScoringProtocol, discover
    >>> from discbias.scoring.testing import make_images, save_random_discriminator
    >>> d = Path(tempfile.mkdtemp())
    >>> w = save_random_discriminator(d / "D.pt", resolution=16)
    >>> _ = make_images(d / "img", 6, size=(20, 20))
    >>> rs = RayScorer(w, ScoringProtocol(), min_side=8, batch_size=4)
    >>> rs.protocol.label
    'nvidia/single/stretch-lanczos'
    >>> _ = ray.init(num_cpus=2, include_dashboard=False)  # doctest: +SKIP
    >>> run = rs.score_items(discover(d / "img"), ScoreCache(d / "cache"), progress=False)  # doctest: +SKIP
    >>> run.scored, run.failed  # doctest: +SKIP
    (6, 0)
    """

    def __init__(self, weights, protocol: ScoringProtocol | None = None, *, device: str = "cpu", fp32: bool = False,
                 reference=None, batch_size: int = 8, min_side: int = DEFAULT_MIN_SIDE, address: str | None = None,
                 num_gpus_per_worker: float = 0, actors: int | None = None, threads: int | None = None):
        if not ray_available():
            raise SetupError(RAY_MISSING)
        self.gpu = num_gpus_per_worker > 0 or str(device).startswith("cuda")
        self.num_gpus_per_worker = num_gpus_per_worker if num_gpus_per_worker > 0 else (1 if self.gpu else 0)
        self.user_protocol = protocol or ScoringProtocol()
        self.fp32, self.reference, self.min_side = fp32, reference, int(min_side)
        self.batch_size = max(1, int(batch_size))
        self.address, self.actors, self.threads = address, actors, int(threads or 1)
        # the weights' sha256 and the protocol's reference identity, computed on the driver
        self.probe = Scorer(weights, self.user_protocol, device="cpu", fp32=fp32, reference=reference,
                            batch_size=self.batch_size, min_side=min_side)
        self.probe.protocol = _expected_protocol(self.probe, gpu=self.gpu, fp32=fp32)
        self.protocol = self.probe.protocol
        self.weights_sha256 = self.probe.weights_sha256
        self.resolution = self.probe.resolution
        del self.probe.D  # the driver never runs the network

    def score_items(self, items: Sequence[ImageItem], cache: ScoreCache, *, progress: bool = True,
                    on_batch: Callable[[int], None] | None = None, rehash: bool = False) -> ScoreRun:
        """Score every item not yet in ``cache``; return the full table (cached and new rows).

        The arguments and the result are those of
        :meth:`~discbias.scoring.scorer.Scorer.score_items`. This process (the driver) is the
        only writer of ``cache``: one transaction per scored batch, as soon as it arrives.
        """
        probe, batch_size, min_side, gpu = self.probe, self.batch_size, self.min_side, self.gpu
        fp32, reference, threads, actors = self.fp32, self.reference, self.threads, self.actors
        num_gpus_per_worker = self.num_gpus_per_worker
        t0 = time.perf_counter()
        p = probe.protocol
        items = list(items)
        rows, todo, failures = probe._plan(items, cache, rehash)
        n_cached, n_scored = len(rows), 0
        if todo:
            ray = _init_ray(self.address)
            res = ray.cluster_resources()
            if actors is None:
                if gpu:
                    actors = int(res.get("GPU", 0) // num_gpus_per_worker)
                    if actors < 1:
                        raise SetupError(f"the Ray cluster has {res.get('GPU', 0)} GPUs; --num-gpus-per-worker "
                                           f"{num_gpus_per_worker} needs at least that many (or use --device cpu)")
                else:
                    actors = max(1, int(res.get("CPU", 1) // threads) - 1)
            jobs = [json.dumps([[k, str(todo[k].path)] for k in range(a, min(a + batch_size, len(todo)))])
                    for a in range(0, len(todo), batch_size)]
            # one block per batch (up to 20,000 blocks): results stream back, and are committed, batch by batch
            ds = ray.data.from_items([dict(job=j) for j in jobs], override_num_blocks=min(len(jobs), 20_000))
            ds = ds.map_batches(_decode_batch, batch_size=1, batch_format="numpy", num_cpus=1,
                                fn_kwargs=dict(resolution=probe.resolution, resize=p.resize, filter=p.filter,
                                               min_side=min_side))
            ds = ds.map_batches(_ScoreActor, batch_size=1, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(size=int(actors)),
                                num_gpus=num_gpus_per_worker if gpu else 0, num_cpus=1 if gpu else threads,
                                fn_constructor_args=(str(probe.weights_path), self.user_protocol, p.key()),
                                fn_constructor_kwargs=dict(device="cuda" if gpu else "cpu", fp32=fp32,
                                                           reference=reference, batch_size=batch_size,
                                                           min_side=min_side, threads=None if gpu else threads))
            def scored():
                for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    for meta in b["meta"]:
                        yield json.loads(meta)

            new_rows, new_failures = probe._commit_all(cache, todo, scored(), progress=progress, on_batch=on_batch,
                                                       desc=f"scoring on Ray ({p.label})")
            rows += new_rows
            failures += new_failures
            n_scored = len(new_rows)
        return probe._result(items, rows, failures, n_scored, n_cached, t0, engine="ray",
                             actors=actors if todo else 0)
