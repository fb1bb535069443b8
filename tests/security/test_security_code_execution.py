"""No code from untrusted text (issue 24): data files, configurations and templates never run code,
and a rendered report never embeds a file the build did not make."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from types import SimpleNamespace as NS

import pandas as pd
import pytest

from discbias.formulas import FormulaError, check_formula


# ------------------------------------------------------------------------------ 1. audit init
def test_audit_init_cannot_be_made_to_write_a_table(sandbox):
    """A group level (and a column name) with quotes and newlines stays a string value."""
    payload = 'x"\n[[models]]\nid = "pwn"\nformula = "score ~ 1"\n# '
    m = sandbox.root / "m.csv"
    pd.DataFrame({"image": [f"{i}.png" for i in range(4)], 'gr"oup\n[x]': ["a", payload, "a", payload],
                  "skin_r1": [1, 2, 3, 4], "skin_r2": [2, 3, 4, 5]}).to_csv(m, index=False)
    out = sandbox.root / "analysis" / "a.toml"
    run = sandbox.cli("audit", "init", m, "--out", out)
    assert run.returncode == 0, run.stderr
    cfg = tomllib.loads(out.read_text())
    assert [x["id"] for x in cfg["models"]] == ["score_main", "skin_rating"]
    assert cfg["data"]["groups"] == ['gr"oup\n[x]'] and payload in cfg["claims"][0]["term"]
    sandbox.assert_clean()


# ------------------------------------------------------------------------------ 2. formulas
PAYLOADS = [
    "score ~ x + I(__import__(bytes([111,115]).decode()).system('touch MARKER'))",
    "score ~ x + I(__import__('os').system('touch MARKER'))",
    "score ~ x.__class__.__mro__",
    "score ~ eval('1')",
    "score ~ (lambda: 1)()",
    "score ~ np.log.__call__(x)",
    "score ~ x[0]",
    "score ~ x; import os",
    "score ~ I(C(x))",
    "score ~ 'a'",
    "score ~ os.system",
    "score ~ {x}",
]


@pytest.mark.parametrize("formula", PAYLOADS)
def test_a_formula_outside_the_grammar_is_refused_before_evaluation(formula):
    with pytest.raises(FormulaError, match="is not allowed|unbalanced") as exc:
        check_formula(formula)
    assert repr(formula)[1:20] in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("formula", ["score ~ group + luma_709", "skin ~ group + score + (1|rater) + (1|image)",
                                     "y ~ C(race, Treatment('White')) * C(hair) + luminance", "y ~ I(x ** 2) - 1",
                                     "y ~ np.log(x + 1) + standardize(z) + cr(level, df=4)", 'y ~ Q("skin tone")'])
def test_ordinary_formulas_pass(formula):
    assert check_formula(formula) == formula


def test_the_stats_entry_points_check_formulas(tmp_path):
    from discbias.stats.regression import ols

    d = pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": [1.0, 0.0, 2.0]})
    marker = tmp_path / "MARKER"
    with pytest.raises(FormulaError):
        ols(f"y ~ x + I(__import__('pathlib').Path('{marker}').touch())", d, model="m")
    assert not marker.exists()


def _audit_config(root: Path, models: str = "", audit: str = "", scoring: str = "", ratings: str = "") -> Path:
    pd.DataFrame({"image": ["a.png", "b.png"], "group": ["x", "y"], "r1": [1, 2], "r2": [2, 3]}).to_csv(
        root / "m.csv", index=False)
    p = root / "a.toml"
    p.write_text(f'[audit]\nname = "demo"\n{audit}\n[data]\nmanifest = "m.csv"\ngroups = ["group"]\n'
                 f'[scoring]\nweights = "D.pkl"\n{scoring}\n[ratings.skin]\ncolumns = ["r1", "r2"]\n'
                 f'{ratings or "scale = [1, 7]"}\n{models}')
    return p


def test_an_audit_formula_payload_is_refused_by_the_cli(sandbox):
    f = f"score ~ group + I(__import__('os').system('touch {sandbox.marker}'))"
    cfg = _audit_config(sandbox.root, models=f'[[models]]\nid = "m"\nformula = {json.dumps(f)}\n')
    run = sandbox.cli("audit", "run", "--config", cfg)
    sandbox.assert_refused(run, "a.toml", "formula", "'__import__' is not allowed")


@pytest.mark.parametrize("table,line,named", [
    ("audit", "seed = -5", "seed"),
    ("scoring", 'device = "cuda; touch MARKER"', "device"),
    ("ratings", "scale = [1, inf]", "scale"),
    ("ratings", "scale = [nan, 7]", "scale"),
])
def test_bad_audit_values_are_one_line(sandbox, table, line, named):
    from discbias.audit.config import load_audit_config
    from discbias.errors import ConfigError

    cfg = _audit_config(sandbox.root, **{table: line})
    with pytest.raises(ConfigError, match=named) as exc:
        load_audit_config(cfg)
    assert "a.toml" in exc.value.one_line() and "\n" not in exc.value.one_line()
    if table == "audit":  # one of them end to end: exit 2, one line, no traceback
        sandbox.assert_refused(sandbox.cli("audit", "run", "--config", cfg), "a.toml", named)


def test_a_claim_id_is_an_identifier(tmp_path):
    from discbias.audit.config import load_audit_config
    from discbias.errors import ConfigError

    cfg = _audit_config(tmp_path, models='[[models]]\nid = "m"\nformula = "score ~ group"\n[[claims]]\n'
                                         'id = "c` ![](/etc/passwd) `"\ndescription = "d"\nmodel = "m"\nterm = "group[y]"\n')
    with pytest.raises(ConfigError, match="claims.*id"):
        load_audit_config(cfg)


# ------------------------------------------------------------------------------ 3. templates
def _paths(d: Path) -> NS:
    paths = NS(values=d / "values.json", cache=d / "cache", report=d / "report", tables=d / "tables",
               figures=d / "figures", results=d / "results", build=d)
    paths.values.write_text(json.dumps({"x": 1}))
    return paths


@pytest.mark.parametrize("abstract", [
    "<< lipsum.__globals__['os'].popen('touch MARKER').read() >>",
    "<< cycler.__init__.__globals__.os.popen('touch MARKER') >>",
    "<< ''.__class__.__mro__[1].__subclasses__() >>",
    "<< joiner.__init__.__globals__['__builtins__']['eval']('1') >>",
])
def test_the_abstract_is_rendered_in_a_sandbox(tmp_path, abstract):
    from discbias.report.render import RenderError, render_qmd

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "paper.qmd.j2").write_text("---\nabstract: << paper.abstract | yaml >>\n---\n")
    from discbias.errors import UserError

    marker = tmp_path / "MARKER"
    with pytest.raises(RenderError, match="sandbox") as exc:
        render_qmd(_paths(tmp_path), tmp_path / "t", paper={"abstract": abstract.replace("MARKER", str(marker))})
    assert not marker.exists()
    assert isinstance(exc.value, UserError) and "\n" not in str(exc.value)  # the CLI's one line and exit 2
    q = render_qmd(_paths(tmp_path), tmp_path / "t", paper={"abstract": "x = << values.x >> **y**"})
    assert 'abstract: "x = 1 \\\\*\\\\*y\\\\*\\\\*"' in q.read_text()  # a value still fills it; its text is text


def test_a_template_file_from_elsewhere_is_sandboxed_too(tmp_path):
    from discbias.report.render import RenderError, render_qmd

    (tmp_path / "t").mkdir()
    marker = tmp_path / "MARKER"
    (tmp_path / "t" / "paper.qmd.j2").write_text(f"<< lipsum.__globals__.os.popen('touch {marker}') >>\n")
    with pytest.raises(RenderError, match="sandbox"):
        render_qmd(_paths(tmp_path), tmp_path / "t")
    assert not marker.exists()


def test_compiled_templates_from_another_key_are_not_loaded(tmp_path, monkeypatch):
    """A compiled-template cache file is code: one written under another key (a copied build) is ignored."""
    from discbias import integrity
    from discbias.report.render import make_environment

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "p.j2").write_text("v=<< values.x >>")
    paths = _paths(tmp_path)
    make_environment(tmp_path / "t", paths).get_template("p.j2")  # compiles and stores it
    files = list((paths.cache / "jinja-mac").iterdir())
    assert len(files) == 1
    tpl = tmp_path / "t" / "p.j2"
    env = make_environment(tmp_path / "t", paths)
    bucket = env.bytecode_cache.get_bucket(env, "p.j2", str(tpl), tpl.read_text())
    assert bucket.code is not None  # our own key: loaded
    monkeypatch.setenv(integrity.KEY_ENV, str(tmp_path / "other.key"))
    bucket = env.bytecode_cache.get_bucket(env, "p.j2", str(tpl), tpl.read_text())
    assert bucket.code is None  # another key: never loaded


# ------------------------------------------------------------------------------ 4. pickles
def test_no_module_reads_a_pickle_from_a_build_or_cache_folder():
    """Route 4 (a pickle placed in ``build/engine/shadow/`` ran on the next ``fit``): internal state is
    Parquet and JSON now; no module of the package unpickles anything except the restricted network
    reader, torch only with ``weights_only=True``, and marshalled code only behind a keyed MAC."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "discbias"
    found = []
    for f in sorted(src.rglob("*.py")):
        if f.name == "pickle_reader.py":  # the restricted unpickler (tests/nets/test_nets_hardening.py)
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            owner = fn.value.id if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) else ""
            kw = {k.arg: k.value for k in node.keywords}
            if (name in ("read_pickle", "Unpickler", "loads", "load") and owner in ("pickle", "cloudpickle", "dill",
                                                                                  "joblib", "marshal", "shelve", "pd")
                    or name == "read_pickle"
                    or (owner == "torch" and name == "load" and not (
                        isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True))):
                found.append(f"{f.relative_to(src)}:{node.lineno}")
    assert found == [], f"code that could unpickle a file from elsewhere: {found}"


