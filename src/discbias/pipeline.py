"""The pipeline's stages: fetch -> measure -> fit -> figures -> render, as groups of engine steps.

Every analysis module in :mod:`discbias.analyses` declares its measure and fit steps, and its
figure module in :mod:`discbias.report.figures` its figure steps (``steps(config, paths)``: the
tables each reads and writes and the claims it makes, see :mod:`discbias.stages`);
:func:`build_engine` adds the pipeline's own steps (fetch, data issues, provenance, claims,
values, common tables, render) and hands them to :class:`discbias.engine.Engine`, which checks
that every table has one writer, derives the order and reruns only the steps whose code or
inputs changed. Each stage (``discbias <stage>``) runs one group of steps, so each can be run
alone and ``make`` only calls the stages whose files changed.
"""

from __future__ import annotations

import logging
import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd

from . import __version__, provenance
from .config import StudyConfig, load_config, write_resolved
from .defaults import DEFAULT_CONFIG
from .errors import MissingInputError, UserError
from .fetch import ChecksumError, ContentDigestError, FetchError, MissingFileError, fetch_all, sha256_file, verify_tree
from .engine import Engine, Step, StepContext
from .paths import ProjectPaths, project_paths
from . import stages
from .stages import (CONFIG_INPUT, OPTIONS_INPUT, RAW_INPUT, FigureContext, FitContext, MeasureContext,  # noqa: F401
                     StudyDefinition, _code_commit, study_store)

log = logging.getLogger(__name__)
#: Distributions recorded even when this process did not import them (plus all that it did).
PACKAGES = provenance.ALWAYS


class StaleBuildError(UserError, RuntimeError):
    """``build/`` was made by another configuration (or an earlier version of this one)."""


class RawFileChangedError(ChecksumError):
    """A file in ``data/raw`` no longer has the configured sha256 (or content digest)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        RuntimeError.__init__(self, f"{len(problems)} raw file(s) differ from the configuration; nothing was "
                                    "measured:\n- " + "\n- ".join(problems))


def config_stamp(config: StudyConfig) -> dict:
    """What identifies a configuration's build: its path, the sha256 of its bytes and its id.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg = load_config(make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3))
    >>> sorted(config_stamp(cfg))
    ['config', 'sha256', 'study_id']
    """
    path = Path(config.path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
    return dict(config=str(path.resolve()), sha256=digest, study_id=config.id)


def read_stamp(paths: ProjectPaths) -> dict | None:
    """The stamp of the configuration the build's steps last ran with: the engine's external input
    ``inputs/config`` in the study's store (None if there is none)."""
    store = study_store(paths)
    try:
        return store.get_value(CONFIG_INPUT) if store.exists(CONFIG_INPUT) else None
    except (json.JSONDecodeError, OSError):
        return None


#: Why a step of an earlier stage is out of date because of the configuration (not of a code edit).
_CONFIG_REASONS = ("never ran", f"input {CONFIG_INPUT} changed", "declared inputs changed", "declared outputs changed")


