"""No import cycle among discbias modules (read from the source: module-level and function-level imports)."""

from __future__ import annotations

from discbias.imports import find_cycles, import_graph, module_imports


def test_no_import_cycle_at_module_level():
    cycles = find_cycles(import_graph("discbias", module_level_only=True))
    assert cycles == [], f"import cycles among discbias modules (module-level imports): {cycles}"


def test_no_import_cycle_even_through_function_level_imports():
    # e.g. the claims engine importing the analyses that declare claims, which import the claims engine
    cycles = find_cycles(import_graph("discbias"))
    assert cycles == [], f"import cycles among discbias modules (counting imports inside functions): {cycles}"


def test_the_scanner_finds_a_cycle(tmp_path):
    pkg = tmp_path / "toypkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from ..a import x\nimport toypkg.b\n")
    (pkg / "d.py").write_text("from .sub import c\n")
    g = import_graph("toypkg", tmp_path)
    assert g["toypkg.a"] == {"toypkg.b"} and g["toypkg.sub.c"] == {"toypkg.a", "toypkg.b"}
    assert find_cycles(g) == [["toypkg.a", "toypkg.b", "toypkg.sub.c"]]
    assert find_cycles(import_graph("toypkg", tmp_path, module_level_only=True)) == []


def test_claims_engine_does_not_import_the_analyses():
    assert not [m for m in module_imports("discbias.claims") if m.startswith("discbias.analyses")]
    assert not [m for m in module_imports("discbias.engine") if m.startswith(("discbias.analyses", "discbias.pipeline"))]


def test_stages_that_never_score_start_without_torch(tmp_path):
    """The command line and the replication's engine (what `discbias render` and `figures` build
    before they run) do not import torch: importing it costs seconds at every stage's start."""
    import subprocess
    import sys

    from discbias.studies.synthetic import make_synthetic_study

    cfg = make_synthetic_study(tmp_path, n_ffhq=300, n_per_cell=3)
    code = ("import sys; from discbias.cli import build_parser; build_parser(); "
            "from discbias.config import load_config; from discbias.paths import project_paths; "
            "from discbias.pipeline import build_engine; "
            f"build_engine(load_config({str(cfg)!r}), project_paths({str(tmp_path)!r})); "
            "import discbias.scoring, discbias.nets; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # the lazy names still resolve
    import discbias.nets
    import discbias.scoring

    assert discbias.nets.Discriminator.__name__ == "Discriminator"
    assert discbias.scoring.Scorer.__name__ == "Scorer"


def test_import_graph_follows_edits_and_keeps_nothing_on_disk(tmp_path, monkeypatch):
    """The graph is kept in memory on the files' modification times (an edit is seen at once); no
    cache file of its own decides anything (the engine's manifests are the one record)."""
    import os

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pkg = tmp_path / "src" / "pk"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("X = 1\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a.X\n")
    assert import_graph("pk", tmp_path / "src")["pk.b"] == {"pk.a"}
    (pkg / "a.py").write_text("from .b import f\n")  # an edit: a new edge
    st = (pkg / "a.py").stat()
    os.utime(pkg / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert import_graph("pk", tmp_path / "src")["pk.a"] == {"pk.b"}
    assert import_graph("pk", tmp_path / "src", module_level_only=True)["pk.b"] == frozenset()
    assert not (tmp_path / "cache").exists()


def _ast_import_statements(path):
    """The oracle: the same statements read by Python's parser."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set()
    for n in tree.body:
        top.update(id(m) for m in ([n] if isinstance(n, (ast.Import, ast.ImportFrom)) else
                                   ast.walk(n) if isinstance(n, (ast.If, ast.Try)) else []))
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out.append((n.lineno, [id(n) in top, None, -1, [a.name for a in n.names]]))
        elif isinstance(n, ast.ImportFrom):
            out.append((n.lineno, [id(n) in top, n.module, n.level, [a.name for a in n.names]]))
    return [s for _, s in sorted(out, key=lambda x: x[0])]


def test_the_line_scanner_reads_every_module_as_the_parser_does(tmp_path):
    from discbias.imports import _import_statements, package_modules

    differ = {m: (_import_statements(p), _ast_import_statements(p)) for m, p in package_modules("discbias").items()
              if _import_statements(p) != _ast_import_statements(p)}
    assert not differ, f"{len(differ)} module(s) read differently, e.g. {next(iter(differ.items()))}"
    tricky = tmp_path / "t.py"
    tricky.write_text('"""Docs.\n\nfrom os import path\n>>> import sys\n"""\nimport a.b as c, d  # note\n'
                      "from .x import (y,\n    z as w)\nfrom .. import \\\n    q\ntry:\n    import e\nexcept ImportError:\n"
                      "    e = None\ndef f():\n    from . import g\nclass K:\n    import h\nif True:\n    def k():\n"
                      "        import i\n")
    assert _import_statements(tricky) == _ast_import_statements(tricky)


def test_lazily_loaded_network_modules_are_in_the_code_version_of_what_scores():
    """discbias.nets loads its torch modules on first use (PEP 562), invisible to an import scan; its
    TYPE_CHECKING block declares them, so the scorer's code version covers the network code it runs
    (an edit to nets.layers reruns scoring) while importing discbias.nets still does not load torch."""
    import subprocess
    import sys

    from discbias.imports import module_imports

    deps = module_imports("discbias.scoring.scorer")
    for m in ("discbias.nets.discriminator", "discbias.nets.layers", "discbias.nets.fir", "discbias.nets.pickle_reader"):
        assert m in deps, m
    out = subprocess.run([sys.executable, "-c", "import sys, discbias.nets; print('torch' in sys.modules, "
                          "'discbias.nets.discriminator' in sys.modules)"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout
