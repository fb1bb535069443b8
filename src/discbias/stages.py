"""The replication's steps on the engine: contexts, table names and step factories.

An analysis module declares its steps with :func:`measure_step` and :func:`fit_step` (see
``steps(config, paths)`` in each module of :mod:`discbias.analyses`), and its figure module in
:mod:`discbias.report.figures` its figure step with :func:`figure_step`: the tables each reads
and writes and the claims it makes. The factories wrap the modules' functions, which keep their
signatures: ``measure(ctx: MeasureContext) -> (tables, issues)``,
``fit(ctx: FitContext)`` and ``figures(ctx: FigureContext)``. The contexts hold only the
declared tables: reading or testing for an undeclared one is a
:class:`~discbias.engine.StepError` naming the step and the table, and every table a step adds
must be declared.

Table names in the store (:func:`study_store`):

* ``measures/<name>``: ``build/measures/<name>.parquet``;
* ``values``: ``build/values.json``;
* anything else (``results/<name>``, ``released/...``, ``issues/<step>``, ``values/<section>``,
  ``fitinfo/<step>``, ``figures/<step>``, ``inputs/...``): ``build/engine/store/<name>.parquet``
  (exact, :mod:`discbias.frames`) or ``.json``.

The published tables ``build/results/<name>.csv`` are written from the ``results/<name>`` tables
by one final step (``publish:results`` in :mod:`discbias.pipeline`), which records the files it
wrote, so a deleted or edited CSV is written again.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import pandas as pd

from .config import StudyConfig
from .engine import Engine, Step, StepContext, StepError, TableStore, code_version
from .paths import ProjectPaths

#: External inputs put in the store by the stage runner before a run.
CONFIG_INPUT = "inputs/config"
RAW_INPUT = "inputs/raw"
#: Measure options (``--on-invalid``): measure steps read them.
OPTIONS_INPUT = "inputs/measure_options"
#: The one column of a *removed* table: one an analysis could not make because an input file has no
#: usable rows (a data issue). Steps that need it are not run; they record the reason instead.
REMOVED_COLUMN = "_discbias_removed"


def removed_table(reason: str) -> pd.DataFrame:
    """The table that stands for one a step could not make, holding the reason.

    Examples
    --------
    >>> removed_reason(removed_table("x.csv has a header but no data rows"))
    'x.csv has a header but no data rows'
    >>> removed_reason(pd.DataFrame({"a": [1]})) is None
    True
    """
    return pd.DataFrame({REMOVED_COLUMN: [str(reason)]})


def removed_reason(df) -> str | None:
    """The reason a table was removed (:func:`removed_table`), or ``None`` for an ordinary table."""
    if isinstance(df, pd.DataFrame) and list(df.columns) == [REMOVED_COLUMN] and len(df) == 1:
        return str(df[REMOVED_COLUMN].iloc[0])
    return None


def removed_section(reason: str) -> dict:
    """The ``values.json`` section of an analysis that was removed (what the paper reads).

    Examples
    --------
    >>> removed_section("x.csv has a header but no data rows")["available"]
    False
    """
    return dict(available=False, removed=str(reason))


def _log():
    import logging

    return logging.getLogger("discbias.stages")


def study_layout(paths: ProjectPaths) -> Callable[[str, str], str]:
    """The store layout of a study's build (relative to ``paths.build``): the same for every study."""
    store = paths.store.relative_to(paths.build)

    def layout(name: str, kind: str) -> str:
        if kind == "table" and name.startswith("measures/"):
            return f"{name}.parquet"
        if kind == "value" and name == "values":
            return "values.json"
        return f"{store}/{name}.parquet" if kind == "table" else f"{store}/{name}.json"

    return layout


def study_store(paths: ProjectPaths) -> TableStore:
    """A study's :class:`~discbias.engine.TableStore` (rooted at its build folder).

    Examples
    --------
    >>> from discbias.paths import ProjectPaths
    >>> s = study_store(ProjectPaths(Path("/tmp/p")))
    >>> [s.path(n, k).relative_to("/tmp/p").as_posix() for n, k in
    ...  [("measures/a", "table"), ("results/b", "table"), ("values", "value"), ("issues/x", "table")]]
    ['build/measures/a.parquet', 'build/engine/store/results/b.parquet', 'build/values.json', 'build/engine/store/issues/x.parquet']
    """
    return TableStore(paths.build, layout=study_layout(paths))