def require_current_build(config: StudyConfig, paths: ProjectPaths, engine: Engine | None = None,
                          earlier: tuple[str, ...] = ()) -> None:
    """Raise :class:`StaleBuildError` unless ``build/`` was measured with this configuration as it is now.

    Fit, figures and render call this, so a switch of ``--config`` never reports the tables of
    the previous configuration. The record is the engine's: the configuration stamp its steps
    last ran with (:func:`read_stamp`) and, given an ``engine``, the status of the ``earlier``
    stages' steps (a step that never ran, or last ran with another configuration, stops the stage;
    one whose code changed is only logged).

    Examples
    --------
    >>> import tempfile
    >>> from discbias.paths import project_paths
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg = load_config(make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3))
    >>> require_current_build(cfg, project_paths(tempfile.mkdtemp()))
    Traceback (most recent call last):
    ...
    discbias.pipeline.StaleBuildError: ...
    """
    now, made = config_stamp(config), read_stamp(paths)
    redo = f"run `discbias measure --config {config.path}` (or `make report CONFIG={config.path}`)"
    if made != now:
        if made is None:
            raise StaleBuildError(f"{paths.build} has no record of a configuration its steps ran with "
                                  f"({paths.store / CONFIG_INPUT}.json is missing); {redo} first")
        if made.get("config") == now["config"]:
            raise StaleBuildError(f"{now['config']} changed since {paths.build} was measured with it; {redo} again")
        raise StaleBuildError(f"{paths.build} was made with {made.get('config')} (study '{made.get('study_id')}'), "
                              f"not {now['config']}; {redo}")
    if engine is None or not earlier:
        return
    stale = engine.status(list(earlier)).dropna(subset=["reason"])
    for st, config_reason in ((stale[stale["reason"].isin(_CONFIG_REASONS)], True),
                              (stale[~stale["reason"].isin(_CONFIG_REASONS)], False)):
        if not len(st):
            continue
        msg = (f"{len(st)} step(s) of an earlier stage are out of date ("
               + "; ".join(f"{r.step}: {r.reason}" for r in st.head(3).itertuples()) + (" ..." if len(st) > 3 else "")
               + f"); run `discbias {st['group'].iloc[0]} --config {config.path}` (or `make report CONFIG="
                 f"{config.path}`)")
        if config_reason:  # outputs of another configuration, or none: nothing later may report them
            raise StaleBuildError(msg + " first")
        log.info(msg + " to update them (a code change: this stage runs on their current outputs)")


def verify_raw(config: StudyConfig, paths: ProjectPaths) -> dict[str, str]:
    """Check every configured source in ``data/raw`` against the configuration; return its sha256.

    A file of kind ``"file"`` must have the configured sha256; a ``"json_tree"`` archive its
    sha256 or, failing that, the configured content digest over its member files. A file whose
    size and modification time are those the ``fetch`` step recorded in its manifest (the
    engine's record of the files it installed, see :meth:`discbias.engine.StepContext.wrote_file`)
    is not read again: its recorded sha256 is used.

    Raises
    ------
    RawFileChangedError
        Naming each differing file, the expected and the actual hash, and the fix.
    MissingFileError
        A configured file is not in ``data/raw``.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.paths import project_paths
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg_path = make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3)
    >>> cfg, paths = load_config(cfg_path), project_paths(cfg_path.parent.parent)
    >>> _ = fetch_all(cfg, paths.raw, mirror=cfg_path.parent.parent / "mirror", allow_download=False, progress=False)
    >>> len(verify_raw(cfg, paths))
    8
    """
    try:
        fetched = json.loads((paths.manifests / "fetch.json").read_text()).get("files", {})
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        fetched = {}
    hashes, problems, missing = {}, [], []
    fix = (f"Delete it and run `discbias fetch --config {config.path}` to install the configured file again, "
           f"or, if the new file is intended, correct sha256 in {config.path}")
    for src in config.sources.values():
        f = paths.raw / src.file
        if not f.exists():
            missing.append(src.file)
            continue
        st = f.stat()
        rec = fetched.get(os.path.abspath(f))
        if isinstance(rec, list) and len(rec) == 3 and rec[0] == st.st_size and rec[1] == st.st_mtime_ns:
            actual = rec[2]
        else:
            actual = sha256_file(f)
        hashes[src.name] = actual
        if actual != src.sha256:
            if src.kind != "json_tree":
                problems.append(f"{f}: sha256 {actual}, the configuration expects {src.sha256}. {fix}.")
                continue
            try:
                verify_tree(f, src, str(f))
            except (ContentDigestError, FetchError) as exc:
                problems.append(f"{f}: neither its sha256 ({actual}, expected {src.sha256}) nor its content digest "
                                f"matches ({exc}). {fix} (or content_digest).")
                continue
    if missing:
        raise MissingFileError(f"not in {paths.raw}: {', '.join(missing)}; run `discbias fetch --config {config.path}`")
    if problems:
        raise RawFileChangedError(problems)
    return hashes


