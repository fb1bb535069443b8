"""Complete provenance: imported distributions are recorded, direct imports are declared (issue 16)."""

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from discbias.provenance import ALWAYS, canonical, imported_distributions, software_versions

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "discbias"
#: Import names of distributions that may not be installed here (optional extras).
NOT_INSTALLED = {"ray": "ray", "cv2": "opencv-python-headless", "mediapipe": "mediapipe"}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {canonical(re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0]) for r in reqs}


def _direct_imports(files, root: Path = ROOT) -> dict[str, set[str]]:
    """Top-level names imported by ``files``: import statements and literal ``import_module("x")`` /
    ``_require("x")`` calls."""
    out: dict[str, set[str]] = {}
    for f in files:
        for n in ast.walk(ast.parse(f.read_text(), str(f))):
            names = []
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                names = [n.module]
            elif (isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant)
                  and isinstance(n.args[0].value, str)
                  and getattr(n.func, "attr", getattr(n.func, "id", "")) in ("import_module", "_require")):
                names = [n.args[0].value]
            for name in names:
                if name.startswith("."):  # import_module(".x", __name__): a module of this package
                    continue
                out.setdefault(name.split(".")[0], set()).add(str(f.relative_to(root)))
    return out


def _undeclared(imports: dict[str, set[str]]) -> list[str]:
    declared = _declared() | {"discbias"}
    by_module = md.packages_distributions()
    bad = []
    for top, where in sorted(imports.items()):
        if top in sys.stdlib_module_names or top in ("discbias", "__future__"):
            continue
        dists = {canonical(d) for d in by_module.get(top, [])} or {canonical(NOT_INSTALLED.get(top, top))}
        if not dists & declared:
            bad.append(f"{top} (distribution {sorted(dists)}) imported in {sorted(where)}")
    return bad


def test_every_direct_import_is_declared():
    bad = _undeclared(_direct_imports(sorted(SRC.rglob("*.py"))))
    assert not bad, "declare these in pyproject.toml [project] dependencies:\n" + "\n".join(bad)


def test_the_scan_finds_an_undeclared_import(tmp_path):
    f = tmp_path / "mod.py"
    f.write_text("import numpy\nimport yaml\nfrom packaging import version\nimport importlib\n"
                 "importlib.import_module('mediapipe')\n")
    imports = _direct_imports([f], root=tmp_path)
    assert set(imports) == {"numpy", "yaml", "packaging", "importlib", "mediapipe"}
    bad = _undeclared(imports)
    assert [b.split(" ")[0] for b in bad] == ["yaml"]  # pyyaml is not declared; packaging is (dev extra)
    assert "imported in ['mod.py']" in bad[0]


def test_imported_distributions_are_recorded():
    import krippendorff  # noqa: F401  (imported by discbias.stats.reliability)
    import PIL.Image  # noqa: F401

    v = software_versions()
    assert v["krippendorff"] == md.version("krippendorff") and v["pillow"] == md.version("pillow")
    for name in ALWAYS:  # recorded even when not imported (nutpie is imported only when sampling)
        assert canonical(name) in v
    assert list(v)[0] == "python" and list(v)[1:] == sorted(list(v)[1:])


def test_only_what_was_imported():
    assert imported_distributions(["numpy", "os", "json"]) == {"numpy": md.version("numpy")}
