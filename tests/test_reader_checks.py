"""The render checks of what a reader sees: each fails on a planted defect (in the HTML and in a
PDF compiled by Typst) and passes on the same text without it."""

from pathlib import Path

import pytest

from discbias.report import checks

PAGE = '#set page(paper: "a4", margin: (x: 1.25in, y: 1.25in))\n#set text(size: 10pt)\n'
CLEAN = ("Scores were re-estimated (19 cells). The slope is \u22120.05, p = .034, and the top 100 "
         "images are brighter (Grissom et al.\u2019s Figure 7). Two claims hold.")


def _pdf(tmp_path, body, name="t"):
    import typst

    typ = tmp_path / f"{name}.typ"
    typ.write_text(PAGE + body)
    pdf = tmp_path / f"{name}.pdf"
    typst.compile(str(typ), output=str(pdf))
    return pdf


def _html(body):
    return f"<html><body><h1>Results</h1>{body}</body></html>"


DEFECTS = {  # check -> (planted text, the check that must fire)
    "joined": ("We could not rescore them in training.Without the weights, nothing.", "joined-sentence"),
    "paren": ("Every model was re-estimated(19 cells).", "joined-sentence"),
    "list": ("We could not rescore them.- Correlational data cannot tell.", "collapsed-list"),
    "repr": ("The mixed model converged: True and has REML log-lik inf here.", "python-repr"),
    "plural": ("The adapters found 599 issue(s) in the files.", "placeholder-plural"),
    "negzero": ("The slope is \u22120.0 per unit.", "negative-zero"),
    "apostrophe": ("As in Grissom et al.'s Figure 7.", "apostrophe"),
}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_planted_defect_fails_its_check_in_html_and_pdf(tmp_path, name):
    text, check = DEFECTS[name]
    found = checks.run_reader_checks(html=_html(f"<p>{CLEAN} {text}</p>"))
    assert check in {f.check for f in found}, found
    pdf = _pdf(tmp_path, f"{CLEAN} {text.replace('$', '')}\n\n" + "#lorem(600)\n", name)
    found_pdf = checks.run_reader_checks(pdf=pdf)
    assert check in {f.check for f in found_pdf}, found_pdf


def test_clean_text_passes_every_reader_check(tmp_path):
    html = _html(f"<p>{CLEAN}</p><ul><li>One item.</li><li>Another item.</li></ul>"
                 "<table><tr><th>p</th></tr><tr><td>&lt; .001</td></tr></table>")
    assert checks.run_reader_checks(html=html) == []
    pdf = _pdf(tmp_path, f"{CLEAN}\n\n- One item.\n- Another item.\n\n#lorem(700)\n", "clean")
    assert checks.run_reader_checks(pdf=pdf) == []


def test_a_collapsed_list_of_the_real_template_bug_is_found():
    # what trim_blocks made of a list item that ended in a block tag
    html = _html("<ul><li>training. Without the weights, this build could not rescore them.- "
                 "<strong>Correlational data.</strong> Colour co-varies.</li></ul>")
    assert [f.check for f in checks.check_joined_sentences(html=html)] == ["collapsed-list"]


def test_mixed_p_styles_are_found_and_one_style_passes():
    mixed = _html("<p>F(2, 527) = 1.95, p = .143.</p><table><tr><td>&lt; 0.001</td><td>0.5</td></tr></table>")
    assert [f.check for f in checks.check_p_styles(html=mixed)] == ["p-style"]
    one = _html("<p>F(2, 527) = 1.95, p = .143.</p><table><tr><td>&lt; .001</td></tr></table>")
    assert checks.check_p_styles(html=one) == []


def test_a_caption_repeated_verbatim_is_found():
    shared = "Each specification is drawn in units of its own interval so that all share one axis."
    html = _html("".join(f"<figure><img src='x'/><figcaption>Figure {i}: Claim {i}. {shared}</figcaption></figure>"
                         for i in (1, 2)))
    found = checks.check_repeated_captions(html)
    assert [f.check for f in found] == ["repeated-caption"] and "own interval" in found[0].message
    distinct = _html("<figure><figcaption>Claim one and its eight specifications drawn side by side here.</figcaption></figure>"
                     "<figure><figcaption>Claim two and its six specifications drawn side by side here.</figcaption></figure>")
    assert checks.check_repeated_captions(distinct) == []


def test_a_half_empty_page_before_the_appendix_is_found(tmp_path):
    hole = _pdf(tmp_path, "#lorem(620)\n#pagebreak()\n#lorem(150)\n#pagebreak()\n#lorem(620)\n#pagebreak()\n"
                          "#lorem(620)\n#pagebreak()\n= Appendix A\n#lorem(50)\n", "hole")
    found = checks.check_empty_pages(hole)
    assert [f.where for f in found] == ["page 2"], found
    full = _pdf(tmp_path, "#lorem(3000)\n#pagebreak()\n= Appendix A\n#lorem(30)\n", "full")
    assert checks.check_empty_pages(full) == []