def _analyses():
    from .analyses import ANALYSES

    return ANALYSES


# ---- the pipeline's own steps ----------------------------------------------------------------

def _fetch_step(ctx: StepContext) -> None:
    config, paths = ctx.config, ctx.paths
    paths.raw.mkdir(parents=True, exist_ok=True)
    got = []
    for r in fetch_all(config, paths.raw, allow_download=ctx.extra.get("allow_download", True)):
        log.info(f"fetch {r.path.name}: {r.origin}")
        got.append(dict(file=r.path.name, origin=str(r.origin)))
        if r.path.is_file():  # its size, time and sha256 in the manifest: measure's check of data/raw reads them
            ctx.wrote_file(r.path)
    for analysis in _analyses():
        if hasattr(analysis, "fetch"):
            analysis.fetch(config, paths)
    ctx.write_value("fetch/files", got)


def _build_seconds(paths: ProjectPaths) -> dict:
    """Wall seconds of the stages before the paper's values (``build/engine/timings.csv``): per
    stage, the sum over its steps of each step's time when it last ran (a step reused unchanged
    counts what it took when it was computed), for ``fetch``, ``measure`` and ``fit`` (this step
    excluded) and their ``total``."""
    from .engine import read_timings

    t = read_timings(paths.engine / "timings.csv")
    t = t[t["step"] != "fit:values"]
    out = {st: float(t.loc[t["stage"] == st, "last_ran_seconds"].fillna(0).sum()) for st in ("fetch", "measure", "fit")}
    out["total"] = float(sum(out.values()))
    return out


def _values_step(fit_steps: list[Step]):
    def run(ctx: StepContext) -> None:
        from .scoring.protocols import describe_input

        config, paths = ctx.config, ctx.paths
        values, models, timings = {}, [], {}
        for s in fit_steps:
            section = next(t for t in s.writes if t.startswith("values/"))
            values[section.split("/", 1)[1]] = ctx.read_value(section)
            info = ctx.read_value(f"fitinfo/{s.name}")
            models += [dict(pairs) for pairs in info["models"]]  # (key, value) pairs keep the column order
            timings[info["module"]] = info["seconds"]
        claims, specs = ctx.read("results/claims"), ctx.read("results/claims_specifications")
        ctx.write("results/models", pd.DataFrame(models))
        prov, issues = ctx.read("results/provenance"), ctx.read("results/data_issues")
        values["meta"] = dict(
            study_id=config.id, title=config.title, paper=config.study.get("paper", ""),
            discbias_version=__version__, software=software_versions(),
            build_date=time.strftime("%Y-%m-%d"),
            upstream=config.upstream, config=config_stamp(config), n_sources=len(prov), n_data_issues=int(len(issues)),
            released_protocol=describe_input(config.study.get("released_scores_protocol")),
            roles={role: dict(source=src.name, file=src.file, description=src.description, rows=src.rows)
                   for role, src in ((r, config.role(r)) for r in config.roles)},
            fit_seconds=timings, code_commit=_code_commit(paths), build_seconds=_build_seconds(paths),
            # analyses not run because an input had no usable rows (a data issue), with the reason
            removed=[dict(section=k, reason=v["removed"], partial=False) for k, v in values.items()
                     if isinstance(v, dict) and v.get("available") is False and v.get("removed")]
            + [dict(section=k, reason="; ".join(v["removed_inputs"]), partial=True) for k, v in values.items()
               if isinstance(v, dict) and v.get("removed_inputs")],
        )
        values["claims"] = {r["claim_id"]: r for r in claims.to_dict("records")}
        for cid, c in values["claims"].items():
            c["specifications"] = {r["specification"]: r for r in specs[specs["claim_id"] == cid].to_dict("records")}
        values["verdict_counts"] = claims["verdict"].value_counts().to_dict()
        from .claims import MC_FALSE_DIFFERS, MC_Z, REPRODUCTION_RULE, ROBUSTNESS_RULE, SELECTION_RULE, verdict_counts

        values["question_counts"] = verdict_counts(claims)
        values["claim_rules"] = dict(selection=SELECTION_RULE, robustness=ROBUSTNESS_RULE,
                                     reproduction=REPRODUCTION_RULE, mc_z=MC_Z, mc_false_differs=MC_FALSE_DIFFERS)
        ctx.write_value("values", values)

    return run


