"""One engine of declared steps: what each step reads, writes and claims, in one place.

A :class:`Step` declares its name, the tables it reads and writes, the claims it makes, a run
callable and a code version (by default a hash of the source of the module that implements the
run callable). An :class:`Engine` checks the declarations before anything runs:

* every table has exactly one writer (two writers are an error naming both);
* every table a step reads has a writer or is declared an external input (an error names the
  table, the step that reads it and the fix);
* the steps form no cycle (an error names the cycle);

and derives the run order from them (a topological order; ties keep the declaration order, so
the order is stable and deterministic). :meth:`Engine.run` reruns only what changed: a step
reruns when its code version changed, the content (sha256) of a table it reads changed, one of
its outputs is missing or was changed by something else, or it has never run. Each run records
a manifest per step (``<manifests>/<step>.json``: version, input and output digests, seconds).

Tables live in a :class:`TableStore`: Parquet files for tables and JSON files for values,
rooted at a folder (for a project, under :attr:`discbias.paths.ProjectPaths.build`); a
``layout`` maps a table's name to its file (e.g. ``measures/x`` to ``measures/x.parquet``). A step's run callable receives a :class:`StepContext` and reads and writes
only through it, and only what it declared: an undeclared read or write is an error, and so is a
declared output the step did not write (unless declared in ``optional_writes``).

Examples
--------
Two toy steps, one of them reading an external input:

>>> import tempfile
>>> import pandas as pd
>>> store = TableStore(tempfile.mkdtemp())
>>> store.put("raw", pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
>>> def double(ctx):
...     ctx.write("doubled", ctx.read("raw").assign(x=lambda d: d["x"] * 2))
>>> def total(ctx):
...     ctx.write_value("total", {"sum": float(ctx.read("doubled")["x"].sum())})
>>> engine = Engine([Step("total", total, reads=["doubled"], writes=["total"]),
...                  Step("double", double, reads=["raw"], writes=["doubled"])],
...                 store, external=["raw"])
>>> engine.order()
['double', 'total']
>>> engine.run()["status"].tolist()
['ran', 'ran']
>>> store.get_value("total")
{'sum': 12.0}
>>> engine.run()["status"].tolist()      # nothing changed: nothing reruns
['skipped', 'skipped']
>>> store.put("raw", pd.DataFrame({"x": [1.0]}))
>>> engine.run()[["step", "status", "reason"]].values.tolist()
[['double', 'ran', 'input raw changed'], ['total', 'ran', 'input doubled changed']]

A table with two writers is refused before anything runs:

>>> Engine([Step("a", double, writes=["t"]), Step("b", double, writes=["t"])], store)
Traceback (most recent call last):
...
discbias.engine.DeclarationError: table 't' has two writers: step 'a' and step 'b'; each table needs exactly one writer (rename one output, or make one step read the other's table and write a new one)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from .frames import read_frame, write_frame
from .results import _jsonable, write_values

__all__ = ["DeclarationError", "MissingInputError", "StepError", "Step", "StepContext", "TableStore", "Engine",
           "code_version", "modules_version", "read_timings", "TIMING_COLUMNS", "MANIFEST_SCHEMA"]

#: Bumped when the manifest's meaning changes (every step then reruns once).
from .errors import MissingInputError as _UserMissingInput  # noqa: E402
from .fetch import sha256_file  # noqa: E402

MANIFEST_SCHEMA = 1


class DeclarationError(ValueError):
    """The steps' declarations are inconsistent (two writers, an unwritten input, a cycle, a duplicate)."""


class MissingInputError(_UserMissingInput):
    """A table a step needs is not in the store (its writer has not run, or it was removed): a user
    error (run the earlier stage), so the CLI prints one line and exits 2."""


class StepError(RuntimeError):
    """A step broke its declaration while running (undeclared read or write, a declared output not written)."""


# --------------------------------------------------------------------------------------------
# code versions
# --------------------------------------------------------------------------------------------

