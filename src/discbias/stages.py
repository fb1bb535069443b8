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
from .engine import Step, StepContext, StepError, TableStore, code_version
from .paths import ProjectPaths

#: External inputs put in the store by the stage runner before a run.
CONFIG_INPUT = "inputs/config"
RAW_INPUT = "inputs/raw"
#: Measure options (``--on-invalid``): measure steps read them.
OPTIONS_INPUT = "inputs/measure_options"


def M(name: str) -> str:
    """Store name of a measures table: ``M("ffhq_scores") == "measures/ffhq_scores"``."""
    return f"measures/{name}"


def R(name: str) -> str:
    """Store name of a results table: ``R("claims") == "results/claims"``."""
    return f"results/{name}"


def V(section: str) -> str:
    """Store name of one analysis's section of ``values.json``."""
    return f"values/{section}"


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

    def __contains__(self, key) -> bool:
        self._declared(key)
        if key in self.new:
            return True
        return key in self._readable and self._ctx.store.exists(self._prefix + key)

    def __getitem__(self, key: str) -> pd.DataFrame:
        self._declared(key)
        if key in self.new:
            return self.new[key]
        if key in self._cache:
            return self._cache[key]
        if key in self._readable and self._ctx.store.exists(self._prefix + key):
            df = self._ctx.read(self._prefix + key)
            self._cache[key] = df
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
        seen = [k for k in self._readable if self._ctx.store.exists(self._prefix + k)]
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
        return rename.get(t, M(t))

    issues = f"issues/{name}"

    def run(ctx: StepContext) -> None:
        mctx = MeasureContext(ctx.config, ctx.paths, ctx.extra.get("on_invalid", "report"), ctx.extra)
        if reads or optional_reads:
            inputs = {t: ctx.read(t) for t in reads}
            inputs.update({t: ctx.read(t) for t in optional_reads if ctx.has(t)})
            tables, found = fn(mctx, inputs)
        else:
            tables, found = fn(mctx)
        for t, df in tables.items():
            if t not in writes and t not in optional_writes:
                raise StepError(f"step '{name}' made table '{t}', which it does not declare; add it to its writes")
            (ctx.write if isinstance(df, pd.DataFrame) else ctx.write_value)(target(t), df)
        from .studies.validation import ISSUE_COLUMNS

        ctx.write(issues, found if found is not None and len(found.columns) else pd.DataFrame(columns=ISSUE_COLUMNS))

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
        vals = {v: ctx.read_value(V(v)) for v in values}
        fctx = FitContext(ctx.config, ctx.paths, meas, res, vals)
        t0 = time.perf_counter()
        fn(fctx)
        secs = time.perf_counter() - t0
        for t, df in res.new.items():
            ctx.write(R(t), df)
        extra = set(fctx.values) - set(values) - {section}
        if extra:
            raise StepError(f"step '{name}' wrote values.json sections {sorted(extra)}; it declares only '{section}'")
        if section not in fctx.values:
            raise StepError(f"step '{name}' did not write its values.json section '{section}'")
        ctx.write_value(V(section), fctx.values[section])
        ctx.write_value(info, dict(models=[list(m.items()) for m in fctx.models], seconds=secs, module=_short(fn)))

    return Step(name, run, reads=(*external, *inputs, *[M(t) for t in measures], *[R(t) for t in results],
                                  *[V(v) for v in values]),
                optional_reads=[*[M(t) for t in optional_measures], *[R(t) for t in optional_results]],
                writes=(*[R(t) for t in writes], V(section), info), optional_writes=[R(t) for t in optional_writes],
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
        fctx = FigureContext(ctx.config, ctx.paths, meas, res, ctx.read_value("values"))
        fn(fctx)
        ctx.write_value(f"figures/{name}", dict(saved=fctx.saved, files=record_saved(ctx, fctx)))

    return Step(name, run, reads=(*external, "values", *[M(t) for t in measures], *[R(t) for t in results]),
                optional_reads=[*[M(t) for t in optional_measures], *[R(t) for t in optional_results]],
                writes=[f"figures/{name}"], version=code_version(fn), group="figures", params=params)


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