#: The render options of the last ``render`` run and a stamp of the templates (an external input of the render step).
RENDER_INPUT = "inputs/render_options"


def _render_step(ctx: StepContext) -> None:
    from .report.render import render

    opts = dict(ctx.extra.get("render", {}))
    # where each figure and table came from: the figure steps' records (the provenance appendix)
    opts["provenance"] = [ctx.read_value(n) for n in ctx.step.optional_reads
                          if n.startswith("figures/") and ctx.has(n)]
    outs = render(ctx.config, ctx.paths, **opts)
    for f in outs or ():
        if Path(f).is_file():
            ctx.wrote_file(f)
    if (ctx.paths.report / "render_checks.txt").is_file():
        ctx.wrote_file(ctx.paths.report / "render_checks.txt")
    ctx.write_value("report/render", dict(formats=list(opts.get("formats", ("html", "pdf"))),
                                          files=[Path(f).name for f in outs or ()]))


def _render_input(paths: ProjectPaths, options: dict) -> dict:
    """What the paper depends on besides the tables: the render options and a stamp of the templates
    (the project's or the given folder) and of the renderer's own non-Python files (CSS, Lua, Typst)."""
    from . import report as _report_pkg
    from .report.render import default_template_dir
    from .stages import files_stamp

    tdir = Path(options.get("template_dir") or default_template_dir())
    pkg = Path(_report_pkg.__file__).parent
    return dict(formats=list(options.get("formats", ("html", "pdf"))), template_dir=str(tdir),
                draft=bool(options.get("draft", False)), use_quarto=options.get("use_quarto"),
                no_quarto=bool(os.environ.get("DISCBIAS_NO_QUARTO")), templates=files_stamp(tdir),
                renderer=files_stamp(*[f for f in sorted(pkg.iterdir()) if f.is_file() and f.suffix != ".py"]))


def _replication_values(config, fit_steps):
    reads = [CONFIG_INPUT, "results/claims", "results/claims_specifications", "results/provenance", "results/data_issues"]
    return _values_step(fit_steps), reads, ["results/models", "values"], None


def _replication_render(config, paths):
    return _render_step, [CONFIG_INPUT, RENDER_INPUT], None


def _replication_analyses(config):
    """The analyses and, after them, their figure modules (:mod:`discbias.report.figures`)."""
    from .report.figures import figure_module

    analyses = list(_analyses())
    return analyses + [f for f in map(figure_module, analyses) if f is not None]


#: The replication (``analysis/grissom2024.toml`` and any ``[study]`` configuration).
REPLICATION = StudyDefinition("replication", _replication_analyses, _replication_values, _replication_render,
                              fetch=_fetch_step, external=(CONFIG_INPUT, RAW_INPUT, OPTIONS_INPUT, RENDER_INPUT))


def build_steps(config: StudyConfig, paths: ProjectPaths) -> list[Step]:
    """The replication's steps (:func:`discbias.stages.build_steps` of :data:`REPLICATION`).

    Examples
    --------
    >>> import tempfile
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg = load_config(make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3))
    >>> e = build_engine(cfg, project_paths(tempfile.mkdtemp()))
    >>> e.groups()
    ['fetch', 'measure', 'fit', 'figures', 'render']
    >>> e.writer("measures/ffhq_scores"), e.writer("released/ffhq_scores")
    ('rescoring:import', 'study1:adapt')
    """
    return stages.build_steps(config, paths, REPLICATION)