def test_overlapping_figure_labels_are_found(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def fig(labels, name):
        f, ax = plt.subplots(figsize=(2, 1.5))
        ax.bar(range(len(labels)), [1] * len(labels))
        ax.set_xticks(range(len(labels)), labels)
        p = tmp_path / f"{name}.pdf"
        f.savefig(p)
        plt.close(f)
        return p

    bad = fig(["Black or African-American", "East Asian or Pacific", "White or Caucasian"], "bad")
    found = checks.check_figure_overlap([bad])
    assert [f.check for f in found] == ["figure-overlap"] and "figure bad" == found[0].where
    good = fig(["A", "B", "C"], "good")
    assert checks.check_figure_overlap([good]) == []


def test_render_checks_txt_lists_what_was_checked():
    text = checks.checks_report([])
    assert text.startswith("all render checks passed\n")
    for name in ("joined-sentence", "python-repr", "negative-zero", "p-style", "apostrophe", "repeated-caption",
                 "empty-page", "figure-overlap", "overlap"):
        assert name in text


def test_a_main_text_over_the_page_limit_is_found(tmp_path):
    pdf = _pdf(tmp_path, "#lorem(620)\n#pagebreak()\n#lorem(620)\n#pagebreak()\n#lorem(620)\n#pagebreak()\n"
                         "= References\n#lorem(30)\n", "long")
    assert checks.main_text_pages(pdf) == (3, 4)
    assert [f.check for f in checks.check_main_text_length(pdf, max_pages=2)] == ["main-text-length"]
    assert checks.check_main_text_length(pdf, max_pages=3) == []


def test_layout_findings_fail_the_render_checks():
    hole = checks.Finding("empty-page", "page 19", "the page's text area is 38% filled")
    long = checks.Finding("main-text-length", "pages 1-27", "the main text runs to 27 pages (limit 20)")
    assert not checks.ADVISORY
    text = checks.checks_report([hole, long], limits=checks.layout_limits(None))
    assert text.startswith("[empty-page] page 19") and "[main-text-length] pages 1-27" in text
    assert "advisory" not in text and "main text at most 20 pages" in text


def test_layout_limits_come_from_the_paper_table_and_reach_the_checks(tmp_path):
    # three pages of main text, the second one about 15% filled, then the references
    pdf = _pdf(tmp_path, "#lorem(620)\n#pagebreak()\n#lorem(150)\n#pagebreak()\n#lorem(620)\n#pagebreak()\n"
                         "= References\n#lorem(30)\n", "limits")
    strict = checks.run_reader_checks(pdf=pdf, **checks.layout_limits({"main_text_max_pages": 2}))
    assert {"main-text-length", "empty-page"} <= {f.check for f in strict}
    lenient = checks.run_reader_checks(pdf=pdf, **checks.layout_limits({"main_text_max_pages": 3, "min_page_fill": 0.1}))
    assert not {"main-text-length", "empty-page"} & {f.check for f in lenient}, lenient
    assert checks.layout_limits({}) == {"max_pages": checks.MAIN_TEXT_MAX_PAGES, "min_fill": checks.MIN_PAGE_FILL}


def test_the_layout_limits_are_configuration_keys():
    from discbias.audit.config import AuditPaper
    from discbias.schema import PaperTable

    assert PaperTable().main_text_max_pages == 20 and PaperTable().min_page_fill == 0.5
    assert PaperTable(main_text_max_pages=30).main_text_max_pages == 30
    assert AuditPaper(min_page_fill=0.3).min_page_fill == 0.3
    with pytest.raises(Exception):
        PaperTable(main_text_max_pages=0)


def test_an_empty_grid_table_is_found():
    # the Table 14: a cross of which one cell can hold images, printed as a grid of dashes
    rows = "".join(f"<tr><td>{age}</td><td>\u2014</td><td>\u2014</td><td>\u2014</td></tr>" for age in ("0-9", "10-19", "20-29"))
    grid = _html(f"<table><caption>Table 14: Mean score (n), images without a face.</caption>{rows}"
                 "<tr><td>none</td><td>1.2 (3)</td><td>\u2014</td><td>\u2014</td></tr></table>")
    found = checks.run_reader_checks(html=grid)
    assert [f.check for f in found] == ["empty-table"] and "Table 14" in found[0].where
    filled = grid.replace("\u2014", "0.5 (7)")
    assert checks.run_reader_checks(html=filled) == []
