"""Figure steps that rerun only when their code or their inputs changed.

``discbias figures`` runs several steps (the common tables, the specification curves, one figure
module per analysis). Each step's key is the sha256 of

* its own source file and every other Python file of :mod:`discbias.report` outside
  ``report/figures/`` (style, tables, labels, ...), :mod:`discbias.pipeline` (which saves the
  files) and the analysis module of the same name (figure modules import its constants);
* the bytes of what figures read: ``build/results/*.csv``, ``build/values.json``,
  ``build/measures/*.parquet`` and the study configuration (labels);
* the matplotlib version.

After a step runs, the files it wrote in ``build/figures`` and ``build/tables`` (new or with a
changed modification time) are recorded with their sha256 in ``build/figures/.steps.json``. A
step is skipped when its key is unchanged and every file it wrote is still there with the same
sha256; otherwise it runs. So a change to one figure's colour reruns that figure module only,
and any new fit (new results) reruns them all. ``DISCBIAS_ALL_FIGURES=1`` runs every step.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> t = LazyTables(root, "*.csv", lambda p: p.read_text())
>>> _ = (root / "a.csv").write_text("x")
>>> sorted(t), t["a"]
(['a'], 'x')
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import inspect
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, Iterator

STATE = ".steps.json"


class LazyTables(Mapping):
    """A read-only mapping of ``<stem> -> table`` over the files of a folder, read on first use.

    Figure steps that are skipped never read their tables (the FFHQ measures take seconds).
    """

    def __init__(self, folder: Path, pattern: str, reader: Callable):
        self.folder, self.pattern, self.reader = Path(folder), pattern, reader
        self._cache: dict = {}

    def _files(self) -> dict[str, Path]:
        return {p.stem: p for p in sorted(self.folder.glob(self.pattern))}

    def __getitem__(self, key):
        if key not in self._cache:
            files = self._files()
            if key not in files:
                raise KeyError(key)
            self._cache[key] = self.reader(files[key])
        return self._cache[key]

    def __contains__(self, key) -> bool:  # without reading the table
        return key in self._cache or key in self._files()

    def __iter__(self) -> Iterator[str]:
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _inputs_digest(paths, config) -> str:
    h = hashlib.sha256()
    files = sorted(paths.results.glob("*.csv")) + [paths.values] + sorted(paths.measures.glob("*.parquet"))
    files.append(Path(config.path))
    for f in files:
        if f.exists():
            h.update(f"{f.name}\0{_sha(f)}\0".encode())
    return h.hexdigest()


def _shared_code_digest() -> str:
    from .. import pipeline

    report = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted(report.glob("*.py")) + [Path(pipeline.__file__)]:
        h.update(f"{f.name}\0{_sha(f)}\0".encode())
    try:
        h.update(md.version("matplotlib").encode())
    except md.PackageNotFoundError:
        pass
    return h.hexdigest()


def _step_sources(func: Callable) -> list[Path]:
    mod = inspect.getmodule(func)
    out = [Path(mod.__file__)] if mod is not None and getattr(mod, "__file__", None) else []
    if mod is not None and mod.__name__.startswith("discbias.report.figures."):
        analysis = Path(__file__).parent.parent / "analyses" / f"{mod.__name__.rsplit('.', 1)[-1]}.py"
        if analysis.exists():
            out.append(analysis)
    return out


def _snapshot(dirs: list[Path]) -> dict[str, int]:
    out = {}
    for d in dirs:
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file() and not p.name.startswith("."):
                    out[str(p)] = p.stat().st_mtime_ns
    return out


def run_steps(fctx, steps: list[tuple[str, Callable]], *, log=None) -> dict[str, str]:
    """Run each ``(name, func)`` step on ``fctx`` unless it is unchanged; return name -> ``ran|skipped``."""
    paths = fctx.paths
    log = log or (lambda m: print(f"[discbias] {m}", file=sys.stderr, flush=True))
    state_file = paths.figures / STATE
    try:
        state = json.loads(state_file.read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    force = bool(os.environ.get("DISCBIAS_ALL_FIGURES"))
    shared = _shared_code_digest() + _inputs_digest(paths, fctx.config)
    outdirs = [paths.figures, paths.tables]
    status = {}
    for name, func in steps:
        h = hashlib.sha256(shared.encode())
        for f in _step_sources(func):
            h.update(f"{f}\0{_sha(f)}\0".encode())
        key = h.hexdigest()
        prev = state.get(name)
        if not force and prev and prev.get("key") == key and all(
                Path(f).exists() and _sha(Path(f)) == s for f, s in prev.get("outputs", {}).items()):
            status[name] = "skipped"
            continue
        before = _snapshot(outdirs)
        t0 = time.perf_counter()
        func(fctx)
        after = _snapshot(outdirs)
        written = {f: _sha(Path(f)) for f, m in after.items() if before.get(f) != m}
        state[name] = dict(key=key, outputs=written, seconds=round(time.perf_counter() - t0, 2))
        status[name] = "ran"
        paths.figures.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, state_file)
    ran = [n for n, s in status.items() if s == "ran"]
    log(f"figures: ran {len(ran)} of {len(status)} steps ({', '.join(ran) or 'none'}); "
        f"{len(status) - len(ran)} skipped (code and inputs unchanged)")
    return status
