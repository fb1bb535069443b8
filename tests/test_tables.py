"""The publication-table layer: formats, labels, and the four outputs of one table object."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from latex_check import check_structure, compile_tables, tex_engine

from discbias.report.labels import label, set_labels
from discbias.report.tables import Col, PubTable, fmt_number, fmt_p, write_publication_table

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _replication_labels():
    """The examples use the replication's ids, labelled by its [labels] (analysis/grissom2024.toml)."""
    from discbias.config import load_config
    from discbias.report.labels import labels_from_config, set_labels

    set_labels(labels_from_config(load_config(Path(__file__).resolve().parents[1] / "analysis" / "grissom2024.toml")))
    yield
    set_labels()


def _coef_frame(n=4, seed=0):
    rng = np.random.default_rng(seed)
    est = rng.normal(0, 2, n)
    return pd.DataFrame({"term": ["red_mean", "C(race)[T.Black]:C(hair)[short]", "Group Var", "Intercept"][:n],
                         "estimate": est, "conf_low": est - 1, "conf_high": est + 1,
                         "p_value": [1e-12, 0.0004, 0.0312, 0.5][:n], "n_obs": [1042, 1042, 1042, 70000][:n]})


def _tables() -> dict[str, PubTable]:
    df = _coef_frame()
    spec = pd.DataFrame({"claim": ["S1-luminance & 50% of $_#", "S2_red"], "a_est": [-0.5, 1.25], "a_low": [-0.9, 0.1],
                         "a_high": [-0.1, 2.0], "b_est": [-0.45, 1.5], "b_low": [-1.0, -0.2], "b_high": [0.2, 3.1]})
    long = pd.DataFrame({"item": [f"row {k}" for k in range(60)], "value": np.linspace(-3, 3, 60)})
    return {
        "coef": PubTable(df, [Col("term", "Term"), Col("estimate", digits=3),
                              Col("conf_low", "95% CI", fmt="interval", high="conf_high"),
                              Col("p_value", fmt="p"), Col("n_obs")],
                         caption="Coefficients with `code` and σ², see @tbl-spec.", label="tbl-coef",
                         notes="Notes: Holm-adjusted; −1 is the reference."),
        "spec": PubTable(spec, [Col("claim", "Claim"), Col("a_est", "Estimate"),
                                Col("a_low", "95% CI", fmt="interval", high="a_high"), Col("b_est", "Estimate"),
                                Col("b_low", "95% CI", fmt="interval", high="b_high")],
                         spanners={"Paper's model": ["a_est", "a_low"], "Centred model": ["b_est", "b_low"]},
                         caption="One estimate and interval per specification.", label="tbl-spec"),
        "long": PubTable(long, caption="A long table.", label="tbl-long"),
    }


def test_numbers_use_a_true_minus_one_thousands_rule_and_p_below_precision():
    assert fmt_number(-1234.5, 1) == "\u22121,234.5" and fmt_number(999.0, 0) == "999"
    assert fmt_number(-0.0001, 2).startswith("\u22121.0 \u00d7 10")  # never "-0.00"
    assert fmt_number(-0.004, 2, None) != "-0.00" and fmt_number(-0.0, 2) == "0.00"
    assert fmt_p(0.0) == "< .001" and fmt_p(0.0009) == "< .001" and fmt_p(0.001) == ".001"
    cells = [c for row in _tables()["coef"].body() for c in row]
    assert not any(re.search(r"(?<![\w])-\d", c) for c in cells)


def test_labels_replace_raw_ids_and_a_study_can_override_them():
    body = _tables()["coef"].body()
    terms = [r[0] for r in body]
    assert terms == ["Mean red (0\u2013255)", "Race: Black \u00d7 Hair: short", "Cell intercept variance", "Intercept"]
    try:
        set_labels({"red_mean": "Red channel"})
        assert label("red_mean") == "Red channel" and _tables()["coef"].body()[0][0] == "Red channel"
    finally:
        set_labels()


def test_interval_p_value_and_spanner_cells():
    t = _tables()
    row = t["coef"].body()[0]
    est = t["coef"].df.loc[0, "estimate"]
    assert row[1] == fmt_number(est, 3) and row[2] == f"[{fmt_number(est - 1, 2)}, {fmt_number(est + 1, 2)}]"
    assert row[3] == "< .001" and row[4] == "1,042"
    assert t["spec"].spanner_row() == [("", 1), ("Paper's model", 2), ("Centred model", 2)]
    with pytest.raises(ValueError, match="adjacent"):
        PubTable(t["spec"].df, t["spec"].columns, spanners={"x": ["a_est", "b_est"]}).spanner_row()