def code_version(obj: Any, *, deep: bool = True) -> str:
    """A version of the code behind ``obj``: sha256 (16 hex digits) of its module's source.

    ``obj`` is a function, a class, a module, or a string (returned as is). Functions and
    classes are hashed through the source of the module that defines them, so an edit anywhere
    in that module (a helper, a constant) changes the version. With ``deep`` (the default) the
    sources of every module of the same package that the module imports, directly or not
    (:func:`discbias.imports.module_imports`, read from the source, function-level imports
    included), are hashed too, so a change in a library function a step calls reruns the step.
    Objects whose source cannot be read (built-ins, code typed at a prompt) are hashed through
    their qualified name.

    Examples
    --------
    >>> import discbias.results as r
    >>> code_version(r.write_table) == code_version(r)
    True
    >>> len(code_version(r))
    16
    >>> code_version("v2")
    'v2'
    >>> code_version(r, deep=False) == code_version(r)   # results imports nothing of discbias
    True
    """
    if isinstance(obj, str):
        return obj
    module = obj if inspect.ismodule(obj) else sys.modules.get(getattr(obj, "__module__", "") or "")
    try:
        src = inspect.getsource(module) if module is not None else None
    except (OSError, TypeError):
        src = None
    if src is None:
        src = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}"
        return hashlib.sha256(src.encode()).hexdigest()[:16]
    h = hashlib.sha256(src.encode())
    if deep:
        from .imports import module_imports, package_modules

        # a module run as a script (``python -m discbias.probes.demo``) is ``__main__``: its closure is its package name's
        name = getattr(getattr(module, "__spec__", None), "name", None) or module.__name__
        try:
            deps = module_imports(name)
            files = package_modules(name.split(".")[0]) if deps else {}
        except (ModuleNotFoundError, SyntaxError, OSError):
            deps, files = [], {}
        for d in deps:
            h.update(b"\0" + d.encode() + b"\0" + files[d].read_bytes())
    return h.hexdigest()[:16]


def modules_version(modules: Iterable[str]) -> str:
    """A code version from an explicit list of modules: sha256 (16 hex digits) of their names and
    sources, in sorted order.

    For a step whose import closure is much wider than the code that determines its outputs (the
    planted-bias study's training step imports the network registry, which imports the downloader
    and the study configuration), :func:`code_version` reruns it after unrelated edits; such a step
    declares ``Step(version=modules_version([...]))`` with the modules whose code runs when it
    computes, and a test guards the list (``tests/test_planted_version.py`` records the modules
    whose functions run during a training and fails if one is not in the list).

    Examples
    --------
    >>> v = modules_version(["discbias.results", "discbias.frames"])
    >>> v == modules_version(["discbias.frames", "discbias.results"]), len(v)
    (True, 16)
    >>> modules_version(["discbias.no_such_module"])
    Traceback (most recent call last):
    ...
    ModuleNotFoundError: modules_version: no module discbias.no_such_module
    """
    import importlib.util

    h = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not os.path.isfile(spec.origin):
            raise ModuleNotFoundError(f"modules_version: no module {name}")
        h.update(b"\0" + name.encode() + b"\0" + Path(spec.origin).read_bytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# the table store
# --------------------------------------------------------------------------------------------

#: Columns of ``timings.csv`` (see :meth:`Engine.timings`).
TIMING_COLUMNS = ["stage", "step", "status", "reason", "seconds", "cpu_seconds", "last_ran_seconds", "run_started",
                  "finished"]


def read_timings(path: str | os.PathLike) -> pd.DataFrame:
    """An engine's ``timings.csv`` (see :meth:`Engine.timings`); empty if absent, unreadable or of
    another layout (a line on stderr says so when unreadable)."""
    path = Path(path)
    try:
        t = pd.read_csv(path, keep_default_na=False, dtype=str)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=TIMING_COLUMNS)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        print(f"[discbias] engine: ignoring the unreadable timings file {path} ({type(exc).__name__}: {exc}); "
              "it is rewritten", file=sys.stderr)
        return pd.DataFrame(columns=TIMING_COLUMNS)
    if list(t.columns) != TIMING_COLUMNS:
        return pd.DataFrame(columns=TIMING_COLUMNS)
    for c in ("seconds", "cpu_seconds", "last_ran_seconds"):
        t[c] = pd.to_numeric(t[c], errors="coerce")
    return t


def _cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of the children it has waited for."""
    import resource

    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def default_layout(name: str, kind: str) -> str:
    """The file of a table (``<name>.parquet``) or a value (``<name>.json``), relative to the store's root."""
    return f"{name}.parquet" if kind == "table" else f"{name}.json"


