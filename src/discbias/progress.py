"""Progress bars (count, rate, ETA) on stderr for every long step, silent with ``--quiet``.

One utility for the whole package: :func:`progress` wraps :class:`tqdm.tqdm` with the package's
conventions, so every long loop (MCMC sampling, bootstraps, scoring, image measures, faces,
render) looks the same and obeys the same switch:

* the bar goes to **stderr** (stdout carries results only, e.g. ``--json``);
* ``discbias -q ...`` (:func:`set_quiet`, called by the command line) or the environment variable
  ``DISCBIAS_QUIET=1`` silences every bar; the variable is set by :func:`set_quiet` so worker
  processes and subprocesses started afterwards are silent too;
* a bar appears only after :data:`DELAY` seconds, so loops that finish sooner print nothing;
* when stderr is not a terminal (``make report > log``) the bar is redrawn at most every
  :data:`LOG_INTERVAL` seconds, each redraw on its own line, so a log file gets a few lines with
  count, rate and ETA rather than thousands of carriage returns.

:func:`progress` returns a tqdm object (use as ``with progress(total=n, desc=...) as bar:
bar.update(k)``, or to wrap an iterable). :func:`follow_progress` drives a bar from a function
that reports how far a background job is (NUTS sampling in nutpie's threads).

Examples
--------
>>> import io
>>> err = io.StringIO()
>>> with progress(total=3, desc="demo", unit="fit", file=err, delay=0) as bar:
...     for _ in range(3):
...         bar.update(1)
>>> "3/3" in err.getvalue()
True
>>> set_quiet(True)
>>> err = io.StringIO()
>>> with progress(total=3, desc="demo", file=err) as bar:
...     bar.update(3)
>>> err.getvalue()
''
>>> set_quiet(False)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Iterable

__all__ = ["progress", "follow_progress", "set_quiet", "is_quiet", "QUIET_ENV", "LOG_INTERVAL"]

#: Environment variable that silences every progress bar (set by ``discbias -q``).
QUIET_ENV = "DISCBIAS_QUIET"
#: Seconds between redraws when stderr is not a terminal (a log file).
LOG_INTERVAL = 10.0
#: A bar appears only once its loop has run this many seconds (short loops print nothing).
DELAY = 2.0


def set_quiet(quiet: bool = True) -> None:
    """Silence (or re-enable) every progress bar, here and in processes started afterwards."""
    if quiet:
        os.environ[QUIET_ENV] = "1"
    else:
        os.environ.pop(QUIET_ENV, None)


def is_quiet() -> bool:
    """True when progress bars are silenced (``-q`` or ``DISCBIAS_QUIET=1``)."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LineStream:
    """A log file's view of a bar: each redraw as one line (no carriage returns)."""

    def __init__(self, stream):
        self.stream = stream
        self._last = None

    def write(self, s: str) -> None:
        line = s.replace("\r", "").strip("\n")
        if line.strip() and line != self._last:  # closing redraws the last state: written once
            self.stream.write(line + "\n")
            self._last = line

    def flush(self) -> None:
        getattr(self.stream, "flush", lambda: None)()


def progress(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
             file=None, disable: bool | None = None, **kwargs):
    """A tqdm progress bar on stderr (count, rate, ETA), silent when :func:`is_quiet`.

    Parameters
    ----------
    iterable : iterable, optional
        Wrapped and iterated (as ``tqdm(iterable)``).
    total : number, optional
        Expected count (needed for an ETA when ``iterable`` has no length).
    desc, unit : str
        Label and unit (``"img"``, ``"draw"``, ``"fit"``...).
    file : stream, optional
        Where to draw (default: the current ``sys.stderr``).
    disable : bool, optional
        Force the bar off (or on); default: off when quiet.
    **kwargs
        Passed to :class:`tqdm.tqdm`.

    Returns
    -------
    tqdm.tqdm
    """
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    if disable is None:
        disable = is_quiet()
    if not _isatty(stream):
        stream = _LineStream(stream)
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs.setdefault("maxinterval", LOG_INTERVAL)
        kwargs.setdefault("ncols", 100)
    kwargs.setdefault("smoothing", 0.1)
    kwargs.setdefault("delay", DELAY)
    kwargs.setdefault("dynamic_ncols", _isatty(stream))
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, disable=disable, **kwargs)


def follow_progress(count: Callable[[], float | None], finished: Callable[[], bool], total: float, *, desc: str,
                    unit: str = "it", every: float = 1.0, file=None, **kwargs) -> None:
    """Show a bar for a job running in the background until ``finished()``; returns when it is.

    Polls in the calling thread (a job whose ``wait`` holds the GIL would starve a polling thread):
    every ``every`` seconds the bar moves to ``count()`` (how far the job is, or None if it cannot
    tell). An exception in ``count`` stops the counting, never the waiting; the bar ends at ``total``.

    Examples
    --------
    >>> import io, threading, time
    >>> err, state = io.StringIO(), {"n": 0}
    >>> def job():
    ...     for _ in range(10):
    ...         time.sleep(0.002); state["n"] += 1
    >>> t = threading.Thread(target=job); t.start()
    >>> follow_progress(lambda: state["n"], lambda: not t.is_alive(), 10, desc="job", every=0.001, file=err, delay=0)
    >>> "10/10" in err.getvalue()
    True
    """
    bar = progress(total=total, desc=desc, unit=unit, file=file, **kwargs)
    counting = not bar.disable
    try:
        while not finished():
            time.sleep(every)
            if counting:
                try:
                    n = count()
                except Exception:  # noqa: BLE001 - progress must never break the job it watches
                    counting = False
                    continue
                if n is not None and n > bar.n:
                    bar.update(n - bar.n)
        if bar.n < total:
            bar.update(total - bar.n)
    finally:
        bar.close()