# ------------------------------------------------------------------------------ 5. pandoc
@pytest.mark.parametrize("body", ["see ![](SECRET)", "`c` ![x](../../SECRET) `", '<img src="SECRET">',
                                  '<link rel="stylesheet" href="https://evil.example/x.css">',
                                  "![](https://evil.example/x.png)", "[x](file:///etc/passwd)"])
def test_pandoc_embeds_nothing_the_build_did_not_make(tmp_path, body):
    from discbias.report.render import RenderError, render_html

    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    report = tmp_path / "build" / "report"
    report.mkdir(parents=True)
    qmd = report / "p.qmd"
    qmd.write_text("---\ntitle: t\n---\n\n" + body.replace("SECRET", str(secret) if "../" not in body else "secret.txt")
                   + "\n")
    with pytest.raises(RenderError, match="refused"):
        render_html(qmd)
    assert not qmd.with_suffix(".html").exists()


def test_a_figure_inside_the_build_is_still_embedded(tmp_path):
    from discbias.report.render import render_html

    (tmp_path / "build" / "figures").mkdir(parents=True)
    (tmp_path / "build" / "figures" / "f.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" '
                                                          'height="4"><rect width="4" height="4"/></svg>')
    (tmp_path / "build" / "report").mkdir()
    qmd = tmp_path / "build" / "report" / "p.qmd"
    qmd.write_text("---\ntitle: t\n---\n\n![A figure](../figures/f.svg)\n\n[a link](https://example.org)\n")
    html = render_html(qmd).read_text()
    assert "<svg" in html or "data:image/svg+xml" in html


def test_the_html_is_not_kept_when_the_pdf_fails(tmp_path):
    from discbias.report.render import RenderError, outputs_removed_on_failure

    qmd = tmp_path / "p.qmd"
    with pytest.raises(RenderError):
        with outputs_removed_on_failure(qmd):
            qmd.with_suffix(".html").write_text("<html>finished?</html>")
            raise RenderError("typst failed")
    assert not qmd.with_suffix(".html").exists()
