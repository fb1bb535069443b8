"""Template filling and rendering: missing values fail loudly; cross-references resolve."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from discbias.paths import ProjectPaths
from discbias.report.render import RenderError, render_html, render_pdf, render_qmd
from discbias.report.tables import Col, PubTable


@pytest.fixture(autouse=True)
def _replication_labels():
    """The examples use the replication's ids, labelled by its [labels] (analysis/grissom2024.toml)."""
    from discbias.config import load_config
    from discbias.report.labels import labels_from_config, set_labels

    set_labels(labels_from_config(load_config(Path(__file__).resolve().parents[1] / "analysis" / "grissom2024.toml")))
    yield
    set_labels()


@pytest.fixture
def build(tmp_path):
    paths = ProjectPaths(tmp_path).ensure()
    paths.values.write_text(json.dumps({"a": {"b": 1.2345}, "n": None}))
    (paths.tables / "t.md").write_text("| x | y |\n|:--|--:|\n| a | 1.0 |\n")
    df = pd.DataFrame({"term": ["red_mean", "C(race)[T.Black]:C(hair)[short]"], "estimate": [-0.5, 1234.5],
                       "conf_low": [-0.9, 1000.0], "conf_high": [-0.1, 1500.0], "p_value": [1e-6, 0.04]})
    PubTable(df, [Col("term", "Term"), "estimate", Col("conf_low", "95% CI", fmt="interval", high="conf_high"),
                  Col("p_value", fmt="p")], caption="Pub caption with `code` and @tbl-t.", label="tbl-pub",
             notes="Note: interval is a 95% CI.", spanners={"OLS": ["estimate", "conf_low"]}).write(paths.tables, "pub")
    tdir = tmp_path / "templates"
    (tdir / "sections").mkdir(parents=True)
    return paths, tdir


def _write(tdir, body, sections=()):
    (tdir / "paper.qmd.j2").write_text('---\ntitle: "T"\n---\n\n' + body +
                                       "\n<% for s in section_files() %>\n<% include s %>\n<% endfor %>\n")
    for name, text in sections:
        (tdir / "sections" / name).write_text(text)


def test_values_and_tables_fill_the_template(build):
    paths, tdir = build
    _write(tdir, "Value << values.a.b | num(2) >>.\n\n<< table('t') >>\n\n: Cap. {#tbl-t}\n\nSee @tbl-t.\n",
           [("10-x.qmd.j2", "Section << values.a.b | num(1) >>\n")])
    qmd = render_qmd(paths, tdir).read_text()
    assert "Value 1.23." in qmd and "| a | 1.0 |" in qmd and "Section 1.2" in qmd


def test_printed_values_use_a_true_minus_sign(build):
    paths, tdir = build
    paths.values.write_text(json.dumps({"a": {"b": -1.5, "s": "paper: -2.6 [-3.4, -1.8] in 2020-21"}}))
    _write(tdir, "A << values.a.b >>, B << values.a.b | num(1) >>, C << values.a.s >>.\n")
    qmd = render_qmd(paths, tdir).read_text()
    # (a printed string is literal Markdown text: its ":" and brackets are backslash-escaped)
    assert "A \u22121.5, B \u22121.5, C paper\\: \u22122.6 \\[\u22123.4, \u22121.8\\] in 2020-21." in qmd


def test_missing_value_is_a_render_error_naming_it(build):
    paths, tdir = build
    _write(tdir, "<< values.a.missing_key >>")
    with pytest.raises(RenderError, match="missing_key"):
        render_qmd(paths, tdir)


def test_null_value_is_a_render_error_not_a_blank(build):
    paths, tdir = build
    _write(tdir, "<< values.n | num >>")
    with pytest.raises(RenderError, match="missing"):
        render_qmd(paths, tdir)


def test_missing_table_and_figure_are_errors(build):
    paths, tdir = build
    _write(tdir, "<< table('nope') >>")
    with pytest.raises(RenderError, match="table 'nope' is missing"):
        render_qmd(paths, tdir)
    _write(tdir, "<< figure('nope') >>")
    with pytest.raises(RenderError, match="figure 'nope' is missing"):
        render_qmd(paths, tdir)


