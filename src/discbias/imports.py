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
import importlib.util
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


def _imports_of(name: str, path: Path, known: frozenset, module_level_only: bool) -> frozenset:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
    nodes = tree.body if module_level_only else list(_statements(tree.body))
    if module_level_only:  # imports under module-level if/try blocks still run at import time
        extra = []
        for n in tree.body:
            if isinstance(n, (ast.If, ast.Try)):
                extra += [m for m in ast.walk(n) if isinstance(m, (ast.Import, ast.ImportFrom))]
        nodes = list(nodes) + extra
    deps: set[str] = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            deps.update(a.name for a in n.names if a.name in known)
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg[: len(pkg) - (n.level - 1)] if n.level > 1 else pkg
                mod = ".".join(base + ([n.module] if n.module else []))
            else:
                mod = n.module or ""
            subs = [f"{mod}.{a.name}" for a in n.names if f"{mod}.{a.name}" in known]
            if len(subs) < len(n.names) and mod in known:
                deps.add(mod)  # names taken from the module itself
            deps.update(subs)
    deps.discard(name)
    return frozenset(deps)


@lru_cache(maxsize=8)
def _graph_cached(package: str, root: str | None, module_level_only: bool, stamp: tuple) -> dict:
    mods = package_modules(package, root)
    known = frozenset(mods)
    return {m: _imports_of(m, p, known, module_level_only) for m, p in mods.items()}


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
