"""Figures and publication tables, one module per analysis, apart from the fit code.

Each module here has a ``figures(ctx: FigureContext) -> None`` that reads only what the fit stage
wrote (``ctx.results``, ``ctx.values``, ``ctx.measures``) and writes ``build/figures`` and
``build/tables``. The modules live under :mod:`discbias.report` rather than beside their analysis in
:mod:`discbias.analyses` so that editing a figure (a colour, a caption) never reruns the fit stage:
no analysis module imports them, so they are not in the fit steps' code versions.

The module for an analysis has the analysis module's short name (``analyses/study1.py`` ->
``report/figures/study1.py``); :func:`figure_module` finds it.

Examples
--------
>>> from discbias.analyses import study1, probes
>>> figure_module(study1).__name__
'discbias.report.figures.study1'
>>> [m.__name__.rsplit(".", 1)[-1] for m in FIGURES]
['study1', 'ffhq_strat', 'study2', 'models', 'rescoring', 'probes', 'authors']
"""

from __future__ import annotations

import importlib
from types import ModuleType

from . import authors, ffhq_strat, models, probes, rescoring, study1, study2

#: The figure modules, in the order of :data:`discbias.analyses.ANALYSES`.
FIGURES = [study1, ffhq_strat, study2, models, rescoring, probes, authors]


def figure_module(analysis: ModuleType) -> ModuleType | None:
    """The figure module of an analysis module (``discbias.report.figures.<short name>``), or None.

    An analysis without a module of its own name here has no figures; one whose module exists
    but lacks a ``figures`` function is an error, not a silent skip.

    Examples
    --------
    >>> import types
    >>> figure_module(types.ModuleType("discbias.analyses.not_an_analysis")) is None
    True
    """
    short = analysis.__name__.rsplit(".", 1)[-1]
    try:
        mod = importlib.import_module(f"{__name__}.{short}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{short}":
            raise
        return None
    if not callable(getattr(mod, "figures", None)):
        raise AttributeError(f"{mod.__file__} has no figures(ctx) function")
    return mod