# --------------------------------------------------------------------------------------------
# strict views of the store
# --------------------------------------------------------------------------------------------


class TableView(MutableMapping):
    """A dict of tables that only knows a step's declared tables.

    Keys are short names (``"ffhq_scores"``); ``prefix`` maps them to store names. Reading or
    testing an undeclared key raises :class:`~discbias.engine.StepError`; a declared key not in the
    store behaves as absent (``in`` is False, ``[]`` raises KeyError). Assigned tables are kept
    (``new``) for the factory to write.
    """

    def __init__(self, step: StepContext, prefix: str, readable: Iterable[str], writable: Iterable[str] = ()):
        self._ctx = step
        self._prefix = prefix
        self._readable = list(readable)
        self._writable = set(writable)
        self._cache: dict[str, pd.DataFrame] = {}
        self.new: dict[str, pd.DataFrame] = {}

    def _declared(self, key: str) -> None:
        if key not in self._readable and key not in self._writable and key not in self.new:
            raise StepError(f"step '{self._ctx.step.name}' used {self._prefix}{key}, which it does not declare; "
                            f"add it to the step's reads (or writes) in its analysis module")

    def _load(self, key: str) -> pd.DataFrame | None:
        if key not in self._cache:
            exists = key in self._readable and self._ctx.store.exists(self._prefix + key)
            self._cache[key] = self._ctx.read(self._prefix + key) if exists else None
        return self._cache[key]

    def removed(self, key: str) -> str | None:
        """Why ``key`` was removed (an input file without usable rows), or ``None``."""
        self._declared(key)
        return None if key in self.new else removed_reason(self._load(key))

    def __contains__(self, key) -> bool:
        self._declared(key)
        if key in self.new:
            return True
        df = self._load(key)
        return df is not None and removed_reason(df) is None  # a removed table is absent

    def __getitem__(self, key: str) -> pd.DataFrame:
        self._declared(key)
        if key in self.new:
            return self.new[key]
        df = self._load(key)
        if df is not None and removed_reason(df) is None:
            return df
        raise KeyError(key)

    def __setitem__(self, key: str, df: pd.DataFrame) -> None:
        if key not in self._writable:
            raise StepError(f"step '{self._ctx.step.name}' wrote {self._prefix}{key}, which it does not declare; "
                            "add it to the step's writes in its analysis module")
        self.new[key] = df

    def __delitem__(self, key: str) -> None:
        self.new.pop(key)

    def __iter__(self) -> Iterator[str]:
        seen = [k for k in self._readable if k in self]
        return iter(dict.fromkeys(seen + list(self.new)))

    def __len__(self) -> int:
        return sum(1 for _ in self)


# --------------------------------------------------------------------------------------------
# contexts (what the analyses' functions receive)
# --------------------------------------------------------------------------------------------


@dataclass
class MeasureContext:
    """What a measure builder receives: configuration, paths, the invalid-value policy, and the
    run's extras (``extra``: e.g. ``progress``, ``log``, ``cache_dir``, as given to :meth:`Engine.run`)."""

    config: StudyConfig
    paths: ProjectPaths
    on_invalid: str = "report"
    extra: dict = field(default_factory=dict)

    def raw(self, role: str) -> Path:
        """Path in ``data/raw`` of the source a role points at."""
        return self.paths.raw / self.config.role(role).file

    def expected_rows(self, role: str) -> int | None:
        return self.config.role(role).rows


