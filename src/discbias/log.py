"""Progress and diagnostics through :mod:`logging` (``discbias --verbose`` / ``--quiet``).

Every module logs to a child of the ``discbias`` logger (``logging.getLogger(__name__)``); the
command line calls :func:`setup_logging` once, which sends the records to stderr as
``[discbias] message``. Results go to stdout (``--json``); nothing else is printed there.

Examples
--------
>>> import io, logging
>>> stream = io.StringIO()
>>> _ = setup_logging(0, stream=stream)
>>> logging.getLogger("discbias.fit").info("fit study1: 1.2s")
>>> logging.getLogger("discbias.fit").debug("not shown at the default level")
>>> stream.getvalue()
'[discbias] fit study1: 1.2s\\n'
>>> _ = setup_logging(-1, stream=stream)  # --quiet: warnings and errors only
>>> logging.getLogger("discbias").level == logging.WARNING
True
>>> _ = setup_logging()  # back to stderr at the default level
"""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging", "level_for"]

_HANDLER_NAME = "discbias-cli"


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to the *current* ``sys.stderr`` (which tests and tools may swap)."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.setStream; the stream is always the current stderr
        pass


def level_for(verbosity: int) -> int:
    """The logging level for ``--verbose`` (+1 per flag) and ``--quiet`` (-1 per flag).

    Examples
    --------
    >>> [logging.getLevelName(level_for(v)) for v in (-2, -1, 0, 1)]
    ['ERROR', 'WARNING', 'INFO', 'DEBUG']
    """
    return {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(max(-2, min(verbosity, 1)), logging.DEBUG)


def setup_logging(verbosity: int = 0, *, stream=None) -> logging.Logger:
    """Send the ``discbias`` logger's records to stderr (or ``stream``) at the level of ``verbosity``.

    Calling it again replaces the handler it installed (nothing is printed twice).
    """
    logger = logging.getLogger("discbias")
    for h in list(logger.handlers):
        if h.get_name() == _HANDLER_NAME:
            logger.removeHandler(h)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("[discbias] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    logger.propagate = False
    return logger
