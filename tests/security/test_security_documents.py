"""Text from a configuration, a data file or a results file is text in every document (issue 24):
escaped for its target (Markdown, HTML, Typst, LaTeX), it never becomes formatting, raw markup, a
link, an image, a citation or a cross-reference; and the Quarto path is confined as the pandoc path is.

The payloads are written by the tests; the renders are small documents (pandoc and Typst in a second
or two), so that the suite stays fast. The real templates are covered end to end by the synthetic
build (its render checks) and by ``test_the_real_templates_print_planted_front_matter_as_text``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace as NS

import pandas as pd
import pytest

#: Strings a configuration or a data file might hold, each a piece of Markdown, HTML, LaTeX or
#: Typst syntax that must reach the reader literally.
PLANTED = ["**bold?**", "<b>tag?</b>", r"\textbf{tex?}", "#set text(red)", "$x^2$", "![](/etc/hostname)",
           "`tick`", "`<i>raw</i>`{=html}", "[link](https://evil.example)", "@tbl-x", "_under_", "~sub~",
           "{{< include /etc/passwd >}}", "<script>alert(1)</script>"]
#: The same, without what the PDF's text layer cannot be compared on (spaces around braces are kept).
ONE = " ".join(PLANTED)


class _Elements(HTMLParser):
    """Every element and attribute of an HTML page, and its text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script", "head"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _parse(html: str) -> _Elements:
    p = _Elements()
    p.feed(html)
    return p


#: Scripts the paper's HTML carries itself (``paper-after.html``: contents link, figure zoom).
_OWN_SCRIPTS = (Path(__file__).resolve().parents[2] / "src" / "discbias" / "report" / "paper-after.html"
                ).read_text().count("<script")


def _paths(d: Path, values: dict) -> NS:
    build = d / "build"
    paths = NS(values=build / "values.json", cache=build / "cache", report=build / "report", tables=build / "tables",
               figures=build / "figures", results=build / "results", build=build)
    for p in (paths.cache, paths.report, paths.tables, paths.figures, paths.results):
        p.mkdir(parents=True, exist_ok=True)
    paths.values.write_text(json.dumps(values))
    return paths


TEMPLATE = """---
title: << paper.title | yaml >>
abstract: |
<% for line in paper.abstract.splitlines() %>
  << line >>
<% endfor %>
keywords:
<% for k in paper.keywords %>
  - << k | yaml >>
<% endfor %>
---

# Intended formatting

This is *intended emphasis*, **intended bold** and $a^2 + b$ maths, written by the template.

# Values

Prose: << values.text >>.

Code: `<< values.text >>` and `<< values.id >>…`.

Label: << label("planted_id") >>.

Keywords: << paper.keywords | join("; ") >>.

Identifier: see @<< values.label >>.

<< table("planted") >>
"""


def _render(tmp_path, to=("html",)):
    from discbias.report.escape import md_text
    from discbias.report.render import render_html, render_latex, render_pdf, render_qmd
    from discbias.report.tables import Col, PubTable

    paths = _paths(tmp_path, {"text": ONE, "id": "c`` x", "label": "tbl-planted", "n": 3})
    df = pd.DataFrame({"level": PLANTED + ["a\n````\n# heading\n````{=html}\n<img src=x onerror=alert(1)>"],
                       "n": range(len(PLANTED) + 1)})
    PubTable(df, [Col("level", "Level " + PLANTED[0], fmt="text", relabel=False), Col("n", "n", fmt="int")],
             caption="Planted levels of " + md_text(ONE) + " (see @tbl-planted).", label="tbl-planted", notes="Notes: " + ONE).write(paths.tables, "planted")
    (tmp_path / "t").mkdir(exist_ok=True)
    (tmp_path / "t" / "paper.qmd.j2").write_text(TEMPLATE)
    paper = dict(title="Title " + ONE, keywords=PLANTED[:3],
                 abstract="Literal " + ONE + "\n- not a list\n\n    not code << values.n >> and << values.text >>")
    qmd = render_qmd(paths, tmp_path / "t", paper=paper, labels={"planted_id": "Label " + ONE})
    out = {"qmd": qmd}
    if "html" in to:
        out["html"] = render_html(qmd)
    if "pdf" in to:
        out["pdf"] = render_pdf(qmd, paths.build)
    if "latex" in to:
        out["latex"] = render_latex(qmd)
    return out