@dataclass
class FitContext:
    """What an analysis's ``fit(ctx)`` receives and fills.

    Attributes
    ----------
    measures : mapping of str to DataFrame
        The measures tables the step declares (by name).
    results : mapping of str to DataFrame
        Result tables the step declares reading, and those it adds (written to
        ``build/results/<name>.csv``).
    values : dict
        Nested scalars for ``build/values.json``; each analysis writes under its own key.
    models : list of dict
        One entry per fitted model (id, description, formula, n_obs, converged, warnings).
    """

    config: StudyConfig
    paths: ProjectPaths
    measures: Any
    results: Any = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    models: list[dict] = field(default_factory=list)

    def add_model(self, model: str, description: str, formula: str, tidy: pd.DataFrame | None = None, **extra) -> None:
        """Record a model in ``build/results/models.csv`` (n, convergence and warnings from ``tidy``)."""
        row = dict(model=model, description=description, formula=formula)
        if tidy is not None and len(tidy):
            row["n_obs"] = tidy["n_obs"].dropna().max() if tidy["n_obs"].notna().any() else None
            row["converged"] = bool(tidy["converged"].fillna(False).astype(bool).all())
            ws = sorted({w for ws in tidy["warnings"].fillna("") for w in str(ws).split("; ") if w})
            row["warnings"] = "; ".join(ws)
            row["method"] = tidy["method"].iloc[0]
        row.update(extra)
        self.models.append(row)


@dataclass
class FigureContext:
    """What a figure module's ``figures(ctx)`` receives (:mod:`discbias.report.figures`): results, measures, values and writers."""

    config: StudyConfig
    paths: ProjectPaths
    measures: Any
    results: Any
    values: dict
    saved: list[str] = field(default_factory=list)

    def save_figure(self, fig, name: str) -> Path:
        """Save a figure as ``build/figures/<name>.svg`` (HTML and Typst), ``.pdf`` and ``.png``; close it.

        The figure is first made printable (:func:`discbias.report.style.fit_to_print`: at most
        the text width, fonts >= 7 pt); scatters of many points are rasterized inside the vector
        files. It is saved at its own size (no tight bounding box), which is its printed size.
        """
        import matplotlib.pyplot as plt
        from matplotlib.collections import Collection

        from .report.style import fit_to_print

        fit_to_print(fig)
        for c in fig.findobj(Collection):
            if len(c.get_offsets()) > 3000:
                c.set_rasterized(True)
        from .safeio import safe_name

        self.paths.figures.mkdir(parents=True, exist_ok=True)
        stem = safe_name(name)  # names may come from data (a group column): one file name inside figures/
        out = self.paths.figures / f"{stem}.svg"
        for ext in ("svg", "pdf", "png"):
            fig.savefig(self.paths.figures / f"{stem}.{ext}", dpi=300 if ext != "png" else 200,
                        metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)
        self.saved.append(f"figure:{name}")
        return out

    def save_table(self, df, name: str, *, digits: dict[str, int] | int = 2,
                   rename: dict[str, str] | None = None, **table):
        """Write a publication table to ``build/tables/<name>.{csv,tex,typ,html,md}``.

        ``df`` is a frame or a ready :class:`~discbias.report.tables.PubTable`. Keywords
        ``caption``, ``label``, ``notes``, ``columns`` (list of :class:`~discbias.report.tables.Col`),
        ``spanners`` and ``landscape`` go to ``PubTable``; the CSV is unrounded.
        """
        from .report.tables import PubTable, write_publication_table

        self.saved.append(f"table:{name}")
        if isinstance(df, PubTable):
            df.write(self.paths.tables, name)
            return df
        return write_publication_table(df, self.paths.tables, name, digits=digits, rename=rename, **table)

    def label(self, id_: str) -> str:
        """The readable label of an id (the study's ``[labels]`` over the package defaults)."""
        from .report.labels import label

        return label(id_)


# --------------------------------------------------------------------------------------------
# step factories
# --------------------------------------------------------------------------------------------


def _short(fn: Callable) -> str:
    return getattr(fn, "__module__", "").rsplit(".", 1)[-1]