@pytest.mark.slow
def test_crossrefs_resolve_in_html_and_pdf(build):
    paths, tdir = build
    _write(tdir, "# Intro {#sec-intro}\n\nSee @tbl-t and @sec-intro.\n\n<< table('t') >>\n\n: Cap. {#tbl-t}\n")
    qmd = render_qmd(paths, tdir)
    html = render_html(qmd).read_text()
    assert 'href="#tbl-t"' in html and "Table\u00a01" in html and "Table 1:" in html
    pdf = render_pdf(qmd, paths.build)
    assert pdf.read_bytes()[:4] == b"%PDF"
    assert "#link(<tbl-t>)" in qmd.with_suffix(".typ").read_text()


@pytest.mark.slow
def test_publication_table_keeps_caption_label_and_numbering(build):
    paths, tdir = build
    _write(tdir, "See @tbl-pub and @tbl-t.\n\n<< table('t') >>\n\n: Cap. {#tbl-t}\n\n<< table('pub') >>\n")
    qmd = render_qmd(paths, tdir)
    html = render_html(qmd).read_text()
    # the publication table is Table 2, its caption prefixed and holding the converted reference
    assert '<div id="tbl-pub" class="pubtable">' in html and "<strong>Table 2:</strong> Pub caption" in html
    assert 'href="#tbl-t"' in html and "<code>code</code>" in html and 'class="table-scroll"' in html
    assert "\u22120.50" in html and "< .001" in html.replace("&lt;", "<") and "Mean red" in html
    assert "red_mean" not in html and "C(race)" not in html
    pdf = render_pdf(qmd, paths.build)
    typ = qmd.with_suffix(".typ").read_text()
    assert "<tbl-pub>" in typ and "table.header(repeat: true" in typ and "#link(<tbl-pub>)" in typ
    import subprocess
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    if text:  # poppler present: caption, number and cells are in the PDF, caption before the table
        assert "Table 2: Pub caption" in " ".join(text.split()) and text.index("Pub caption") < text.index("Mean red")


def test_unresolved_crossref_fails(build):
    paths, tdir = build
    _write(tdir, "See @fig-nothing.\n")
    with pytest.raises(RenderError, match="fig-nothing"):
        render_html(render_qmd(paths, tdir))


def test_crossref_glued_to_text_is_an_error(build):
    paths, tdir = build
    _write(tdir, "<< table('t') >>\n\n: Cap. {#tbl-t}\n\nSee the data.@tbl-t for more.\n")
    with pytest.raises(RenderError, match="glued"):
        render_qmd(paths, tdir)


def test_section_refs_print_the_rendered_number_subsections_included(build):
    paths, tdir = build
    _write(tdir, "# One {#sec-one}\n\n## Sub {#sec-sub}\n\n# Refs {#sec-refs .unnumbered}\n\n"
                 "# Two {#sec-two}\n\n## Later {#sec-later}\n\n"
                 "# Appendix A: Extra {#sec-app .unnumbered label=\"Appendix A\"}\n\n"
                 "See @sec-sub, @sec-two, @sec-later and @sec-app.\n")
    html = render_html(render_qmd(paths, tdir)).read_text()
    for target, text in (("sec-sub", "Section\u00a01.1"), ("sec-two", "Section\u00a02"),
                         ("sec-later", "Section\u00a02.1"), ("sec-app", "Appendix A")):
        assert f'<a href="#{target}">{text}</a>' in html, target
    from discbias.report.checks import check_numbering
    assert check_numbering(html=html) == []


def test_an_affiliation_with_parentheses_is_not_nested_in_the_html_author_line(tmp_path):
    # the replication's author line read "(Independent replication (discbias open-source project))"
    qmd = tmp_path / "report" / "a.qmd"
    qmd.parent.mkdir()
    qmd.write_text('---\ntitle: "T"\nauthor:\n  - name: "The contributors"\n    affiliation: "Replication (open project)"\n'
                   '  - name: "A. Person"\n    affiliation: "A University"\n---\n\nText.\n')
    html = render_html(qmd).read_text()
    assert "The contributors, Replication (open project)" in html
    assert "A. Person (A University)" in html
    assert "((" not in html.replace(" ", "") and "))" not in html.split("<body", 1)[1].split("</header>")[0]


