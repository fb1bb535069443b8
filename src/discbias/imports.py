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

import importlib.util
import re
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


_IMPORT = re.compile(r"^(?P<indent>[ \t]*)(?:from[ \t]+(?P<module>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>.*)"
                     r"|import[ \t]+(?P<modules>.*))$")
_TRIPLE = re.compile(r"\"\"\"|\'\'\'")
#: Module-level blocks whose imports run when the module is imported.
_IMPORT_TIME_BLOCKS = ("if ", "if(", "elif ", "else:", "try:", "except", "finally:")


def _names(text: str) -> list[str]:
    text = text.replace("(", " ").replace(")", " ").replace("\\", " ")
    return [n.split()[0] for n in text.split(",") if n.strip()]


def _import_statements(path: Path) -> list[list]:
    """The import statements of a source file: ``[module_level, module, level, [names]]`` each
    (``module`` None and ``level`` -1 for ``import a.b``, whose names are the imported modules).

    A line scanner, not a parser (about 20 times faster than :func:`ast.parse` over the package,
    which the engine reads at every process's start): import statements start a line; lines in
    triple-quoted strings (docstrings, doctest examples) are skipped; a parenthesised or
    backslash-continued name list is followed to its end. ``module_level`` is true at column 0 and
    in module-level ``if``/``try`` blocks (they run at import time). A test checks that it reads
    every module of the package as :mod:`ast` does.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    out, quote, block, i = [], None, "", 0
    while i < len(lines):
        line, i = lines[i], i + 1
        was_in_string = quote is not None
        for q in _TRIPLE.findall(line):
            quote = q if quote is None else (None if q == quote else quote)
        if was_in_string or not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            block = line
        m = _IMPORT.match(line)
        if m is None:
            continue
        text = (m["names"] if m["names"] is not None else m["modules"]).split("#", 1)[0]
        while (text.rstrip().endswith("\\") or ("(" in text and ")" not in text)) and i < len(lines):
            text, i = text + " " + lines[i].split("#", 1)[0], i + 1
        top = not m["indent"] or block.startswith(_IMPORT_TIME_BLOCKS)
        if m["names"] is None:
            out.append([top, None, -1, _names(text)])
        else:
            mod = m["module"]
            level = len(mod) - len(mod.lstrip("."))
            out.append([top, mod[level:] or None, level, _names(text)])
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
    return {m: _imports_of(m, p, known, module_level_only, _import_statements(p)) for m, p in mods.items()}


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