def measure_step(name: str, fn: Callable, *, writes: Sequence[str] = (), optional_writes: Sequence[str] = (),
                 rename: dict[str, str] | None = None, reads: Sequence[str] = (), optional_reads: Sequence[str] = (),
                 claims: Sequence = (), params: dict | None = None,
                 external: Sequence[str] = (CONFIG_INPUT, RAW_INPUT, OPTIONS_INPUT)) -> Step:
    """A measure step around ``fn(ctx: MeasureContext) -> (tables, issues)``.

    ``writes`` / ``optional_writes`` are the short names of the tables ``fn`` returns (written to
    ``measures/<name>``, or to ``rename[name]`` when given, e.g. ``released/ffhq_scores`` for a
    table another step turns into ``measures/ffhq_scores``; a dict is written as a JSON value);
    its issues go to ``issues/<step>``. ``reads`` are store names, besides the ``external`` inputs
    (by default the configuration stamp, the raw files' hashes and the measure options: a study
    whose steps depend on configuration sections and files only declares those in ``params`` and
    passes ``external=()``); ``fn`` receives them as a second argument (a dict by store name).
    """
    rename = dict(rename or {})

    def target(t: str) -> str:
        return rename.get(t, f"measures/{t}")

    issues = f"issues/{name}"

    def run(ctx: StepContext) -> None:
        from .studies.validation import ISSUE_COLUMNS, EmptyInputError

        def remove(reason: str, found: pd.DataFrame) -> None:
            # the step's tables stand removed (the steps that need them record the reason); the rest goes on
            for t in [*writes, *optional_writes]:
                ctx.write(target(t), removed_table(reason))
            ctx.write(issues, found)
            _log().warning("measure %s: removed (%s); the analyses that need its tables are not run", name, reason)

        mctx = MeasureContext(ctx.config, ctx.paths, ctx.extra.get("on_invalid", "report"), ctx.extra)
        lost: list[str] = []
        try:
            if reads or optional_reads:
                inputs = {t: ctx.read(t) for t in reads}
                gone = [r for r in map(removed_reason, inputs.values()) if r]
                if gone:
                    remove(gone[0], pd.DataFrame(columns=ISSUE_COLUMNS))
                    return
                optional = {t: ctx.read(t) for t in optional_reads if ctx.has(t)}
                lost = sorted({r for r in map(removed_reason, optional.values()) if r})
                inputs.update({t: df for t, df in optional.items() if removed_reason(df) is None})
                tables, found = fn(mctx, inputs)
            else:
                tables, found = fn(mctx)
        except EmptyInputError as exc:  # a header-only (or all-invalid) file: a data issue, not a crash
            made = ", ".join(target(t) for t in [*writes, *optional_writes])
            remove(f"{exc.file} has no usable data rows ({exc.problem})", pd.DataFrame([dict(
                file=exc.file, line=exc.line, column="", value="", problem=exc.problem,
                action=f"analyses needing it removed (step {name}: {made})")], columns=ISSUE_COLUMNS))
            return
        for t, df in tables.items():
            if t not in writes and t not in optional_writes:
                raise StepError(f"step '{name}' made table '{t}', which it does not declare; add it to its writes")
        found = found if found is not None and len(found.columns) else pd.DataFrame(columns=ISSUE_COLUMNS)
        # every row invalid (e.g. no valid score in the file): as a header-only file, a data issue
        dead = [t for t in writes if isinstance(tables.get(t), pd.DataFrame) and len(tables[t]) and "valid" in tables[t]
                and not tables[t]["valid"].fillna(False).astype(bool).any()]
        if dead:
            files = sorted({str(f) for f in found.get("file", pd.Series(dtype=object)).dropna()}) or [dead[0]]
            reason = f"{', '.join(files)} has no usable data rows (every row of {len(tables[dead[0]])} is invalid)"
            made = ", ".join(target(t) for t in [*writes, *optional_writes])
            remove(reason, pd.concat([found, pd.DataFrame([dict(
                file=files[0], line=2, column="", value="", problem="every data row is invalid",
                action=f"analyses needing it removed (step {name}: {made})")], columns=ISSUE_COLUMNS)],
                ignore_index=True))
            return
        for t, df in tables.items():
            (ctx.write if isinstance(df, pd.DataFrame) else ctx.write_value)(target(t), df)
        if lost:  # a table it did not make may be one it would have made from a removed input: removed too
            for t in optional_writes:
                if t not in tables:
                    ctx.write(target(t), removed_table(lost[0]))

        ctx.write(issues, found)

    return Step(name, run, reads=(*external, *reads), optional_reads=tuple(optional_reads),
                writes=(*[target(t) for t in writes], issues), optional_writes=[target(t) for t in optional_writes],
                claims=claims, version=code_version(fn), group="measure", params=params)