def test_planted_configuration_text_is_literal_in_the_html(tmp_path):
    out = _render(tmp_path, ("html",))
    html = out["html"].read_text()
    page = _parse(html)
    text = " ".join("".join(page.text).split())
    for s in PLANTED:
        assert s in text, f"{s!r} is not shown literally in the HTML"
    assert text.count(ONE) >= 6, "title, abstract (2), prose, label, table caption, notes"
    # the values added no element: the only emphasis, bold and maths are the template's own
    tags = [t for t, _ in page.tags]
    assert re.findall(r"<em>(.*?)</em>", html) == ["intended emphasis"]
    assert set(re.findall(r"<strong>(.*?)</strong>", html)) == {"intended bold", "Table 1:"}  # "Table 1:": crossref.lua
    assert tags.count("math") == 1  # the template's $a^2 + b$ (MathML), none from "$x^2$"
    assert tags.count("script") == _OWN_SCRIPTS and "<script>alert(1)" not in html
    assert "img" not in tags and "sub" not in tags and "i" not in tags
    assert not [a for t, a in page.tags if t == "a" and not a.get("href", "").startswith("#")], \
        "a link that did not come from the template"
    assert not any(k.startswith("on") for _, a in page.tags for k in a)
    assert "PWNED" not in html and "root:" not in html  # nothing of /etc/hostname or /etc/passwd embedded
    # the cross-reference written by the template resolves; the planted "@tbl-x" stays text
    assert 'href="#tbl-planted"' in html
    # the abstract's literal words are text: no list, no code block
    assert "- not a list" in text and "not code 3 and" in text
    assert "<pre" not in html and "<li>" not in html.split("</header>")[0]


def test_planted_text_is_literal_in_the_pdf_and_the_latex(tmp_path):
    from discbias.report.checks import pdf_text

    out = _render(tmp_path, ("pdf", "latex"))
    pdf = " ".join(" ".join(pdf_text(out["pdf"])).split())
    for s in ["**bold?**", "<b>tag?</b>", r"\textbf{tex?}", "#set text(red)", "$x^2$", "![](/etc/hostname)",
              "@tbl-x", "_under_", "~sub~", "<script>alert(1)</script>"]:
        assert s in pdf, f"{s!r} is not shown literally in the PDF"
    tex = out["latex"].read_text()
    assert r"\textbackslash{}textbf\{tex?\}" in tex and r"\textbf{tex?}" not in tex
    assert r"\$x\^{}2\$" in tex or r"\$x\textasciicircum{}2\$" in tex
    assert r"\includegraphics" not in tex and "/etc/hostname" in tex
    # the template's own formatting survives
    assert r"\emph{intended emphasis}" in tex and r"\textbf{intended bold}" in tex


def test_a_value_cannot_close_a_raw_block_of_a_table(tmp_path):
    """A cell with line breaks and a fence stays one line inside the Typst, HTML and LaTeX raw blocks."""
    from discbias.report.tables import Col, PubTable

    cell = "a\n````\n# heading\n````{=html}\n<img src=x onerror=alert(1)>"
    t = PubTable(pd.DataFrame({"v": [cell]}), [Col("v", "V", fmt="text")], caption="C `x` \\*y\\*.", label="tbl-c")
    qmd = t.to_qmd()
    fences = [line for line in qmd.splitlines() if line.lstrip().startswith(("```", "~~~"))]
    assert fences == ["````{=latex}", "````", "````{=typst}", "````", "````{=html}", "````", "````{=typst}", "````",
                      "````{=html}", "````"]  # five raw blocks, each opened and closed by the table itself
    html_blocks = re.findall(r"````\{=html\}\n(.*?)\n````", qmd, re.S)
    assert len(html_blocks) == 2 and "<img" not in "".join(html_blocks)
    assert "C `x` \\*y\\*." in qmd  # the caption's subset: code, escaped text
    plain = PubTable(pd.DataFrame({"v": ["**x** | y"]}), [Col("v", "V", fmt="text")]).to_markdown()
    assert r"\*\*x\*\* \| y" in plain


