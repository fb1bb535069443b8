"""Analysis modules, in the order the pipeline runs them.

Each module may define any of:

* ``measure(ctx: MeasureContext) -> (dict[str, DataFrame], issues DataFrame)``: tidy tables
  written to ``build/measures/<name>.parquet``;
* ``fit(ctx: FitContext) -> None``: adds result tables to ``ctx.results``, scalars to
  ``ctx.values[<section>]`` and models to ``ctx.models``;
* ``CLAIMS``: a list of :class:`discbias.claims.Claim`.

Its figures and publication tables (``figures(ctx: FigureContext) -> None``) are in the module of
the same name in :mod:`discbias.report.figures`, apart from the fit code, so that a figure edit
never reruns the fit stage. A new analysis is a new module added to :data:`ANALYSES` (and,
if it has figures, one in ``report/figures/``); its report section is a new template in
``report/sections/``.
"""

from . import authors, ffhq_strat, models, probes, rescoring, study1, study2

ANALYSES = [study1, ffhq_strat, study2, models, rescoring, probes, authors]