def fit_step(name: str, fn: Callable, *, section: str | None = None, measures: Sequence[str] = (),
             optional_measures: Sequence[str] = (), results: Sequence[str] = (), optional_results: Sequence[str] = (),
             writes: Sequence[str] = (), optional_writes: Sequence[str] = (), values: Sequence[str] = (),
             inputs: Sequence[str] = (), claims: Sequence = (), params: dict | None = None,
             external: Sequence[str] = (CONFIG_INPUT,)) -> Step:
    """A fit step around ``fn(ctx: FitContext)``.

    ``measures`` / ``results`` (and their optional forms) are the short names of the tables ``fn``
    reads; ``writes`` those it adds to ``ctx.results``; ``section`` the key it fills in
    ``ctx.values`` (default: the step's name), ``values`` other analyses' sections it reads;
    ``inputs`` other store names it depends on (e.g. :data:`RAW_INPUT` when it reads raw files);
    ``external`` as for :func:`measure_step` (by default the configuration stamp).
    Its models (each a list of ``[key, value]`` pairs, which keep the column order of
    ``models.csv``) and run time go to ``fitinfo/<step>``.
    """
    section = section or name
    info = f"fitinfo/{name}"

    def run(ctx: StepContext) -> None:
        meas = TableView(ctx, "measures/", [*measures, *optional_measures])
        res = TableView(ctx, "results/", [*results, *optional_results], writable=[*writes, *optional_writes])
        vals = {v: ctx.read_value(f"values/{v}") for v in values}
        gone = ([r for r in map(meas.removed, measures) if r] + [r for r in map(res.removed, results) if r]
                + [v["removed"] for v in vals.values() if isinstance(v, dict) and v.get("removed")])
        if gone:  # an input it needs was removed (a data issue): not run, the reason recorded
            for t in writes:
                ctx.write(f"results/{t}", removed_table(gone[0]))
            ctx.write_value(f"values/{section}", removed_section(gone[0]))
            ctx.write_value(info, dict(models=[], seconds=0.0, module=_short(fn), removed=gone[0]))
            _log().warning("fit %s: not run: %s", name, gone[0])
            return
        fctx = FitContext(ctx.config, ctx.paths, meas, res, vals)
        t0 = time.perf_counter()
        fn(fctx)
        secs = time.perf_counter() - t0
        partial = sorted({r for r in [*map(meas.removed, optional_measures), *map(res.removed, optional_results)] if r})
        if partial and isinstance(fctx.values.get(section), dict):  # it ran without an input that was removed
            fctx.values[section]["removed_inputs"] = partial
            _log().warning("fit %s: ran without removed input(s): %s", name, "; ".join(partial))
        for t, df in res.new.items():
            ctx.write(f"results/{t}", df)
        extra = set(fctx.values) - set(values) - {section}
        if extra:
            raise StepError(f"step '{name}' wrote values.json sections {sorted(extra)}; it declares only '{section}'")
        if section not in fctx.values:
            raise StepError(f"step '{name}' did not write its values.json section '{section}'")
        ctx.write_value(f"values/{section}", fctx.values[section])
        ctx.write_value(info, dict(models=[list(m.items()) for m in fctx.models], seconds=secs, module=_short(fn)))

    return Step(name, run, reads=(*external, *inputs, *[f"measures/{t}" for t in measures], *[f"results/{t}" for t in results],
                                  *[f"values/{v}" for v in values]),
                optional_reads=[*[f"measures/{t}" for t in optional_measures], *[f"results/{t}" for t in optional_results]],
                writes=(*[f"results/{t}" for t in writes], f"values/{section}", info), optional_writes=[f"results/{t}" for t in optional_writes],
                claims=claims, version=code_version(fn), group="fit", params=params)


