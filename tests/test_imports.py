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


def test_import_graph_cache_follows_edits_and_survives_a_corrupt_file(tmp_path, monkeypatch):
    import os

    from discbias import imports

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pkg = tmp_path / "src" / "pk"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("X = 1\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a.X\n")
    assert import_graph("pk", tmp_path / "src")["pk.b"] == {"pk.a"}
    cache_files = list((tmp_path / "cache" / "discbias").glob("imports-*.json"))
    assert len(cache_files) == 1  # parsed statements kept for the next process
    (pkg / "a.py").write_text("from .b import f\n")  # an edit: a new edge
    st = (pkg / "a.py").stat()
    os.utime(pkg / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert import_graph("pk", tmp_path / "src")["pk.a"] == {"pk.b"}
    assert import_graph("pk", tmp_path / "src", module_level_only=True)["pk.b"] == frozenset()
    cache_files[0].write_text("{not json")
    imports._graph_cached.cache_clear()
    assert import_graph("pk", tmp_path / "src")["pk.b"] == {"pk.a"}  # a corrupt cache is parsed again
