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