def test_main_text_figures_float_and_the_back_matter_keeps_them_in_place(build):
    # a figure that does not fit below the text before it floats (no hole); after the references it stays put
    from discbias.report.render import default_template_dir

    paths, tdir = build
    body = (Path(default_template_dir()) / "paper.qmd.j2").read_text()
    start = body.index("```{=typst}")
    block = body[start:body.index("```\n", start + 3) + 4]
    assert "#set figure(placement: auto)" in block
    refs = (Path(default_template_dir()) / "sections" / "98-references.qmd.j2").read_text()
    assert refs.index("#set figure(placement: none)") < refs.index("# References")
    # a long (breakable) publication table never floats: a float cannot break across pages
    long = PubTable(pd.DataFrame({"x": range(40)}), caption="Long.", label="tbl-long").to_typst()
    short = PubTable(pd.DataFrame({"x": range(4)}), caption="Short.", label="tbl-short").to_typst()
    assert "placement: none" in long and "placement" not in short


def test_the_provenance_table_names_each_steps_code_files_and_results(tmp_path):
    from discbias.report.render import provenance_table
    from discbias.stages import code_file

    paths = ProjectPaths(tmp_path).ensure()
    rec = [dict(saved=["figure:s1_hist", "table:s1_tests"], provenance=dict(
               step="study1:figures", code=code_file(provenance_table), reads=["results/study1_tests.csv", "values.json"])),
           dict(saved=["table:claims"], files={})]  # a record without provenance (an older build) is left out
    md = provenance_table(rec, paths).read_text()
    csv = pd.read_csv(paths.tables / "figure_provenance.csv")
    assert csv["step"].tolist() == ["study1:figures"]
    assert csv["code"].tolist() == ["src/discbias/report/render.py"]
    assert csv["made"].tolist() == ["figures/s1_hist.svg, tables/s1_tests.csv"]
    assert "results/study1_tests.csv" in csv["reads"][0] and "tbl-figure-provenance" in md
    assert provenance_table([], paths) is None


def test_each_html_figure_and_table_names_the_step_code_and_results_that_made_it(tmp_path):
    from discbias.report.checks import run_reader_checks
    from discbias.report.render import html_provenance

    report, tables = tmp_path / "report", tmp_path / "tables"
    report.mkdir()
    tables.mkdir()
    (report / "paper.qmd").write_text("![A figure.](../figures/s1_hist.svg){#fig-one width=90%}\n")
    (tables / "s1_tests.md").write_text("::: {#tbl-two .pubtable}\n")
    html = report / "paper.html"
    html.write_text('<html><body><h1>Results</h1><figure id="fig-one"><img src="x"/><figcaption>Figure 1: A figure.'
                    '</figcaption></figure><div id="tbl-two" class="pubtable"><figure class="pubtable"><figcaption>'
                    'Table 1: A table.</figcaption><table><tr><td>1</td></tr></table></figure></div></body></html>')
    rec = [dict(saved=["figure:s1_hist", "table:s1_tests"], provenance=dict(
        step="study1:figures", code="src/discbias/report/figures/study1.py", reads=["results/study1_tests.csv"]))]
    assert html_provenance(html, rec, tables) == 2
    text = html.read_text()
    for ident in ("fig-one", "tbl-two"):
        block = text[text.index(f'id="{ident}"'):]
        block = block[:block.index("</figure>")]
        assert "<code>study1:figures</code>" in block and "<code>results/study1_tests.csv</code>" in block
        assert "<code>src/discbias/report/figures/study1.py</code>" in block
    assert run_reader_checks(html=text) == []  # the notes are code and a link: nothing a reader check objects to
    assert html_provenance(html, [], tables) == 0