def build_engine(config: StudyConfig, paths: ProjectPaths) -> Engine:
    """The replication's :class:`~discbias.engine.Engine` on the project's store (``build/``)."""
    return stages.build_engine(config, paths, REPLICATION)


def analysis_claims():
    """Every claim the analyses declare (their ``CLAIMS``, which their fit steps carry), in pipeline order."""
    from .claims import collect_claims

    return collect_claims(_analyses())



def load_measures(paths: ProjectPaths) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(paths.measures.glob("*.parquet"))}


def load_results(paths: ProjectPaths) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in sorted(paths.results.glob("*.csv"))}


def software_versions() -> dict[str, str]:
    """Python and every distribution this run imported, with versions (see :mod:`discbias.provenance`)."""
    return provenance.software_versions(PACKAGES)


def _engine_for(config: StudyConfig, paths: ProjectPaths, earlier: tuple[str, ...] | None = None) -> Engine:
    """The replication's engine with the configuration's stamp in its store; with ``earlier``, the
    build must have been made with this configuration and those stages must have run with it
    (:func:`require_current_build`)."""
    if earlier is not None:
        require_current_build(config, paths)
    paths.ensure()
    engine = build_engine(config, paths)
    engine.store.set_input(CONFIG_INPUT, config_stamp(config))
    if earlier:
        require_current_build(config, paths, engine, earlier)
    return engine


def _report(ran: pd.DataFrame, stage: str) -> None:
    n = int((ran["status"] == "ran").sum())
    log.info(f"{stage}: {n} step(s) ran, {len(ran) - n} up to date")


def run_fetch(config: StudyConfig, paths: ProjectPaths, *, allow_download: bool = True) -> None:
    """Fetch every source into ``data/raw`` (mirror or download, sha256-verified): the ``fetch`` group."""
    paths.build.mkdir(parents=True, exist_ok=True)
    engine = build_engine(config, paths)
    engine.run("fetch", force=True, context=dict(config=config, paths=paths, allow_download=allow_download))


def run_measure(config: StudyConfig, paths: ProjectPaths, *, on_invalid: str | None = None,
                force: bool = False) -> dict[str, pd.DataFrame]:
    """Verify the raw files and run the ``measure`` group: adapters, scores from the score cache,
    rescoring, data issues and provenance.

    Every file in ``data/raw`` is checked against the configuration first (:func:`verify_raw`):
    a changed file stops the stage before anything is written. The configuration's stamp is the
    engine's external input ``inputs/config``: every step reads it, so after a switch of
    configuration (or an edit) every step reruns, and the later stages refuse to run until the
    earlier ones ran with it (:func:`require_current_build`). What steps of the previous
    configuration that this one lacks made (tables, figures, publication tables) is removed
    (:meth:`discbias.engine.Engine.prune`). Steps whose code and inputs are unchanged are not
    rerun (``force`` reruns them).

    Returns
    -------
    dict of str to DataFrame
        The measures tables (``build/measures``), by name.
    """
    hashes = verify_raw(config, paths)
    on_invalid = on_invalid or config.study.get("on_invalid", "report")
    engine = _engine_for(config, paths)
    for name in engine.prune():
        log.info(f"measure: removed what step '{name}' made (no step of this configuration makes it)")
    engine.store.set_input(RAW_INPUT, hashes)
    engine.store.set_input(OPTIONS_INPUT, dict(on_invalid=on_invalid))
    ran = engine.run("measure", force=force, context=dict(config=config, paths=paths, on_invalid=on_invalid),
                     log=lambda m: log.info(f"measure {m}"))
    _report(ran, "measure")
    declared = {t.split("/", 1)[1] for s in engine.steps for t in s.outputs if t.startswith("measures/")}
    for old in paths.measures.glob("*.parquet"):
        if old.stem not in declared:  # a table no step of this code makes any more
            old.unlink()
    return load_measures(paths)


