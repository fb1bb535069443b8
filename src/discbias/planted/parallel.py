"""Run the seeds of a planted-bias step in worker processes (``[planted] workers``).

The training and audit steps (:mod:`discbias.planted.runs`, :mod:`discbias.planted.auditing`) do
the same thing for every seed of a condition, independently: :func:`map_seeds` runs one call per
seed, in ``workers`` processes of a ``spawn`` pool (torch and ``fork`` do not mix), each process
limited to ``threads`` torch and BLAS threads. Only plain data (dictionaries, paths, numbers) goes
to a worker; the step's context stays in the parent, which logs each seed as it finishes, records
the files the workers wrote (``ctx.wrote_file``) and writes the tables. Results come back in the
order of the seeds, whatever order the workers finish in, and each seed's computation is the same
function with the same thread limits in a worker as in the parent (``workers = 1``), so the
results do not depend on the number of workers (``tests/test_planted_parallel.py``).

A seed that fails does not stop the others: every seed runs to its end, then :class:`SeedError`
names the failed seeds (with the first error and its traceback from the worker) and the seeds
that finished.

Examples
--------
>>> map_seeds(pow, [(0, (2, 3)), (1, (3, 2))], workers=1, label="toy")
[8, 9]
>>> resolve_workers(0, seeds=10, threads=1) == max(1, min(10, os.cpu_count() or 1))
True
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

__all__ = ["SeedError", "map_seeds", "resolve_workers", "shutdown_pool"]

_POOL: ProcessPoolExecutor | None = None
_POOL_KEY: tuple[int, int] | None = None


class SeedError(RuntimeError):
    """One or more seeds of a step failed (the others ran to their end)."""

    def __init__(self, message: str, failed: dict[int, BaseException], finished: list[int]):
        super().__init__(message)
        self.failed = failed
        self.finished = finished


def resolve_workers(workers: int, *, seeds: int, threads: int = 1) -> int:
    """The worker processes to use: ``workers`` if positive, else (0, automatic) as many as the
    machine's CPUs allow at ``threads`` threads each; never more than the seeds.

    Examples
    --------
    >>> resolve_workers(4, seeds=3)
    3
    >>> resolve_workers(2, seeds=10)
    2
    """
    n = int(workers) if workers and workers > 0 else max(1, (os.cpu_count() or 1) // max(1, int(threads)))
    return max(1, min(n, int(seeds)))


def _init_worker(threads: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(threads))
    threadpool_limits(limits=int(threads))


def _pool(workers: int, threads: int) -> ProcessPoolExecutor:
    """A process pool kept across steps (starting a worker imports torch: seconds)."""
    global _POOL, _POOL_KEY
    if _POOL is None or _POOL_KEY != (workers, threads):
        shutdown_pool()
        _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_init_worker, initargs=(threads,))
        _POOL_KEY = (workers, threads)
    return _POOL


def shutdown_pool() -> None:
    """Stop the worker processes (they are also stopped when the program exits)."""
    global _POOL, _POOL_KEY
    if _POOL is not None:
        _POOL.shutdown(wait=True, cancel_futures=True)
    _POOL, _POOL_KEY = None, None


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    tb = str(cause) if cause is not None and type(cause).__name__ == "_RemoteTraceback" else "".join(
        traceback.format_exception(exc))
    return tb.strip()


def map_seeds(fn: Callable[..., Any], tasks: Sequence[tuple[int, tuple]], *, workers: int, threads: int = 1,
              label: str = "", on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[fn(*args) for seed, args in tasks]``, in ``workers`` processes when more than 1.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by name) taking and returning plain data.
    tasks : sequence of (seed, args)
    workers : int
        Processes (1: in this process, one seed after another).
    threads : int
        torch and BLAS threads of each worker process.
    label : str
        Names the step in errors (``planted:train:lum-1.0``).
    on_result : callable, optional
        ``on_result(seed, result)``, called in this process as each seed finishes (progress lines).

    Returns
    -------
    list
        The results in the order of ``tasks``.

    Raises
    ------
    SeedError
        After every seed ran: which seeds failed (the first one's error and traceback) and which finished.
    """
    results: dict[int, Any] = {}
    failed: dict[int, BaseException] = {}
    seeds = [s for s, _ in tasks]
    if workers <= 1 or len(tasks) <= 1:
        for i, (seed, args) in enumerate(tasks):
            try:
                results[i] = fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported below with the seed named
                failed[i] = exc
                continue
            if on_result:
                on_result(seed, results[i])
    else:
        pool = _pool(workers, threads)
        futures = {pool.submit(fn, *args): i for i, (_, args) in enumerate(tasks)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=futures.get):
                    i = futures[f]
                    try:
                        results[i] = f.result()
                    except Exception as exc:  # noqa: BLE001 - reported below with the seed named
                        failed[i] = exc
                        continue
                    if on_result:
                        on_result(seeds[i], results[i])
        except BaseException:  # interrupted (Ctrl-C) or on_result failed: start nothing more
            for f in pending:
                f.cancel()
            raise
        if any(isinstance(e, BrokenProcessPool) for e in failed.values()):
            shutdown_pool()  # a worker died (killed, out of memory): the next step starts a fresh pool
    if failed:
        first = min(failed)
        finished = [seeds[i] for i in sorted(results)]
        bad = [seeds[i] for i in sorted(failed)]
        exc = failed[first]
        hint = ("\nA worker process exited abruptly: killed, out of memory, or started from a script that runs "
                "the study without `if __name__ == \"__main__\":` (worker processes import the main script "
                "again). Set [planted] workers = 1 to run the seeds in this process."
                if isinstance(exc, BrokenProcessPool) else "")
        raise SeedError(
            f"{label}: seed{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} failed "
            f"({len(finished)} of {len(tasks)} finished: seeds {finished or 'none'}); "
            f"seed {seeds[first]}: {type(exc).__name__}: {exc}{hint}\n{_describe(exc)}",
            {seeds[i]: failed[i] for i in failed}, finished) from exc
    return [results[i] for i in range(len(tasks))]
