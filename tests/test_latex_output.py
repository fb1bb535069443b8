"""Journal-ready outputs: a standalone paper.tex that compiles with pdflatex (Debian TeX Live),
tables that fit the article text width with no overfull box, and Word / JATS through pandoc."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from latex_check import PREAMBLE, check_structure, compile_tables, overfull, tex_engine

from discbias.paths import ProjectPaths
from discbias.report.render import LATEX_PREAMBLE, render_latex, render_pandoc, render_qmd
from discbias.report.tables import Col, PubTable

needs_tex = pytest.mark.skipif(tex_engine() is None, reason="no pdflatex or tectonic: apt-get install -y "
                               "latexmk texlive-latex-extra texlive-science texlive-fonts-recommended")


def _tables():
    rng = np.random.default_rng(0)
    narrow = PubTable(pd.DataFrame({"term": ["red_mean", "blue_mean"], "estimate": [-0.51, 1e-15],
                                    "conf_low": [-0.9, -0.1], "conf_high": [-0.1, 0.2], "p_value": [1e-6, 0.04]}),
                      [Col("term", "Term"), Col("estimate", digits=2),
                       Col("conf_low", "95% CI", fmt="interval", high="conf_high"), Col("p_value", fmt="p")],
                      caption="A narrow table.", label="tbl-narrow")
    long_text = ["The model of score on the per-image mean ratings with Student-t slopes and the paper's priors "
                 f"number {i}, fitted on the aggregated set" for i in range(6)]
    wide = PubTable(pd.DataFrame({"model": [f"model_{i}" for i in range(6)], "description": long_text,
                                  "formula": ["score ~ masculinity + femininity + skintone + afrocentric + eurocentric"] * 6,
                                  "n": rng.integers(100, 70000, 6), "r2": rng.random(6), "aic": rng.random(6) * 1e4,
                                  "converged": [True] * 6}),
                    [Col("model", fmt="code"), "description", Col("formula", fmt="code"), Col("n", fmt="int"),
                     Col("r2", "R²", digits=3), Col("aic", "AIC", digits=1), Col("converged", fmt="bool")],
                    caption="A wide table with long text.", label="tbl-wide")
    many = PubTable(pd.DataFrame({f"c{k}": rng.random(50) * 1000 for k in range(14)}),
                    [Col(f"c{k}", f"Column {k}", digits=2) for k in range(14)],
                    caption="A long table too wide for portrait.", label="tbl-many")
    decimal = PubTable(pd.DataFrame({"term": ["a", "b"], "n": [70000, 3], "b": [-12.5, 0.25], "p": [0.0001, 0.5]}),
                       [Col("term", "Term"), Col("n", fmt="int"), Col("b", "Estimate", digits=2), Col("p", fmt="p")],
                       caption="Numbers aligned on the decimal point.", label="tbl-decimal")
    return {"narrow": narrow, "wide": wide, "many": many, "decimal": decimal}


def test_number_columns_align_on_the_decimal_point_and_p_values_and_text_do_not():
    t = PubTable(pd.DataFrame({"term": ["a", "b", "c"], "n": [70000, 512, 3], "b": [-12.5, 1.25, 0.5],
                               "p_value": [0.0001, 0.034, 0.5], "lo": [-1.0, 3.0, 5.0], "hi": [2.0, 4.0, 6.0]}),
                 [Col("term", "Term"), Col("n", fmt="int"), Col("b", "Estimate", digits=2), Col("p_value", fmt="p"),
                  Col("lo", "95% CI", fmt="interval", high="hi")], caption="Decimal alignment.", label="tbl-dec")
    tex = t.to_latex()
    spec = tex.split(r"\begin{tabular}{", 1)[1].split("}\n", 1)[0]
    assert spec == "lS[table-format=5.0]S[table-format=-2.2]rr", spec
    assert "a & 70000 & -12.50 &" in tex and "{Estimate}" in tex
    assert check_structure(tex) == []


def test_scientific_notation_is_maths_and_tables_have_their_structure():
    t = _tables()
    tex = t["narrow"].to_latex()
    assert r"\ensuremath{1.0 \times 10^{-15}}" in tex and "^{-}^" not in tex
    assert {k: check_structure(v.to_latex()) for k, v in t.items() if check_structure(v.to_latex())} == {}
    assert r"p{" in t["wide"].to_latex() and r"\begin{longtable}" in t["many"].to_latex()
    assert r"\begin{landscape}" in t["many"].to_latex() and r"\begin{landscape}" not in t["narrow"].to_latex()


@needs_tex
def test_standalone_tables_compile_at_article_width_without_overfull_boxes(tmp_path):
    paths = []
    for name, t in _tables().items():
        p = tmp_path / f"{name}.tex"
        p.write_text(t.to_latex())
        paths.append(p)
    proc = compile_tables(paths, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (tmp_path / "tables.log").read_text(errors="replace")
    assert overfull(log) == [], overfull(log)


@pytest.fixture
def paper(tmp_path):
    paths = ProjectPaths(tmp_path).ensure()
    paths.values.write_text(json.dumps({"b": -1.9149, "low": -3.8032, "high": 0.0771, "p": 0.9713}))
    for name, t in _tables().items():
        t.write(paths.tables, name)
    tdir = tmp_path / "templates"
    (tdir / "sections").mkdir(parents=True)
    (tdir / "paper.qmd.j2").write_text(
        '---\ntitle: "T"\nlang: en\n---\n\n# Results {#sec-results}\n\n'
        "The slope is << estimate(values.b, values.low, values.high, kind='HDI', prob=values.p) >> "
        "(@tbl-narrow, @tbl-wide, @tbl-many); the authors’ model −1 × 10⁻⁵ ≥ 0.\n\n"
        "<< table('narrow') >>\n\n<< table('wide') >>\n\n<< table('many') >>\n")
    return paths, render_qmd(paths, tdir)


def test_paper_tex_is_standalone_with_the_tables_latex(paper):
    paths, qmd = paper
    tex = render_latex(qmd).read_text()
    assert tex.startswith("%") or r"\documentclass" in tex
    assert r"\begin{document}" in tex and r"\end{document}" in tex
    assert r"\DeclareUnicodeCharacter{2212}" in tex and r"\label{tbl-wide}" in tex
    assert r"\begin{longtable}" in tex and "typst" not in tex.lower() and "<figure" not in tex
    # cross-references print "Table N" with LaTeX's own numbering (no "Table 1:" typed into a caption)
    assert "Table~1" in tex or "Table\u00a01" in tex or "Table 1" in tex


def _lmodern() -> bool:
    return bool(shutil.which("kpsewhich")) and subprocess.run(["kpsewhich", "lmodern.sty"], capture_output=True,
                                                              text=True).stdout.strip() != ""


@needs_tex
@pytest.mark.skipif(not _lmodern(), reason="pandoc's LaTeX template needs lmodern.sty: apt-get install -y lmodern")
def test_paper_tex_compiles_without_overfull_boxes(paper):
    paths, qmd = paper
    tex = render_latex(qmd)
    engine = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error"] if shutil.which("latexmk") else \
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    proc = subprocess.run([*engine, tex.name], cwd=tex.parent, capture_output=True, text=True, errors="replace",
                          timeout=300)
    log = tex.with_suffix(".log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert overfull(log) == [], overfull(log)


def test_docx_and_jats_through_pandoc(paper):
    paths, qmd = paper
    docx = render_pandoc(qmd, "docx")
    assert docx.read_bytes()[:2] == b"PK"
    jats = render_pandoc(qmd, "jats").read_text()
    assert "<article" in jats and "HDI" in jats


def test_one_preamble_file_lists_the_packages():
    text = LATEX_PREAMBLE.read_text()
    for pkg in ("booktabs", "longtable", "array", "pdflscape"):
        assert f"{{{pkg}}}" in text or f",{pkg}" in text or f"{pkg}," in text
    assert PREAMBLE.count(r"\usepackage{booktabs}") == 1


def test_csv_tables_are_tidy(tmp_path):
    df = pd.DataFrame({"Claim": ["A", "A", "B"], "Spec": ["p", "q", "p"], "low": [0.1, 0.2, 0.3],
                       "est": [1.0, 2.0, 3.0], "high": [1.5, 2.5, 3.5]})
    t = PubTable(df, [Col("Claim"), Col("Spec"), Col("est"), Col("low", "95% CI", fmt="interval", high="high")],
                 caption="C.", label="tbl-c", blank_repeats=("Claim",))
    assert [r[0] for r in t.body()] == ["A", "", "B"]  # printed once per run
    t.to_csv(tmp_path / "c.csv")
    back = pd.read_csv(tmp_path / "c.csv")
    assert back["Claim"].tolist() == ["A", "A", "B"]  # a key on every row
    assert back.columns.tolist()[:5] == ["Claim", "Spec", "est", "low", "high"]  # the high end beside the low end
    tidy = pd.DataFrame({"cell": ["x", "y"], "n": [5401, 3], "mean": [154.7, 1.0]})
    shown = pd.DataFrame({"cell": ["x", "y"], "text": ["154.7 (5401)", "1.0 (3)"]})
    PubTable(shown, caption="C.", label="tbl-d", tidy=tidy).to_csv(tmp_path / "d.csv")
    assert pd.read_csv(tmp_path / "d.csv").columns.tolist() == ["cell", "n", "mean"]


def test_the_latex_author_line_puts_the_affiliation_on_its_own_line(tmp_path):
    # \author{Name (Affiliation (project))} was one unbreakable line, 84 pt too wide at article width
    qmd = tmp_path / "report" / "paper.qmd"
    qmd.parent.mkdir()
    qmd.write_text('---\ntitle: "T"\nauthor:\n  - name: "The contributors"\n    affiliation: "Independent replication '
                   '(an open-source project)"\n---\n\nText.\n')
    tex = render_latex(qmd).read_text()
    assert "\\author{The contributors\\\\\nIndependent replication (an open-source project)}" in tex
