"""The import graph of a package, read from its source (nothing is imported or executed).

Used for the engine's code versions (a step's version covers the modules its code imports) and by
the test that the package has no import cycle.

Examples
--------
>>> g = import_graph("discbias")
>>> "discbias.paths" in g["discbias.pipeline"]
True
>>> find_cycles(g)
[]
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
from functools import lru_cache
from pathlib import Path

__all__ = ["import_graph", "find_cycles", "module_imports", "package_modules"]


def package_modules(package: str, root: str | Path | None = None) -> dict[str, Path]:
    """Every module of ``package`` (dotted name -> source file), found from its folder.

    ``root`` is the folder that holds the package's folder (default: where Python finds it).

    Examples
    --------
    >>> mods = package_modules("discbias")
    >>> mods["discbias.engine"].name
    'engine.py'
    """
    if root is None:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"{package} is not an importable package")
        pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    else:
        pkg_dir = Path(root) / package.replace(".", "/")
    out = {}
    for f in sorted(pkg_dir.rglob("*.py")):
        parts = [package, *f.relative_to(pkg_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _statements(body):
    """Every statement in ``body`` and in the blocks nested in it (functions, classes, if, try,
    with, loops). Import statements are statements, so expressions are not visited: about 4x
    faster than ``ast.walk`` over the package, which the engine does at every stage's start."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.AST):
                yield from _statements(inner)


def _import_statements(path: Path) -> list[list]:
    """The import statements of a source file: ``[module_level, module, level, [names]]`` each
    (``module`` None and ``level`` -1 for ``import a.b``, whose names are the imported modules)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = set()
    for n in tree.body:  # imports under module-level if/try blocks run at import time too
        top.update(id(m) for m in ([n] if isinstance(n, (ast.Import, ast.ImportFrom)) else
                                   ast.walk(n) if isinstance(n, (ast.If, ast.Try)) else []))
    out = []
    for n in _statements(tree.body):
        if isinstance(n, ast.Import):
            out.append([id(n) in top, None, -1, [a.name for a in n.names]])
        elif isinstance(n, ast.ImportFrom):
            out.append([id(n) in top, n.module, n.level, [a.name for a in n.names]])
    return out


#: Version of the cached statements' layout (in the cache file's name: a new layout starts a new file).
_CACHE_FORMAT = 1


def _cache_file(pkg_dir: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(pkg_dir.resolve()).encode()).hexdigest()[:16]
    return base / "discbias" / f"imports-v{_CACHE_FORMAT}-{key}.json"


def _all_import_statements(mods: dict[str, Path]) -> dict[str, list]:
    """Every module's import statements, parsed again only for files whose size or mtime changed.

    The parsed statements are kept in the user's cache folder (``$XDG_CACHE_HOME/discbias`` or
    ``~/.cache/discbias``): parsing the package's hundred modules is most of the time it takes
    to build the engine at each stage's start. A cache that cannot be read or written is ignored
    (it only saves time).
    """
    files = {m: (str(p), p.stat().st_mtime_ns, p.stat().st_size) for m, p in mods.items()}
    cache_file = _cache_file(next(iter(mods.values())).parent) if mods else None
    try:
        cached = json.loads(cache_file.read_text()) if cache_file is not None else {}
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict):
        cached = {}
    out, changed = {}, False
    for m, (path, mtime, size) in files.items():
        hit = cached.get(path)
        if isinstance(hit, list) and len(hit) == 3 and hit[0] == mtime and hit[1] == size:
            out[m] = hit[2]
        else:
            out[m] = _import_statements(Path(path))
            cached[path] = [mtime, size, out[m]]
            changed = True
    if changed and cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached))
            os.replace(tmp, cache_file)
        except OSError:
            pass  # read-only home: parse again next time
    return out


def _imports_of(name: str, path: Path, known: frozenset, module_level_only: bool, statements: list) -> frozenset:
    is_pkg = path.name == "__init__.py"
    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
    deps: set[str] = set()
    for at_top, module, level, names in statements:
        if module_level_only and not at_top:
            continue
        if level == -1:
            deps.update(a for a in names if a in known)
            continue
        if level:
            base = pkg[: len(pkg) - (level - 1)] if level > 1 else pkg
            mod = ".".join(base + ([module] if module else []))
        else:
            mod = module or ""
        subs = [f"{mod}.{a}" for a in names if f"{mod}.{a}" in known]
        if len(subs) < len(names) and mod in known:
            deps.add(mod)  # names taken from the module itself
        deps.update(subs)
    deps.discard(name)
    return frozenset(deps)


@lru_cache(maxsize=8)
def _graph_cached(package: str, root: str | None, module_level_only: bool, stamp: tuple) -> dict:
    mods = package_modules(package, root)
    known = frozenset(mods)
    statements = _all_import_statements(mods)
    return {m: _imports_of(m, p, known, module_level_only, statements[m]) for m, p in mods.items()}


def import_graph(package: str, root: str | Path | None = None, *, module_level_only: bool = False) -> dict[str, frozenset]:
    """Module -> the package's modules it imports (every import statement, or module-level ones only).

    ``from . import x`` where ``x`` is a submodule is an edge to the submodule, not to the package.
    """
    mods = package_modules(package, root)
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in mods.values())
    return dict(_graph_cached(package, None if root is None else str(root), module_level_only, stamp))


def module_imports(module: str, *, transitive: bool = True) -> list[str]:
    """The modules of ``module``'s own package that it imports (transitively by default), sorted.

    Examples
    --------
    >>> "discbias.paths" in module_imports("discbias.pipeline")
    True
    """
    top = module.split(".")[0]
    g = import_graph(top)
    if module not in g:
        return []
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        for d in g.get(m, ()):
            if d not in seen and d != module:
                seen.add(d)
                if transitive:
                    todo.append(d)
    return sorted(seen)


def find_cycles(graph: dict[str, frozenset]) -> list[list[str]]:
    """The import cycles of a graph: its strongly connected components with more than one module (sorted).

    Examples
    --------
    >>> find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan; the package is small enough for recursion
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)