def figure_step(name: str, fn: Callable, *, measures: Sequence[str] = (), optional_measures: Sequence[str] = (),
                results: Sequence[str] = (), optional_results: Sequence[str] = (), params: dict | None = None,
                external: Sequence[str] = (CONFIG_INPUT,)) -> Step:
    """A figures step around ``fn(ctx: FigureContext)`` (reads ``values``, the declared tables and
    the ``external`` inputs, as for :func:`measure_step`).

    Its outputs are files in ``build/figures`` and ``build/tables``; the step records their names
    in ``figures/<step>``.
    """
    def run(ctx: StepContext) -> None:
        meas = TableView(ctx, "measures/", [*measures, *optional_measures])
        res = TableView(ctx, "results/", [*results, *optional_results])
        gone = [r for r in map(meas.removed, measures) if r] + [r for r in map(res.removed, results) if r]
        if gone:  # its analysis was removed (a data issue): no figures, the reason recorded
            ctx.write_value(f"figures/{name}", dict(saved=[], files={}, removed=gone[0]))
            return
        fctx = FigureContext(ctx.config, ctx.paths, meas, res, ctx.read_value("values"))
        fn(fctx)
        # what a reader needs to trace each figure and table back (the paper's provenance appendix)
        reads = [f"results/{t}.csv" for t in results] + [f"results/{t}.csv" for t in optional_results
                                                          if ctx.has(f"results/{t}")] + ["values.json"]
        ctx.write_value(f"figures/{name}", dict(saved=fctx.saved, files=record_saved(ctx, fctx),
                                                provenance=dict(step=name, code=code_file(fn), reads=reads)))

    return Step(name, run, reads=(*external, "values", *[f"measures/{t}" for t in measures], *[f"results/{t}" for t in results]),
                optional_reads=[*[f"measures/{t}" for t in optional_measures], *[f"results/{t}" for t in optional_results]],
                writes=[f"figures/{name}"], version=code_version(fn), group="figures", params=params)


def code_file(fn: Callable) -> str:
    """The source file of ``fn`` as a reader finds it in the repository (``src/discbias/...``), or
    its module name when it does not live in the package.

    Examples
    --------
    >>> code_file(code_file)
    'src/discbias/stages.py'
    """
    import inspect

    try:
        src = Path(inspect.getsourcefile(fn) or "").resolve()
        return "src/" + src.relative_to(Path(__file__).resolve().parents[1]).as_posix()
    except (TypeError, ValueError):
        return getattr(fn, "__module__", "") or "?"


def record_saved(ctx: StepContext, fctx: FigureContext) -> dict[str, str]:
    """Record the files a figure step saved (each figure's SVG, PDF and PNG; each table's CSV, TeX,
    Typst, HTML and Markdown) in its manifest, so the engine reruns the step when one is missing or
    edited; return their sha256 by name (the step's record, so the paper reruns when one changed)."""
    from .fetch import sha256_file

    out = {}
    for item in fctx.saved:
        kind, _, stem = item.partition(":")
        folder = fctx.paths.figures if kind == "figure" else fctx.paths.tables
        for f in sorted(folder.glob(f"{stem}.*")):
            if f.is_file() and f.stem == stem:
                ctx.wrote_file(f)
                out[f"{folder.name}/{f.name}"] = sha256_file(f)
    return out


def files_stamp(*paths: str | Path | None) -> str:
    """A cheap stamp of files and folders outside the store (names, sizes, modification times).

    Steps that read such files (image folders, weights, reference files) put it in their
    ``params``, so a changed file reruns them. Absent paths stamp as absent.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> a = files_stamp(d); (d / "x.png").write_bytes(b"1"); a == files_stamp(d)
    1
    False
    """
    import hashlib

    h = hashlib.sha256()
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        items = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in items:
            try:
                st = f.stat()
            except FileNotFoundError:
                h.update(f"{f}\0absent\n".encode())
                continue
            if f.is_file():
                h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# one study, one sequence of steps (the replication, an audit, the probes demo)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyDefinition:
    """What a study kind supplies; :func:`build_steps` makes its steps, in one sequence for every study.

    ``analyses(config)``: modules (or objects) with ``steps(config, paths)`` made with the
    factories above (measure, fit and figure steps; a figure module is one more such object).
    ``values(config, fit_steps) -> (run, reads, writes, params)``: the ``fit:values`` step.
    ``render(config, paths) -> (run, reads, params)``: the ``render`` step. ``fetch``: the
    ``fetch`` step's run callable, if the study fetches sources. ``external``: store inputs put
    before a run. ``shared``: the shared steps it has (``data_issues``, ``provenance``,
    ``claims``, ``common_figures``); ``publish:results``, ``fit:values`` and ``render`` every
    study has. See ``docs/engine.md``.
    """

    name: str
    analyses: Callable
    values: Callable
    render: Callable
    fetch: Callable | None = None
    external: tuple = (CONFIG_INPUT, RAW_INPUT, OPTIONS_INPUT)
    shared: frozenset = frozenset({"data_issues", "provenance", "claims", "common_figures"})


