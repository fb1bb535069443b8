"""Render checks: each check fails on a small fixture that has the problem and passes without it."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from discbias.paths import ProjectPaths
from discbias.report import checks
from discbias.report.render import PAGE_MARGIN, RenderError, render, render_html, render_qmd

PRELUDE = "".join(Path(checks.__file__).with_name(n).read_text() for n in ("typst-header.typ", "typst-checks.typ"))
PAGE = '#set page(paper: "a4", margin: (x: 1.25in, y: 1.25in))\n#set heading(numbering: "1.1")\n'


def _typ(tmp_path, body, name="t.typ"):
    p = tmp_path / name
    p.write_text(PRELUDE + PAGE + body)
    return p


def _pdf(tmp_path, body, name="t"):
    import typst

    typ = _typ(tmp_path, body, f"{name}.typ")
    pdf = tmp_path / f"{name}.pdf"
    typst.compile(str(typ), output=str(pdf))
    return typ, pdf


# ------------------------------------------------------------------------------------- overflow
def test_overflow_finds_text_beyond_the_right_margin(tmp_path):
    _, bad = _pdf(tmp_path, "Fine text.\n\n#pagebreak()\n#box(width: 560pt)[#lorem(40)]\n", "bad")
    found = checks.check_overflow(bad, PAGE_MARGIN)
    assert [f.where for f in found] == ["page 2"]
    assert "right margin" in found[0].message
    _, good = _pdf(tmp_path, "#lorem(200)\n", "good")
    assert checks.check_overflow(good, PAGE_MARGIN) == []


def test_overlap_finds_a_word_running_into_the_next_column(tmp_path):
    _, bad = _pdf(tmp_path, "#table(columns: (30pt, 30pt), [unbreakablewordhere], [next], [a], [b])\n", "bad")
    found = checks.check_overlap(bad)
    assert [f.where for f in found] == ["page 1"] and "unbreakab" in found[0].message
    _, good = _pdf(tmp_path, "#lorem(100)\n#table(columns: (80pt, 80pt), [short], [next])\n", "good")
    assert checks.check_overlap(good) == []


FIXTURES = {  # name -> (Typst body, the findings the checks must report)
    "lorem": ("#lorem(300)\n#table(columns: (80pt, 80pt), [short], [next])\n", []),
    "cell": ("#table(columns: (30pt, 30pt), [unbreakablewordhere], [next], [a], [b])\n", [("overlap", "page 1")]),
    "mono": ("#table(columns: (40pt, 40pt), [`s1x_spline_exposure_value`], [`score`])\n", [("overlap", "page 1")]),
    "math": ("#table(columns: (20pt, 30pt), [$sum_(i=1)^n beta_i x_i$], [next])\n", [("overlap", "page 1")]),
    "italic": ("#table(columns: (25pt, 30pt), [_Affluently_], [Quo])\n", [("overlap", "page 1")]),
    "margin": ("Fine.\n#pagebreak()\n#box(width: 560pt)[#lorem(40)]\n", [("overflow", "page 2")]),
    # ligatures (fi, ff), a Q whose tail inks past its advance, code with zero-width spaces after
    # underscores (one glyph, two characters), super- and subscripts, math: nothing overlaps
    "clean": ("Text $sum_(i=1)^n beta_i x_i^2 + sigma^2$ and _italic ff fi Quod_ and `code_with_under`; "
              "x#super[2], H#sub[2]O, 10#super[−3].\n#table(columns: 3, [Quod], [$beta$], [`x_y`])\n"
              "#table(columns: 2, [first_\\u{200B}second_\\u{200B}third], [office affluent])\n", []),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_overflow_and_overlap_findings_on_fixtures(tmp_path, name):
    body, expected = FIXTURES[name]
    _, pdf = _pdf(tmp_path, body, name)
    found = [(f.check, f.where) for f in checks.check_overflow(pdf, PAGE_MARGIN) + checks.check_overlap(pdf)]
    assert found == expected


def test_pdfium_characters_agree_with_pdfminer(tmp_path, monkeypatch):
    """The PDFium reader gives pdfminer's (pdfplumber's) advance boxes, and the checks the same findings."""
    pdfplumber = pytest.importorskip("pdfplumber", reason="pdfplumber (the dev extra) is the reference reader")

    def pdfminer_chars(path):
        with pdfplumber.open(path) as doc:
            return [(float(pg.width), float(pg.height),
                     [{**{k: c[k] for k in ("text", "x0", "x1", "top", "bottom")}, "baseline": c["top"]}
                      for c in pg.chars]) for pg in doc.pages]

    for name, (body, _) in sorted(FIXTURES.items()):
        _, pdf = _pdf(tmp_path, body, name)
        ours = checks._read_pdf_chars(str(pdf))
        ref = pdfminer_chars(str(pdf))
        assert len(ours) == len(ref)
        for (w, h, a), (w2, h2, b) in zip(ours, ref):
            assert (w, h) == pytest.approx((w2, h2))
            # every visible pdfminer character has a PDFium character with its text at its left edge,
            # and (ligatures and zero-width spaces aside, which pdfminer splits differently) its right edge
            vis = lambda t: t.replace("\u200b", "").strip()  # noqa: E731
            for c in (c for c in b if vis(c["text"])):
                near = [d for d in a if vis(d["text"])[:1] == vis(c["text"])[0] and abs(d["x0"] - c["x0"]) < 0.1
                        and abs(d["bottom"] - c["bottom"]) < 8]
                assert near, (name, c)
                if len(near[0]["text"]) == 1 and len(c["text"]) == 1 and c["text"] not in "fQ":
                    assert near[0]["x1"] == pytest.approx(c["x1"], abs=0.15), (name, c, near[0])
        results = {}
        for label, reader in (("pdfium", checks._read_pdf_chars), ("pdfminer", pdfminer_chars)):
            monkeypatch.setattr(checks, "_read_pdf_chars", reader)
            checks._PAGES.clear()
            results[label] = [(f.check, f.where, f.message.split(":")[0])
                              for f in checks.check_overflow(pdf, PAGE_MARGIN) + checks.check_overlap(pdf)]
        monkeypatch.undo()
        checks._PAGES.clear()
        assert results["pdfium"] == results["pdfminer"], name


# -------------------------------------------------------------------------------- split caption
def test_caption_on_another_page_than_its_table_is_found(tmp_path):
    body = ("#show figure.where(kind: table): set figure.caption(position: top)\n"
            "#figure(kind: table, caption: [Alone.], block(breakable: true)[#v(23cm) #table(columns: 2, [a], [b])]) <tbl-a>\n")
    typ = _typ(tmp_path, body)
    found = checks.check_split_captions(typ, tmp_path)
    assert len(found) == 1 and found[0].where == "page 1" and "Table 1: caption on page 1" in found[0].message
    typ = _typ(tmp_path, "#figure(kind: table, caption: [Together.], table(columns: 2, [a], [b])) <tbl-a>\n", "ok.typ")
    assert checks.check_split_captions(typ, tmp_path) == []


# ------------------------------------------------------------------------------------ numbering
def test_numbering_mismatch_in_the_pdf_is_found(tmp_path):
    body = ("= One <sec-a>\n= Two <sec-b>\nSee #link(<sec-b>)[Section~3] and #link(<sec-a>)[Section~1].\n"
            "#figure(table(columns: 1, [x]), caption: [T], kind: table) <tbl-x>\n#link(<tbl-x>)[Table~1]\n")
    found = checks.check_numbering(typ=_typ(tmp_path, body), root=tmp_path)
    assert [f.message for f in found] == ["'Section 3' points at sec-b, which Typst numbers 2"]


def test_numbering_mismatch_in_the_html_is_found():
    html = ('<h2 id="sec-b"><span class="header-section-number">2.1</span> B</h2>'
            '<figure id="fig-a"><figcaption><strong>Figure 2:</strong> cap</figcaption></figure>'
            '<p><a href="#sec-b">Section 11</a>, <a href="#fig-a">Figure 2</a></p>')
    found = checks.check_numbering(html=html)
    assert [f.message for f in found] == ["'Section 11' points at sec-b, which is numbered 2.1"]


# ------------------------------------------------------------------------- text of the HTML body
def test_raw_identifier_from_the_label_dictionary_is_found():
    html = "<h1>Results</h1><p>The blue_mean slope and <code>blue_mean</code> in code.</p><p>male faces</p>"
    found = checks.check_raw_identifiers(html, ["blue_mean", "male"])
    assert len(found) == 1 and found[0].where == 'section "Results"' and "'blue_mean'" in found[0].message
    assert checks.check_raw_identifiers(html.replace("The blue_mean", "The blue-channel mean"), ["blue_mean"]) == []


@pytest.mark.parametrize("text, bad", [
    ("a slope of -0.37 here", True), ("inputs in [-1, 1]", True), ("(-2.6, 3)", True),
    ("a slope of \u22120.37 here", False), ("ratings on 1-7 scales, D1-D10", False), ("2024-11-29", False),
])
def test_hyphen_minus_before_a_number(text, bad):
    found = checks.check_hyphen_minus(f"<h1>Methods</h1><p>{text}</p><pre>-1</pre>")
    assert bool(found) is bad
    if bad:
        assert found[0].where == 'section "Methods"'


def test_unreferenced_figure_and_table_are_found():
    qmd = ("![A](a.png){#fig-a width=90%}\n\n<< t >>\n\n: Cap. {#tbl-t}\n\n"
           "See @fig-a.\n\n![B](b.png){#fig-b}\n")
    found = checks.check_unreferenced(qmd)
    assert sorted(f.message for f in found) == ["fig-b is never referenced in the text",
                                                "tbl-t is never referenced in the text"]


def test_unresolved_citation_and_crossref_are_found():
    html = "<h1>Intro</h1><p>As (<strong>smith2020?</strong>) showed; see @tbl-missing.</p>"
    assert len(checks.check_unresolved(html)) == 2
    assert checks.check_unresolved("<h1>Intro</h1><p>As Smith (2020) showed; is it? Yes.</p>") == []


def test_bare_figure_number_of_another_paper_is_found():
    html = '<h1>Models</h1><p>the model of Figure 7; <a href="#fig-a">Figure\u00a02</a></p>'
    found = checks.check_original_numbering(html)
    assert len(found) == 1 and "'Figure 7'" in found[0].message
    ok = "<h1>Models</h1><p>Grissom et al.\u2019s Figure 7 and Grissom et al.'s Table 2</p>"
    assert checks.check_original_numbering(ok) == []


def test_warnings_are_findings():
    found = checks.check_warnings(["typst: unknown font family: nope", "pandoc (html5): [WARNING] x"])
    assert [f.where for f in found] == ["typst", "pandoc (html5)"]


# ---------------------------------------------------------------------- through render() itself
@pytest.fixture
def project(tmp_path):
    paths = ProjectPaths(tmp_path).ensure()
    paths.values.write_text(json.dumps({"x": -0.5}))
    tdir = tmp_path / "templates"
    (tdir / "sections").mkdir(parents=True)
    (tdir / "references.bib").write_text("@book{knuth1984, author={Knuth, Donald E.}, title={The {TeX}book},"
                                         " publisher={Addison-Wesley}, year={1984}}\n")
    (tdir / "style.csl").write_text(Path("report/chicago-author-date.csl").read_text())
    return paths, tdir


def _paper(tdir, body):
    (tdir / "paper.qmd.j2").write_text('---\ntitle: << paper.title | yaml >>\nbibliography: references.bib\n'
                                       'csl: style.csl\n---\n\n' + body)


def test_unknown_citation_key_is_a_render_error(project):
    paths, tdir = project
    _paper(tdir, "As shown [@knuth1984; @nobody2020].\n")
    with pytest.raises(RenderError, match="nobody2020"):
        render_html(render_qmd(paths, tdir, paper={"title": "T"}))


@pytest.mark.slow
def test_failing_check_fails_the_render_unless_draft(project):
    paths, tdir = project
    _paper(tdir, "# Intro {#sec-intro}\n\nKnuth wrote it [@knuth1984]; a slope of -0.5.\n\n"
                 "# References {#sec-refs .unnumbered}\n\n::: {#refs}\n:::\n")
    config = SimpleNamespace(title="T", raw={})
    with pytest.raises(RenderError, match="hyphen-minus"):
        render(config, paths, template_dir=tdir, use_quarto=False)
    assert "hyphen-minus" in (paths.report / "render_checks.txt").read_text()
    outs = render(config, paths, template_dir=tdir, use_quarto=False, draft=True)
    html = outs[1].read_text()
    assert "Knuth, Donald E. 1984" in html and "Addison-Wesley" in html  # the reference list is there
    _paper(tdir, "# Intro {#sec-intro}\n\nKnuth wrote it [@knuth1984]; a slope of << values.x | num(1) >>.\n\n"
                 "# References {#sec-refs .unnumbered}\n\n::: {#refs}\n:::\n")
    render(config, paths, template_dir=tdir, use_quarto=False)
    assert (paths.report / "render_checks.txt").read_text().startswith("all render checks passed\n")


# ----------------------------------------------------------------------------- keep rule (Typst)
def test_tables_near_a_page_end_stay_with_their_captions(tmp_path):
    """typst-keep.typ: a short publication table (not measured), a pandoc pipe table (measured)
    and a 30-row publication table that fits on a page all move whole to the next page rather
    than leave their caption behind; the row limit is PubTable's."""
    import pandas as pd

    from discbias.report.render import TYPST_PRELUDES
    from discbias.report.tables import UNBREAKABLE_MAX_ROWS, PubTable

    keep = Path(checks.__file__).with_name("typst-keep.typ").read_text()
    assert f"<= {UNBREAKABLE_MAX_ROWS} * ncols" in keep
    prelude = "".join(Path(checks.__file__).with_name(n).read_text() for n in TYPST_PRELUDES)
    short = PubTable(pd.DataFrame({"a": range(8), "b": range(8)}), caption="Short.", label="tbl-short").to_typst()
    longer = PubTable(pd.DataFrame({"a": range(30), "b": range(30)}), caption="Thirty.", label="tbl-30").to_typst()
    pipe = ("#figure(align(center)[#table(columns: 2, " + ", ".join(f"[{i}], [x]" for i in range(10)) + ")], "
            "kind: table, caption: figure.caption(position: top)[Pipe.]) <tbl-pipe>\n")
    for name, table in (("short", short), ("pipe", pipe), ("thirty", longer)):
        typ = tmp_path / f"keep-{name}.typ"
        typ.write_text(prelude + PAGE + "#v(21.5cm)\nFiller.\n\n" + table + "\n")
        marks = checks._query(typ, "caption", tmp_path)
        assert [int(m["page"]) for m in marks] == [2], name  # moved whole to page 2 ...
        assert checks.check_split_captions(typ, tmp_path) == [], name  # ... with its first row
    # a breakable table whose first row does not fit under its caption at the foot of a page: the
    # caption moves with it (before the sticky caption it stayed behind, alone)
    tall = PubTable(pd.DataFrame({"a": ["x " * 300] * 3}), caption="Tall rows.", label="tbl-tall",
                    breakable=True).to_typst()
    typ = tmp_path / "keep-tall.typ"
    typ.write_text(prelude + PAGE + "#v(21.5cm)\nFiller.\n\n" + tall + "\n")
    assert checks.check_split_captions(typ, tmp_path) == []
    assert [int(m["page"]) for m in checks._query(typ, "caption", tmp_path)] == [2]