def test_the_audit_template_prints_planted_data_as_text(tmp_path):
    """The audit report's template with a group column, level, model and claim named by an attacker."""
    from discbias.audit.report import TEMPLATE_DIR
    from discbias.report.render import render_html, render_qmd
    from discbias.report.tables import PubTable

    bad = "x` ![](/etc/hostname) <b>y</b> **z** {#w}"
    values = dict(meta=dict(title="Audit " + bad, build_date="2026-01-01", stand_in=False, config="a`.toml",
                            config_sha256="0" * 64),
                  networks=[dict(id="n", sha="0" * 16, column="score")], n_images=2, n_listed=2,
                  primary_protocol="p` <b>", provenance=dict(network=dict(weights_sha256="0" * 64, c_dim=0)),
                  claims=[dict(claim_id="c` ![](/etc/hostname) `", reading=bad, verdict="robust")],
                  hashes=[dict(what=bad, sha256="0" * 64)], n_failures=0, n_data_issues=0, items=[],
                  groups=[dict(name=bad, fig_label="fig-score-by-g} ![](/etc/hostname) {", label="tbl-scores-g",
                               table="scores_g", figure="score_by_g")],
                  figures={}, has_reliability=False, models=[])
    paths = _paths(tmp_path, values)
    for name in ("provenance", "claims", "scores_g"):
        PubTable(pd.DataFrame({"a": [bad]}), caption="T.", label=f"tbl-{name.replace('_', '-')}").write(paths.tables, name)
    (paths.figures / "score_by_g.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"/>')
    qmd = render_qmd(paths, TEMPLATE_DIR, "audit.qmd.j2")
    html = render_html(qmd).read_text()
    page = _parse(html)
    text = " ".join("".join(page.text).split())
    assert "<b>y</b> **z**" in text and "![](/etc/hostname)" in text
    tags = [t for t, _ in page.tags]
    assert "b" not in tags and tags.count("script") == _OWN_SCRIPTS
    assert all(re.fullmatch(r"(Table|Figure) \d+:", x) for x in re.findall(r"<strong>(.*?)</strong>", html))
    assert "c` ![](/etc/hostname) `" in text and "p` <b>" in text  # code spans hold backticks literally
    imgs = [a.get("src", "") for t, a in page.tags if t == "img"]
    assert len(imgs) == 1 and imgs[0].startswith("data:image/svg+xml")  # the build's own figure only


def test_the_real_templates_print_planted_front_matter_as_text(synthetic_build, tmp_path):
    """The paper's own templates, with a planted title, abstract, keywords, author and labels: the
    rendered HTML shows them as text and the template's own formatting is unchanged."""
    import shutil

    from discbias.paths import project_paths
    from discbias.report.labels import DEFAULT_LABELS
    from discbias.report.render import paper_metadata, render_html, render_qmd

    root = tmp_path / "p"
    shutil.copytree(synthetic_build / "build", root / "build", ignore=shutil.ignore_patterns("cache"))
    paths = project_paths(root)
    repo = Path(__file__).resolve().parents[2]
    meta = lambda **k: paper_metadata(NS(title="", raw={"paper": k}))  # noqa: E731
    before = render_qmd(paths, repo / "report", paper=meta(title="T", abstract="A.", keywords=["k"])).read_text()
    key = next(k for k in DEFAULT_LABELS if "_" in k)
    paper = meta(title="T " + ONE, abstract="A " + ONE + " << values.meta.study_id >>", keywords=PLANTED[:4],
                 authors=[dict(name="N " + ONE, affiliation="<b>aff</b>")])
    qmd = render_qmd(paths, repo / "report", paper=paper, labels={key: "L " + PLANTED[0]})
    html = render_html(qmd).read_text()
    page = _parse(html)
    text = " ".join("".join(page.text).split())
    assert text.count(ONE) >= 3 and "<b>aff</b>" in text
    # the body is the body of the unplanted render (front matter aside): nothing else changed
    body = lambda s: s.split("\n---\n", 1)[1]  # noqa: E731
    changed = [(a, b) for a, b in zip(body(before).splitlines(), body(qmd.read_text()).splitlines()) if a != b]
    assert all(PLANTED[0].replace("*", "\\*") in b for _, b in changed), changed[:3]


# ------------------------------------------------------------------------------ Quarto
def _fake_quarto(tmp_path, monkeypatch, run_pandoc: bool = False) -> Path:
    """A ``quarto`` on the PATH that records its arguments, environment and input, and (optionally)
    runs pandoc with the filters the input's front matter names, as Quarto does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "quarto-calls.jsonl"
    script = bin_dir / "quarto"
    script.write_text(f"""#!{sys.executable}
import json, os, re, subprocess, sys
args = sys.argv[1:]
src = args[1]
text = open(src).read()
front = re.match(r"---\\n(.*?)\\n---\\n", text, re.S).group(1)
with open({str(record)!r}, "a") as f:
    f.write(json.dumps(dict(args=args, cwd=os.getcwd(), front=front,
                            root=os.environ.get("DISCBIAS_RESOURCE_ROOT"))) + "\\n")
out = args[args.index("--output") + 1]
if {run_pandoc!r}:
    filters = re.findall(r'^  - "(.*)"$', front, re.M)
    cmd = [os.environ["PYPANDOC_PANDOC"], src, "--to=html5", "--embed-resources", "--standalone",
           "--output=" + out] + ["--lua-filter=" + f for f in filters]
    p = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    sys.exit(p.returncode)
open(out, "w").write("<html>rendered</html>")
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def _qmd(tmp_path, body: str) -> Path:
    report = tmp_path / "build" / "report"
    report.mkdir(parents=True)
    qmd = report / "paper.qmd"
    qmd.write_text("---\ntitle: t\nformat:\n  html:\n    embed-resources: true\n---\n\n" + body + "\n")
    return qmd


def test_quarto_gets_the_confinement_filter_and_no_code_execution(tmp_path, monkeypatch):
    from discbias.report.render import CONFINE_FILTER, pandoc_path, render_quarto

    pandoc_path()
    record = _fake_quarto(tmp_path, monkeypatch)
    qmd = _qmd(tmp_path, "Text.")
    outs = render_quarto(qmd, tmp_path / "build", ["html", "pdf"])
    assert [o.name for o in outs] == ["paper.html", "paper.pdf"]
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(calls) == 2
    for c in calls:
        assert c["args"][:2] == ["render", "paper.quarto.qmd"] and "--no-execute" in c["args"]
        assert c["front"].startswith(f"filters:\n  - {json.dumps(str(CONFINE_FILTER))}\nexecute:\n  enabled: false\n")
        assert "title: t" in c["front"]
        assert c["root"] == str((tmp_path / "build").resolve())
    assert not (qmd.parent / "paper.quarto.qmd").exists()  # the copy is removed


@pytest.mark.parametrize("body,problem", [
    ("![](/etc/hostname)", "refused"),
    ('<img srcset="ok.png 1x, /etc/hostname 2x">', "refused"),
    ("{{< include /etc/passwd >}}", "shortcode"),
    ("```{python}\nopen('PWNED', 'w')\n```", "executable code cell"),
])
def test_quarto_never_runs_on_a_document_that_reaches_outside(tmp_path, monkeypatch, body, problem):
    from discbias.report.render import RenderError, pandoc_path, render_quarto

    pandoc_path()
    record = _fake_quarto(tmp_path, monkeypatch)
    qmd = _qmd(tmp_path, body)
    with pytest.raises(RenderError, match=problem):
        render_quarto(qmd, tmp_path / "build", ["html"])
    assert not record.exists(), "quarto ran"


def test_quarto_front_matter_that_adds_filters_is_refused(tmp_path, monkeypatch):
    from discbias.report.render import RenderError, pandoc_path, render_quarto

    pandoc_path()
    record = _fake_quarto(tmp_path, monkeypatch)
    qmd = _qmd(tmp_path, "Text.")
    qmd.write_text(qmd.read_text().replace("title: t\n", "title: t\nfilters:\n  - evil.lua\n"))
    with pytest.raises(RenderError, match="'filters'"):
        render_quarto(qmd, tmp_path / "build", ["html"])
    assert not record.exists()


def test_the_filter_quarto_is_given_refuses_on_its_own(tmp_path, monkeypatch):
    """With the pre-flight check skipped, the filter named in the front matter Quarto reads still
    refuses a file outside the build (the fake quarto runs pandoc with those filters, as Quarto does)."""
    import discbias.report.render  # noqa: F401

    r = sys.modules["discbias.report.render"]
    r.pandoc_path()
    _fake_quarto(tmp_path, monkeypatch, run_pandoc=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    qmd = _qmd(tmp_path, f"![]({secret})")
    monkeypatch.setattr(r, "_pandoc", lambda *a, **k: [])
    with pytest.raises(r.RenderError, match="refused"):
        r.render_quarto(qmd, tmp_path / "build", ["html"])
    assert not qmd.with_suffix(".html").exists() or "TOPSECRET" not in qmd.with_suffix(".html").read_text()
    ok = _qmd(tmp_path / "ok", "Fine.")
    assert r.render_quarto(ok, tmp_path / "ok" / "build", ["html"])[0].exists()


def test_render_uses_the_confined_quarto_path(tmp_path, monkeypatch):
    import discbias.report.render  # noqa: F401

    r = sys.modules["discbias.report.render"]

    seen = {}
    monkeypatch.setattr(r, "render_quarto", lambda qmd, root, formats, warnings=None: seen.update(
        root=root, formats=formats) or [])
    monkeypatch.setattr(r, "render_qmd", lambda *a, **k: tmp_path / "paper.qmd")
    monkeypatch.setattr(r, "run_checks", lambda **k: [], raising=False)
    import discbias.report.checks as checks

    monkeypatch.setattr(checks, "run_checks", lambda **k: [])
    paths = NS(build=tmp_path, report=tmp_path, figures=tmp_path / "nofig")
    r.render(NS(raw={}, title="t"), paths, formats=("html",), use_quarto=True)
    assert seen == dict(root=tmp_path, formats=["html"])