def test_the_same_cells_reach_typst_html_and_latex():
    t = _tables()["spec"]
    typ, html, tex = t.to_typst(), t.to_html(), t.to_latex()
    for cell in (c for row in t.body() for c in row[1:]):
        assert f'"{cell}"' in typ and f">{cell}<" in html
    assert "table.cell(colspan: 2" in typ and 'colspan="2" class="spanner"' in html
    assert r"\multicolumn{2}{c}{Paper's model}" in tex and r"\cmidrule(lr){2-3}" in tex
    assert r"S1-luminance \& 50\% of \$\_\#" in tex  # escaped special characters
    assert "<tbl-spec>" in typ and 'id="tbl-spec"' in html and r"\label{tbl-spec}" in tex


def test_numeric_columns_are_right_aligned_everywhere():
    t = _tables()["coef"]
    assert t.aligns() == ["left", "right", "right", "right", "right"]
    assert "align: (left, right, right, right, right,)" in t.to_typst()
    # LaTeX: plain-number columns align on the decimal point (siunitx S), the interval and p columns are r
    assert r"\begin{tabular}{lS[table-format=-1.3]rrS[table-format=5.0]}" in t.to_latex()
    assert t.to_html().count('<td class="num">') == 4 * len(t.df)


def test_long_table_repeats_its_header_and_breaks_short_one_does_not():
    t = _tables()
    assert "breakable: true" in t["long"].to_typst() and "table.header(repeat: true" in t["long"].to_typst()
    assert "breakable: false" in t["coef"].to_typst()
    tex = t["long"].to_latex()
    assert r"\begin{longtable}" in tex and tex.count(r"\toprule") == 2 and r"\endhead" in tex


def test_a_table_too_wide_for_the_page_goes_landscape():
    wide = pd.DataFrame({f"Specification {k} estimate": [1.23456789e6] for k in range(12)})
    assert PubTable(wide, caption="W.", label="tbl-w").is_landscape()
    assert "#page(flipped: true)" in PubTable(wide, caption="W.", label="tbl-w").to_typst()
    assert not _tables()["coef"].is_landscape()


def test_csv_is_unrounded(tmp_path):
    t = _tables()["coef"]
    t.write(tmp_path, "coef")
    back = pd.read_csv(tmp_path / "coef.csv")
    np.testing.assert_array_equal(back["estimate"].to_numpy(), t.df["estimate"].to_numpy())
    assert set(back.columns) >= {"term", "estimate", "conf_low", "conf_high", "p_value"}


def test_qmd_block_keeps_caption_with_table_and_falls_back_without_caption(tmp_path):
    t = write_publication_table(pd.DataFrame({"95% CI low": [-1.0], "95% CI high": [2.0]}), tmp_path, "ci",
                                caption="An interval.")
    md = (tmp_path / "ci.md").read_text()
    assert md.startswith("::: {#tbl-ci .pubtable}") and "An interval." in md and "[\u22121.00, 2.00]" in md
    assert t.headers() == ["95% CI"]
    write_publication_table(pd.DataFrame({"x": [1.5]}), tmp_path, "plain")
    assert (tmp_path / "plain.md").read_text().startswith("| x |")


def test_exported_latex_has_spec_caption_label_and_compiles(tmp_path):
    paths = []
    for name, t in _tables().items():
        t.write(tmp_path, name)
        paths.append(tmp_path / f"{name}.tex")
    for p in paths:
        assert check_structure(p.read_text()) == [], p.name
    assert check_structure("\\begin{tabular}{ll}\na & -1 \\\\\n\\end{tabular}\n")  # the check can fail
    if tex_engine() is None:
        pytest.skip("no TeX engine (Debian: texlive-latex-recommended, or tectonic); structure checked only")
    proc = compile_tables(paths, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.skipif(not (REPO / "build" / "tables").is_dir(), reason="no build/tables here (run `make figures`)")
def test_built_tables_have_spec_caption_label_and_compile(tmp_path):
    paths = sorted((REPO / "build" / "tables").glob("*.tex"))
    bad = {p.name: check_structure(p.read_text()) for p in paths}
    assert {k: v for k, v in bad.items() if v} == {}
    if tex_engine() is not None:
        proc = compile_tables(paths, tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:]


def test_code_columns_are_verbatim_and_monospace():
    t = PubTable(pd.DataFrame({"model": ["rgb_ols"], "formula": ["score ~ red_mean - 1"]}),
                 ["model", Col("formula", "Formula", fmt="code")], caption="C.", label="tbl-code")
    assert t.body() == [["OLS RGB", "score ~ red_mean - 1"]]  # ids relabelled in text, verbatim in code
    assert 'raw("score ~ red_mean - 1")' in t.to_typst() and "<code>score ~ red_mean - 1</code>" in t.to_html()
    assert r"\texttt{score \textasciitilde{} red\_mean - 1}" in t.to_latex()