def run_fit(config: StudyConfig, paths: ProjectPaths, *, force: bool = False) -> FitContext:
    """Run the ``fit`` group (each analysis's fit, the claims, ``models.csv`` and ``values.json``).

    Fit steps whose code and inputs are unchanged are not rerun (``force`` reruns them); the
    values step also reruns at a new commit (``values.json`` records the commit and date of the
    build that made it). Returns a :class:`FitContext` with every results table and the values.
    """
    if not any(paths.measures.glob("*.parquet")):
        raise MissingInputError(f"no tables in {paths.measures}; run `discbias measure` first")
    engine = _engine_for(config, paths, ("measure",))
    ran = engine.run("fit", force=force, context=dict(config=config, paths=paths),
                     log=lambda m: log.info(f"fit {m}"))
    _report(ran, "fit")
    write_resolved(config, paths.results)
    values = engine.store.get_value("values")
    results = {t.split("/", 1)[1]: engine.store.get(t) for n in engine.order("fit")
               for t in engine.step(n).outputs if t.startswith("results/") and engine.store.exists(t)}
    ctx = FitContext(config, paths, {}, results, values)
    ctx.models = results["models"].to_dict("records")
    return ctx


def run_figures(config: StudyConfig, paths: ProjectPaths) -> None:
    """Run the ``figures`` group (common tables, specification curves, each analysis's figure module
    in :mod:`discbias.report.figures`).

    A figure step reruns when its code (its module and the package modules it imports) or the
    tables and values it reads changed, or when a file it saved last time (``build/figures``,
    ``build/tables``) is missing; otherwise it is skipped, so a change to one figure's colour
    reruns that figure module only. ``DISCBIAS_ALL_FIGURES=1`` reruns every figure step.
    """
    import matplotlib

    matplotlib.use("Agg")
    from .report.labels import labels_from_config, set_labels
    from .report.style import apply_style

    require_current_build(config, paths)
    if not paths.values.exists():
        raise MissingInputError(f"{paths.values} is missing; run `discbias fit --config {config.path}` first")
    apply_style()
    set_labels(labels_from_config(config))
    engine = _engine_for(config, paths, ("measure", "fit"))
    force = os.environ.get("DISCBIAS_ALL_FIGURES") == "1"
    engine.run("figures", force=force, context=dict(config=config, paths=paths), log=lambda m: log.info(f"figures {m}"))


def run_render(config: StudyConfig, paths: ProjectPaths, *, force: bool = True, **options) -> None:
    """Run the ``render`` group: :func:`discbias.report.render.render` with ``options``
    (``formats``, ``template_dir``, ``use_quarto``, ``draft``).

    With ``force=False`` (``discbias report``) the paper is rendered only when something it
    depends on changed: ``values.json``, a published results table, a figure or publication
    table, the configuration, the templates, the renderer's code or files, the options, or a
    rendered file is missing or was edited.
    """
    engine = _engine_for(config, paths, ("measure", "fit", "figures"))
    engine.store.set_input(RENDER_INPUT, _render_input(paths, options))
    ran = engine.run("render", force=force, context=dict(config=config, paths=paths, render=options),
                     log=lambda m: log.info(f"render {m}"))
    _report(ran, "render")
    log.info(engine.timings_report())  # the last stage of `make report`: the whole build's table


def run_all(config_path: str | Path = DEFAULT_CONFIG, root=None, formats=("html", "pdf")) -> None:
    """Every stage in order (what ``make report`` runs, without make's skipping of stages)."""
    paths = project_paths(root)
    config = load_config(paths.config(config_path))
    run_fetch(config, paths)
    run_measure(config, paths)
    run_fit(config, paths)
    run_figures(config, paths)
    run_render(config, paths, force=False, formats=formats)