def _issues_step(names: list[str]):
    def run(ctx: StepContext) -> None:
        from .studies.validation import ISSUE_COLUMNS

        parts = [pd.DataFrame(columns=ISSUE_COLUMNS)] + [ctx.read(n) for n in names]
        ctx.write("results/data_issues", pd.concat(parts, ignore_index=True))

    return run


def _provenance_step(ctx: StepContext) -> None:
    hashes = ctx.read_value(RAW_INPUT)
    rows = [dict(source=src.name, file=src.file, url=src.url, sha256_expected=src.sha256, sha256=hashes.get(src.name),
                 rows_expected=src.rows, description=src.description) for src in ctx.config.sources.values()]
    ctx.write("results/provenance", pd.DataFrame(rows))


def _claims_step(claims: list, tables: list[str]):
    def run(ctx: StepContext) -> None:
        from .claims import configure_claims, evaluate_claims

        results = {t: df for t in tables if ctx.has(f"results/{t}") for df in [ctx.read(f"results/{t}")]
                   if removed_reason(df) is None}
        raw = getattr(ctx.config, "raw", None) or {}
        configured = configure_claims(claims, raw.get("claims", {}), file=str(getattr(ctx.config, "path", "")))
        table, specs = evaluate_claims(results, configured)
        ctx.write("results/claims", table)
        ctx.write("results/claims_specifications", specs)

    return run


def _common_figures_step(ctx: StepContext) -> None:
    from .report.speccurve import spec_curve_figures
    from .report.tables import common_tables

    res = {t: df for t in COMMON_RESULTS if ctx.has(f"results/{t}") for df in [ctx.read(f"results/{t}")]
           if removed_reason(df) is None}
    fctx = FigureContext(ctx.config, ctx.paths, {}, res, ctx.read_value("values"))
    common_tables(fctx)
    spec_curve_figures(fctx)
    ctx.write_value("figures/common", dict(saved=fctx.saved, files=record_saved(ctx, fctx)))


COMMON_RESULTS = ["claims", "claims_specifications", "provenance", "models", "data_issues"]


def _publish_results_step(ctx: StepContext) -> None:
    """Write ``build/results/<name>.csv`` from every ``results/<name>`` table of the store (unrounded);
    remove the CSVs of tables no step makes any more."""
    from .fetch import sha256_file
    from .results import write_table

    folder = ctx.paths.results
    published = {}
    for t in ctx.step.inputs:
        if ctx.has(t):
            df = ctx.read(t)
            if removed_reason(df) is not None:  # removed for a data issue (results/data_issues.csv says why)
                continue
            name = t.split("/", 1)[1]
            out = ctx.wrote_file(write_table(df, folder / f"{name}.csv"))
            published[name] = sha256_file(out)
    for old in folder.glob("*.csv"):
        if old.stem not in published:
            old.unlink()
    ctx.write_value("published/results", dict(tables=dict(sorted(published.items()))))


def _code_commit(paths: ProjectPaths) -> dict:
    """The git commit of the code that fits (``discbias bundle`` checks it against its own)."""
    from .provenance import project_commit

    git = project_commit(paths.root)
    return dict(commit=git["commit"], dirty=git["dirty"])