class TableStore:
    """Tables (exact Parquet) and JSON values under one folder.

    Parameters
    ----------
    root : path
        Folder holding the files.
    layout : callable, optional
        ``layout(name, kind) -> relative path`` with ``kind`` ``"table"`` (a ``.parquet`` file) or
        ``"value"`` (``.json``). Default: ``<name>.parquet`` and ``<name>.json``. Names may
        contain ``/`` (sub-folders).

    Notes
    -----
    Parquet tables are written with :func:`discbias.frames.write_frame`, so a table read in a
    later process is the very frame its step wrote (dtypes, categoricals, ``None`` apart from
    ``NaN``, column order, index); no pickle is written or read (published CSVs are written by a
    step, ``publish:results``, not kept in the store). What was put in this process is also kept in memory and returned as is by :meth:`get`.
    :meth:`digest` is the sha256 of the file's bytes, memoised on (size, modification time).

    Examples
    --------
    >>> import tempfile
    >>> s = TableStore(tempfile.mkdtemp())
    >>> s.put("a/t", pd.DataFrame({"x": [1, 2]}))
    >>> s.path("a/t").name, s.exists("a/t"), s.exists("b")
    ('t.parquet', True, False)
    >>> s.put_value("v", {"n": 2}); s.get_value("v")
    {'n': 2}
    >>> len(s.digest("a/t"))
    64
    """

    def __init__(self, root: str | os.PathLike, layout: Callable[[str, str], str] | None = None):
        self.root = Path(root)
        self.layout = layout or default_layout
        self._memory: dict[str, Any] = {}
        self._digests: dict[str, tuple[int, int, str]] = {}

    def path(self, name: str, kind: str | None = None) -> Path:
        """The file of ``name``: of its ``kind`` if given, else the existing one (table first)."""
        if kind is not None:
            return self.root / self.layout(name, kind)
        t = self.root / self.layout(name, "table")
        if t.exists():
            return t
        v = self.root / self.layout(name, "value")
        return v if v.exists() else t

    def exists(self, name: str) -> bool:
        """True if a table or a value of this name is stored."""
        return self.path(name, "table").exists() or self.path(name, "value").exists()

    def put(self, name: str, df: pd.DataFrame) -> None:
        """Store a table (atomically: a temporary file renamed into place)."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"table '{name}' must be a pandas DataFrame, not {type(df).__name__}")
        p = self.path(name, "table")
        if p.suffix != ".parquet":
            raise ValueError(f"table '{name}': the layout gives {p.name}; tables are exact Parquet (.parquet)")
        write_frame(df, p)
        self._drop_other(name, "value")
        self._memory[name] = df

    def put_value(self, name: str, value: Any) -> None:
        """Store a JSON value (dicts, lists, numbers, strings; numpy scalars and non-finite floats converted)."""
        p = self.path(name, "value")
        p.parent.mkdir(parents=True, exist_ok=True)
        write_values(value, p)
        self._drop_other(name, "table")
        self._memory[name] = value

    def set_input(self, name: str, value: Any) -> None:
        """Store an external input's value, rewriting it only when it differs (so its digest, which
        the steps reading it recorded, stays when it is unchanged)."""
        if not self.exists(name) or self.get_value(name) != value:
            self.put_value(name, value)

    def _drop_other(self, name: str, kind: str) -> None:
        other = self.path(name, kind)
        if other != self.path(name, "table" if kind == "value" else "value"):
            other.unlink(missing_ok=True)

    def get(self, name: str) -> pd.DataFrame:
        """A stored table (raises :class:`MissingInputError` naming its file if absent)."""
        if name in self._memory and isinstance(self._memory[name], pd.DataFrame):
            return self._memory[name]
        p = self.path(name, "table")
        if not p.exists():
            raise MissingInputError(f"table '{name}' is not in the store ({p} does not exist)")
        return read_frame(p)

    def get_value(self, name: str) -> Any:
        """A stored JSON value (raises :class:`MissingInputError` naming its file if absent)."""
        if name in self._memory and not isinstance(self._memory[name], pd.DataFrame):
            return self._memory[name]
        p = self.path(name, "value")
        if not p.exists():
            raise MissingInputError(f"value '{name}' is not in the store ({p} does not exist)")
        return json.loads(p.read_text())

    def remove(self, name: str) -> None:
        """Delete a table or value (no error if absent)."""
        for kind in ("table", "value"):
            self.path(name, kind).unlink(missing_ok=True)
        self._memory.pop(name, None)

    def digest(self, name: str) -> str | None:
        """sha256 of the stored file's bytes, or None if it is absent."""
        p = self.path(name)
        try:
            st = p.stat()
        except FileNotFoundError:
            return None
        key = str(p)
        memo = self._digests.get(key)
        if memo and memo[:2] == (st.st_size, st.st_mtime_ns):
            return memo[2]
        d = sha256_file(p)
        self._digests[key] = (st.st_size, st.st_mtime_ns, d)
        return d


