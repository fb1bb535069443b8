"""Analysis modules, in the order their steps are declared (the engine derives the run order).

Each module declares its steps in ``steps(config, paths) -> list[Step]`` (built with
:func:`discbias.stages.measure_step` and :func:`discbias.stages.fit_step`): the tables each
step reads and writes, and the claims the fit step makes. The engine checks that every table has
one writer, so a module never replaces another's table by name: it reads it and writes a new one
(e.g. ``rescoring:import`` reads the Study 1 adapter's ``released/ffhq_scores`` and writes
``measures/ffhq_scores``). The steps wrap the module's functions:

* ``measure(ctx: MeasureContext) -> (dict[str, DataFrame], issues DataFrame)``: tidy tables
  written to ``build/measures/<name>.parquet`` (or renamed, see ``measure_step(rename=...)``);
* ``fit(ctx: FitContext) -> None``: adds result tables to ``ctx.results``, scalars to
  ``ctx.values[<section>]`` and models to ``ctx.models``;
* ``CLAIMS``: a list of :class:`discbias.claims.Claim`.

Its figures and publication tables (``figures(ctx: FigureContext) -> None``) are in the module of
the same name in :mod:`discbias.report.figures`, apart from the fit code, so that a figure edit
never reruns the fit stage; that module declares the figure step (``steps(config, paths)``,
:func:`discbias.stages.figure_step`). A new analysis is a new module added to :data:`ANALYSES`
(and, if it has figures, one in ``report/figures/``); its report section is a new template in
``report/sections/``. ``discbias steps`` lists every step with what it reads and writes.
"""

from . import authors, ffhq_strat, models, probes, rescoring, study1, study2

ANALYSES = [study1, ffhq_strat, study2, models, rescoring, probes, authors]