def build_steps(config: StudyConfig, paths: ProjectPaths, definition: StudyDefinition) -> list[Step]:
    """Every step of a study: its analyses' steps and the steps every study shares, in one sequence
    (the engine derives the run order from the declarations).

    Examples
    --------
    >>> import tempfile
    >>> from discbias.config import load_config
    >>> from discbias.probes.demo import definition, demo_paths
    >>> e = build_engine(load_config("analysis/probes-demo.toml"), demo_paths(tempfile.mkdtemp()), definition())
    >>> e.order()
    ['probes:score', 'probes', 'fit:values', 'publish:results', 'probes:figures', 'render']
    """
    shared = definition.shared
    analyses = list(definition.analyses(config))
    analysis_steps = [s for a in analyses for s in a.steps(config, paths)]
    steps = [Step("fetch", definition.fetch, writes=["fetch/files"], group="fetch")] if definition.fetch else []
    measure = [s for s in analysis_steps if s.group == "measure"]
    steps += measure
    if "data_issues" in shared:
        issues = [t for s in measure for t in s.writes if t.startswith("issues/")]
        steps.append(Step("measure:data_issues", _issues_step(issues), reads=issues, writes=["results/data_issues"],
                          group="measure"))
    if "provenance" in shared:
        steps.append(Step("measure:provenance", _provenance_step, reads=[CONFIG_INPUT, RAW_INPUT],
                          writes=["results/provenance"], group="measure"))
    fit = [s for s in analysis_steps if s.group == "fit"]
    steps += fit
    # the fit steps in the order they run (a throwaway engine derives it): claims and values follow it
    order = Engine(steps, study_store(paths), external=definition.external).order("fit")
    by = {s.name: s for s in fit}
    fit_ordered = [by[n] for n in order]
    if "claims" in shared:
        claims = [c for s in fit_ordered for c in s.claims]
        result_tables = sorted({t.split("/", 1)[1] for s in fit for t in s.outputs if t.startswith("results/")})
        steps.append(Step("fit:claims", _claims_step(claims, result_tables), reads=[CONFIG_INPUT],
                          optional_reads=[f"results/{t}" for t in result_tables],
                          writes=["results/claims", "results/claims_specifications"], group="fit"))
    steps.append(Step("publish:results", _publish_results_step,
                      optional_reads=sorted({t for s in steps for t in s.outputs if t.startswith("results/")}
                                            | {"results/models"}),
                      writes=["published/results"], group="fit"))
    run_values, value_reads, value_writes, value_params = definition.values(config, fit_ordered)
    steps.append(Step("fit:values", run_values,
                      reads=[*value_reads,
                             *[t for s in fit_ordered for t in s.writes if t.startswith(("values/", "fitinfo/"))]],
                      writes=value_writes, group="fit",
                      # values.json records the commit that made it: a new commit (or uncommitted changes) reruns it
                      params=dict(value_params or {}, code_commit=_code_commit(paths))))
    if "common_figures" in shared:
        steps.append(Step("figures:common", _common_figures_step, reads=[CONFIG_INPUT, "values"],
                          optional_reads=[f"results/{t}" for t in COMMON_RESULTS], writes=["figures/common"],
                          group="figures"))
    steps += [s for s in analysis_steps if s.group not in ("measure", "fit")]  # figure steps
    run_render, render_reads, render_params = definition.render(config, paths)
    steps.append(Step("render", run_render, reads=[*render_reads, "values", "published/results"],
                      optional_reads=[t for s in steps for t in s.writes if t.startswith("figures/")],
                      writes=["report/render"], group="render", params=render_params))
    return steps


def build_engine(config: StudyConfig, paths: ProjectPaths, definition: StudyDefinition) -> Engine:
    """A study's :class:`~discbias.engine.Engine` (its :func:`build_steps`) on its store."""
    return Engine(build_steps(config, paths, definition), study_store(paths), external=definition.external,
                  manifests=paths.manifests)


def render_document_step(ctx, qmd) -> None:
    """Write the HTML and PDF of an already rendered ``.qmd`` (the formats in ``ctx.extra``, default
    both), record the files the step wrote, and the ``report/render`` value: the render step of a
    study whose paper is one template without the replication's render checks (the probes demo,
    the planted-bias validation)."""
    from .report.render import render_html, render_pdf

    formats = ctx.extra.get("formats", ("html", "pdf"))
    outs = [qmd]
    if "html" in formats:
        outs.append(render_html(qmd))
    if "pdf" in formats:
        outs.append(render_pdf(qmd, ctx.paths.build))
    for o in outs:
        ctx.wrote_file(o)
    ctx.write_value("report/render", dict(files=[Path(o).name for o in outs], formats=list(formats)))