def _file_record(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, sha256_file(path)]


def _file_changed(path: Path, record: Sequence) -> str | None:
    """Why a recorded file no longer matches (None if it does): size and time first, then its bytes."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    size, mtime, digest = record
    if st.st_size == size and st.st_mtime_ns == mtime:
        return None
    if st.st_size != size or sha256_file(path) != digest:
        return "changed outside the step"
    return None


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------

def _names(x: Iterable[str] | str | None) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, str):
        return (x,)
    return tuple(x)


@dataclass(frozen=True)
class Step:
    """One declared step.

    Parameters
    ----------
    name : str
        Unique step name.
    run : callable
        ``run(ctx: StepContext) -> None``; reads and writes through ``ctx``.
    reads, writes : sequence of str
        Tables (or values) the step reads and writes. Every written table must be written.
    optional_reads : sequence of str
        Tables read when they exist (a writer must still be declared, or they are external);
        their absence is no error.
    optional_writes : sequence of str
        Tables the step may write (e.g. only when the configuration asks for them).
    claims : sequence
        The claims the step makes (e.g. :class:`discbias.claims.Claim`); the engine only
        collects them (:meth:`Engine.claims`).
    version : str, optional
        Code version; default :func:`code_version` of ``run`` (its module's source).
    group : str
        The stage the step belongs to (``"measure"``, ``"fit"``, ...): :meth:`Engine.run`
        can run one group.
    params : mapping, optional
        Settings the step depends on beyond its tables (JSON-serialisable); a change reruns it.

    Examples
    --------
    >>> s = Step("twice", lambda ctx: None, reads=["x"], writes=["y"], group="fit", version="1")
    >>> s.inputs, s.outputs
    (('x',), ('y',))
    """

    name: str
    run: Callable[["StepContext"], Any]
    reads: Sequence[str] = ()
    writes: Sequence[str] = ()
    optional_reads: Sequence[str] = ()
    optional_writes: Sequence[str] = ()
    claims: Sequence[Any] = ()
    version: str | None = None
    group: str = ""
    params: Mapping[str, Any] | None = None

    def __post_init__(self):
        for f in ("reads", "writes", "optional_reads", "optional_writes", "claims"):
            object.__setattr__(self, f, tuple(getattr(self, f)) if not isinstance(getattr(self, f), str)
                               else (getattr(self, f),))
        if not self.name or not isinstance(self.name, str):
            raise DeclarationError(f"a step needs a non-empty name (got {self.name!r})")
        if not callable(self.run):
            raise DeclarationError(f"step '{self.name}': run must be callable, got {type(self.run).__name__}")
        both = set(self.reads + self.optional_reads) & set(self.writes + self.optional_writes)
        if both:
            raise DeclarationError(f"step '{self.name}' both reads and writes {sorted(both)}; write a new table instead")
        if self.version is None:
            object.__setattr__(self, "version", code_version(self.run))

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every table the step may read (required first)."""
        return self.reads + tuple(t for t in self.optional_reads if t not in self.reads)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every table the step may write (required first)."""
        return self.writes + tuple(t for t in self.optional_writes if t not in self.writes)


class StepContext:
    """What a step's ``run`` receives: declared reads and writes on the store, and the run's extras.

    Attributes
    ----------
    step : Step
    store : TableStore
    extra : dict
        Whatever :meth:`Engine.run` was given as ``context`` (configuration, paths, ...); also
        reachable as attributes (``ctx.config``).
    """

    def __init__(self, step: Step, store: TableStore, extra: Mapping[str, Any] | None = None):
        self.step = step
        self.store = store
        self.extra = dict(extra or {})
        self.written: list[str] = []
        self.files: list[Path] = []

    def __getattr__(self, name):
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"step context of '{self.__dict__['step'].name}' has no '{name}' "
                             f"(pass it to Engine.run(context={{'{name}': ...}}))")

    def _check_read(self, name: str) -> None:
        if name not in self.step.inputs:
            raise StepError(f"step '{self.step.name}' read '{name}', which it does not declare; add it to reads")

    def _check_write(self, name: str) -> None:
        if name not in self.step.outputs:
            raise StepError(f"step '{self.step.name}' wrote '{name}', which it does not declare; add it to writes")

    def has(self, name: str) -> bool:
        """True if a declared input is in the store (for optional reads)."""
        self._check_read(name)
        return self.store.exists(name)

    def read(self, name: str) -> pd.DataFrame:
        """A declared input table."""
        self._check_read(name)
        return self.store.get(name)

    def read_value(self, name: str) -> Any:
        """A declared input value."""
        self._check_read(name)
        return self.store.get_value(name)

    def write(self, name: str, df: pd.DataFrame) -> None:
        """Write a declared output table."""
        self._check_write(name)
        self.store.put(name, df)
        self.written.append(name)

    def write_value(self, name: str, value: Any) -> None:
        """Write a declared output value (JSON)."""
        self._check_write(name)
        self.store.put_value(name, value)
        self.written.append(name)

    def wrote_file(self, path: str | os.PathLike) -> Path:
        """Record a file the step wrote outside the store (a figure, a publication table, the paper).

        The step's manifest records the file's size, modification time and sha256; the step
        reruns when the file is missing or its bytes changed (a file whose size and time are
        unchanged is not hashed again, so the check is cheap).
        """
        p = Path(path)
        if not p.is_file():
            raise StepError(f"step '{self.step.name}' recorded {p}, which is not a file it wrote")
        self.files.append(p)
        return p


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------

class Engine:
    """Checks the declarations, orders the steps and runs what changed.

    Parameters
    ----------
    steps : sequence of Step
    store : TableStore
    external : sequence of str
        Tables that no step writes (put in the store before the run).
    manifests : path, optional
        Folder of the per-step manifests (default ``<store root>/.manifests``).
    timings : path, optional
        CSV of the time each step took (default ``timings.csv`` next to the manifests' folder;
        for a project ``build/engine/timings.csv``): see :meth:`timings`.

    Raises
    ------
    DeclarationError
        Two steps of one name, two writers of one table, a read table with no writer that is
        not external, or a cycle.

    Examples
    --------
    >>> import tempfile
    >>> e = Engine([Step("b", lambda c: None, reads=["t"]), Step("a", lambda c: None, writes=["t"])],
    ...            TableStore(tempfile.mkdtemp()))
    >>> e.order(), e.writer("t")
    (['a', 'b'], 'a')
    """

    def __init__(self, steps: Sequence[Step], store: TableStore, *, external: Iterable[str] = (),
                 manifests: str | os.PathLike | None = None, timings: str | os.PathLike | None = None):
        self.steps = list(steps)
        self.store = store
        self.external = tuple(external)
        self.manifests = Path(manifests) if manifests is not None else store.root / ".manifests"
        self.timings_path = Path(timings) if timings is not None else self.manifests.parent / "timings.csv"
        self._by_name: dict[str, Step] = {}
        self._writer: dict[str, str] = {}
        self._check()
        self._order = self._topological()

    # -- declarations ---------------------------------------------------------------------
    def _check(self) -> None:
        for s in self.steps:
            if s.name in self._by_name:
                raise DeclarationError(f"two steps are named '{s.name}'; step names must be unique")
            self._by_name[s.name] = s
        ext = set(self.external)
        for s in self.steps:
            for t in s.outputs:
                if t in self._writer:
                    raise DeclarationError(
                        f"table '{t}' has two writers: step '{self._writer[t]}' and step '{s.name}'; each table needs "
                        "exactly one writer (rename one output, or make one step read the other's table and write a "
                        "new one)")
                if t in ext:
                    raise DeclarationError(f"table '{t}' is declared external but step '{s.name}' writes it; "
                                           "remove it from the external inputs")
                self._writer[t] = s.name
        for s in self.steps:
            for t in s.inputs:
                if t not in self._writer and t not in ext:
                    raise DeclarationError(
                        f"step '{s.name}' reads table '{t}', which no step writes and which is not an external input; "
                        f"declare a step that writes '{t}', or pass it in external=[...]")

    def _deps(self, s: Step) -> list[str]:
        return sorted({self._writer[t] for t in s.inputs if t in self._writer},
                      key=lambda n: self.steps.index(self._by_name[n]))

    def _topological(self) -> list[str]:
        state: dict[str, int] = {}  # 1 visiting, 2 done
        order: list[str] = []

        def visit(n: str, path: list[str]) -> None:
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                cyc = path[path.index(n):] + [n]
                raise DeclarationError("the steps form a cycle: " + " -> ".join(f"'{c}'" for c in cyc) +
                                       " (each reads a table the next one writes); break it by splitting a step")
            state[n] = 1
            for d in self._deps(self._by_name[n]):
                visit(d, path + [n])
            state[n] = 2
            order.append(n)

        for s in self.steps:  # declaration order breaks ties: deterministic
            visit(s.name, [])
        return order

    def order(self, group: str | Iterable[str] | None = None) -> list[str]:
        """Step names in run order (optionally only those of one or more groups)."""
        groups = None if group is None else set(_names(group))
        return [n for n in self._order if groups is None or self._by_name[n].group in groups]

    def step(self, name: str) -> Step:
        """The step of this name (KeyError naming the known steps)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no step named '{name}'; steps: {', '.join(self._order)}") from None

    def writer(self, table: str) -> str | None:
        """The step that writes ``table`` (None for an external input)."""
        return self._writer.get(table)

    def groups(self) -> list[str]:
        """The groups in the order their first step runs."""
        out: list[str] = []
        for n in self._order:
            g = self._by_name[n].group
            if g not in out:
                out.append(g)
        return out

    def claims(self, group: str | Iterable[str] | None = None) -> list[Any]:
        """Every claim the steps declare, in run order."""
        return [c for n in self.order(group) for c in self._by_name[n].claims]

    def declarations(self) -> pd.DataFrame:
        """One row per (step, table, role): what reads and writes what, in run order.

        Examples
        --------
        >>> import tempfile
        >>> e = Engine([Step("a", lambda c: None, writes=["t"], version="1")], TableStore(tempfile.mkdtemp()))
        >>> e.declarations()[["step", "table", "role"]].values.tolist()
        [['a', 't', 'writes']]
        """
        rows = []
        for n in self._order:
            s = self._by_name[n]
            for role, names in (("reads", s.reads), ("optional_reads", s.optional_reads), ("writes", s.writes),
                                ("optional_writes", s.optional_writes)):
                rows += [dict(step=n, group=s.group, table=t, role=role, version=s.version) for t in names]
        return pd.DataFrame(rows, columns=["step", "group", "table", "role", "version"])

    # -- manifests ------------------------------------------------------------------------
    def manifest_path(self, name: str) -> Path:
        return self.manifests / f"{name}.json"

    def manifest(self, name: str) -> dict | None:
        """The recorded manifest of a step's last successful run (None if it never ran or it is unreadable)."""
        try:
            return json.loads(self.manifest_path(name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _params_digest(self, s: Step) -> str:
        return hashlib.sha256(json.dumps(_jsonable(s.params or {}), sort_keys=True).encode()).hexdigest()[:16]

    def _stale(self, s: Step) -> str | None:
        """Why the step must run (None if it is up to date)."""
        m = self.manifest(s.name)
        if m is None:
            return "never ran"
        if m.get("schema") != MANIFEST_SCHEMA:
            return "manifest schema changed"
        if m.get("version") != s.version:
            return "code changed"
        if m.get("params") != self._params_digest(s):
            return "parameters changed"
        recorded = m.get("inputs", {})
        for t in s.inputs:
            if recorded.get(t) != self.store.digest(t):
                return f"input {t} changed"
        if set(recorded) - set(s.inputs):
            return "declared inputs changed"
        outs = m.get("outputs", {})
        for t in s.writes:
            if t not in outs:
                return "declared outputs changed"
        for t, d in outs.items():
            now = self.store.digest(t)
            if now is None:
                return f"output {t} missing"
            if now != d:
                return f"output {t} changed outside the step"
        for key, rec in m.get("files", {}).items():
            why = _file_changed(self._file_path(key), rec)
            if why:
                return f"file {key} {why}"
        return None

    def _file_key(self, path: Path) -> str:
        p = Path(os.path.abspath(path))
        try:
            return p.relative_to(Path(os.path.abspath(self.store.root))).as_posix()
        except ValueError:
            return str(p)

    def _file_path(self, key: str) -> Path:
        p = Path(key)
        return p if p.is_absolute() else self.store.root / p

    def status(self, group: str | Iterable[str] | None = None) -> pd.DataFrame:
        """Which steps would run now and why (an upstream rerun is not foreseen: it shows after it ran)."""
        rows = [dict(step=n, group=self._by_name[n].group, reason=self._stale(self._by_name[n]))
                for n in self.order(group)]
        return pd.DataFrame(rows, columns=["step", "group", "reason"])

    # -- running --------------------------------------------------------------------------
    def run(self, group: str | Iterable[str] | None = None, *, force: bool | Iterable[str] = False,
            context: Mapping[str, Any] | None = None, log: Callable[[str], None] | None = None) -> pd.DataFrame:
        """Run the steps (of ``group``, or all) that changed, in order; return one row per step.

        Parameters
        ----------
        group : str or sequence of str, optional
            Run only these groups' steps; their inputs from other groups must be in the store.
        force : bool or sequence of str
            Rerun every step (True) or the named steps even if unchanged.
        context : mapping
            Extras handed to every step (``ctx.extra``, or ``ctx.<name>``).
        log : callable, optional
            Called with one line per step.

        Returns
        -------
        DataFrame
            ``step, group, status ('ran' | 'skipped'), reason, seconds``.

        Raises
        ------
        MissingInputError
            A required input is not in the store when its step is due (naming its writer).
        StepError
            A step wrote or read something undeclared, or did not write a declared output.
        """
        forced = set(self._order) if force is True else set(_names(force) if force else ())
        rows = []
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        for n in self.order(group):
            s = self._by_name[n]
            reason = "forced" if n in forced else self._stale(s)
            if reason is None:
                rows.append(dict(step=n, group=s.group, status="skipped", reason="up to date", seconds=0.0))
                self._record_timing(started, rows[-1], cpu=0.0)
                if log:
                    log(f"{n}: up to date")
                continue
            for t in s.reads:
                if not self.store.exists(t):
                    w = self._writer.get(t)
                    how = (f"run step '{w}' (group '{self._by_name[w].group}') first" if w
                           else "it is an external input: put it in the store before the run")
                    raise MissingInputError(f"step '{n}' needs table '{t}', which is not in the store "
                                            f"({self.store.path(t)}); {how}")
            ctx = StepContext(s, self.store, context)
            t0, c0 = time.perf_counter(), _cpu_seconds()
            s.run(ctx)
            secs, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            missing = [t for t in s.writes if t not in ctx.written]
            if missing:
                raise StepError(f"step '{n}' did not write {', '.join(repr(t) for t in missing)}, which it declares "
                                "in writes; write them or move them to optional_writes")
            for t in s.optional_writes:  # an optional output this run did not make is stale: remove it
                if t not in ctx.written:
                    self.store.remove(t)
            manifest = dict(schema=MANIFEST_SCHEMA, step=n, group=s.group, version=s.version,
                            params=self._params_digest(s),
                            inputs={t: self.store.digest(t) for t in s.inputs},
                            outputs={t: self.store.digest(t) for t in dict.fromkeys(ctx.written)},
                            files={self._file_key(f): _file_record(f) for f in dict.fromkeys(ctx.files)},
                            seconds=round(secs, 3), finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
            _atomic_write_bytes(self.manifest_path(n), json.dumps(manifest, indent=1, sort_keys=True).encode())
            rows.append(dict(step=n, group=s.group, status="ran", reason=reason, seconds=secs))
            self._record_timing(started, rows[-1], cpu=cpu)
            if log:
                log(f"{n}: ran in {secs:.1f}s ({reason})")
        return pd.DataFrame(rows, columns=["step", "group", "status", "reason", "seconds"])

    # -- timings --------------------------------------------------------------------------
    TIMING_COLUMNS = TIMING_COLUMNS

    def timings(self) -> pd.DataFrame:
        """The latest timing of every step that has run (one row per step, in run order).

        Columns: ``stage`` (the step's group), ``step``, ``status`` (``ran`` or ``skipped``),
        ``reason``, ``seconds`` (wall time of its latest run; 0 when skipped), ``cpu_seconds``
        (CPU time of this process and the children it waited for), ``last_ran_seconds`` (wall
        time of the step's last real run, from its manifest: what it costs when it does run),
        ``run_started`` (when the :meth:`run` that handled it began: one value per stage run)
        and ``finished``. Kept in :attr:`timings_path` (``build/engine/timings.csv``), rewritten
        after every step, so a crash keeps the steps before it.

        Examples
        --------
        >>> import tempfile
        >>> e = Engine([Step("a", lambda c: c.write_value("t", 1), writes=["t"], version="1")],
        ...            TableStore(tempfile.mkdtemp()))
        >>> _ = e.run(); _ = e.run()
        >>> e.timings()[["stage", "step", "status"]].values.tolist()
        [['', 'a', 'skipped']]
        >>> bool(e.timings()["last_ran_seconds"].iloc[0] >= 0)
        True
        """
        return self._in_run_order(read_timings(self.timings_path))

    def _in_run_order(self, t: pd.DataFrame) -> pd.DataFrame:
        rank = {n: i for i, n in enumerate(self._order)}
        return t.sort_values("step", key=lambda c: c.map(rank).fillna(len(rank)), kind="stable").reset_index(drop=True)

    def _record_timing(self, started: str, row: dict, *, cpu: float) -> None:
        m = self.manifest(row["step"]) or {}
        new = dict(stage=row["group"], step=row["step"], status=row["status"], reason=row["reason"],
                   seconds=round(float(row["seconds"]), 3), cpu_seconds=round(float(cpu), 3),
                   last_ran_seconds=m.get("seconds", float("nan")), run_started=started,
                   finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        t = self.timings()
        t = self._in_run_order(pd.concat([t[t["step"] != row["step"]], pd.DataFrame([new])], ignore_index=True))
        _atomic_write_bytes(self.timings_path, t[self.TIMING_COLUMNS].to_csv(index=False).encode())

    def timings_report(self, stages: Iterable[str] | None = None) -> str:
        """The per-stage and per-step time table (what ``make report`` prints at its end).

        Examples
        --------
        >>> import tempfile
        >>> e = Engine([Step("a", lambda c: c.write_value("t", 1), writes=["t"], version="1")],
        ...            TableStore(tempfile.mkdtemp()))
        >>> _ = e.run()
        >>> print(e.timings_report().splitlines()[0])
        time per stage and step (build/engine/timings.csv; wall seconds, CPU seconds):
        """
        t = self.timings()
        if stages is not None:
            t = t[t["stage"].isin(list(stages))]
        lines = ["time per stage and step (build/engine/timings.csv; wall seconds, CPU seconds):"]
        total = 0.0
        for stage, g in t.groupby("stage", sort=False):
            secs = float(g["seconds"].sum())
            total += secs
            ran = int((g["status"] == "ran").sum())
            lines.append(f"  {stage or '-':<10s} {secs:8.1f} s {float(g['cpu_seconds'].sum()):8.1f} s cpu   "
                         f"{ran} of {len(g)} step(s) ran, at {g['run_started'].iloc[0]}")
            for r in g.itertuples():
                if r.status == "ran":
                    lines.append(f"      {r.step:<28s} {r.seconds:8.1f} s {r.cpu_seconds:8.1f} s cpu")
        lines.append(f"  {'total':<10s} {total:8.1f} s")
        return "\n".join(lines)

    def invalidate(self, names: Iterable[str] | None = None) -> None:
        """Forget the manifests of the named steps (all by default): they rerun next time."""
        for n in (self._order if names is None else _names(names)):
            self.manifest_path(n).unlink(missing_ok=True)

    def prune(self) -> list[str]:
        """Remove what steps that are no longer declared made; return their names.

        A manifest in :attr:`manifests` whose step this engine does not declare (an analysis a new
        configuration leaves out, a renamed step) is the record of outputs nothing keeps up to
        date any more: its tables and values (unless a declared step now writes them), the files it
        recorded inside the store's folder (unless a declared step's manifest records them too;
        files outside it, such as downloaded data, are never removed) and the manifest itself are
        removed, so no later step or reader can take them for current ones.

        Examples
        --------
        >>> import tempfile
        >>> store = TableStore(tempfile.mkdtemp())
        >>> _ = Engine([Step("old", lambda c: c.write_value("t", 1), writes=["t"], version="1")], store).run()
        >>> e = Engine([Step("new", lambda c: c.write_value("u", 2), writes=["u"], version="1")], store)
        >>> e.prune(), store.exists("t")
        (['old'], False)
        """
        if not self.manifests.is_dir():
            return []
        live = {key for n in self._order for key in ((self.manifest(n) or {}).get("files") or {})}
        root = Path(os.path.abspath(self.store.root))
        removed = []
        for f in sorted(self.manifests.glob("*.json")):
            try:
                m = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                m = {}
            name = m.get("step") if isinstance(m, dict) and isinstance(m.get("step"), str) else f.stem
            if name in self._by_name:
                continue
            for t in (m.get("outputs") or {}) if isinstance(m, dict) else ():
                if t not in self._writer:
                    self.store.remove(t)
            for key in (m.get("files") or {}) if isinstance(m, dict) else ():
                p = Path(os.path.abspath(self._file_path(key)))
                if key not in live and p.is_relative_to(root):
                    p.unlink(missing_ok=True)
            f.unlink(missing_ok=True)
            removed.append(name)
        return removed
