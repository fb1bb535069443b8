"""The whole pipeline on a synthetic study in the released schema: fetch to HTML and PDF."""

import json
import re

import pandas as pd
import pytest

from latex_check import check_structure, compile_tables

from discbias.cli import main
from discbias.report.labels import known_ids


@pytest.mark.slow
def test_pipeline_renders_paper_from_synthetic_study(synthetic_build):
    # synthetic_build (conftest) runs fetch, measure, fit, figures and render through the CLI,
    # each stage asserted to exit 0; the build is shared with the bundle/verify tests
    build = synthetic_build / "build"
    html = (build / "report" / "paper.html").read_text()
    assert (build / "report" / "paper.pdf").read_bytes()[:4] == b"%PDF"
    values = json.loads((build / "values.json").read_text())
    claims = pd.read_csv(build / "results" / "claims.csv")
    # the synthetic data has the built-in effects, so these verdicts must come out
    c = claims.set_index("claim_id")
    assert c.loc["S1-luminance", "reproduction"] == "reproduced"
    assert c.loc["S2-black-men-long-hair", "reproduction"] == "reproduced"
    assert c.loc["S2-black-men-long-hair", "robustness"] in ("robust", "fragile")
    assert set(values["question_counts"]) == {"reproduction", "robustness", "extension"}
    # numbers in the paper are the ones in values.json
    assert f"{values['study1']['n_images']:,}" in html
    assert "Table\u00a0" in html and "Figure\u00a0" in html
    # every exported LaTeX table has its column specification, caption and label, and compiles
    texs = sorted((build / "tables").glob("*.tex"))
    assert {"claims.tex", "s1_top_bottom_tests.tex", "s2_cell_means.tex"} <= {p.name for p in texs}
    assert {p.name: check_structure(p.read_text()) for p in texs if check_structure(p.read_text())} == {}
    proc = compile_tables(texs, synthetic_build)
    assert proc is None or proc.returncode == 0, proc.stdout[-3000:]
    # tables reach the paper with their captions; no raw model ids or hyphen minus in the tables
    assert 'class="pubtable"' in html and "Table\u00a0" in html
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, re.S)]
    ids = set(known_ids())
    assert [c for c in cells if c.strip() in ids] == []
    assert [c for c in cells if re.search(r"(?<![\w.\-])-\d", c)] == []
    # the manuscript: its sections, a reference list, front matter from [paper], every render check passed
    for heading in ("Introduction", "Related work", "Methods", "Discussion", "Limitations", "Conclusion",
                    "Ethics statement", "Data and code availability", "References", "Appendix A: Provenance"):
        assert f"{heading}</h1>" in " ".join(html.split()), heading
    assert html.count('class="csl-entry"') >= 20 and "Test Author" in html
    assert (build / "report" / "render_checks.txt").read_text().startswith("all render checks passed\n")
    # the authors' files and the ledger of their analyses (synthetic files: no R comparison, and it says so)
    ledger = pd.read_csv(build / "results" / "authors_ledger.csv")
    assert {"men_anova_paper", "women_anova_paper"} <= set(pd.read_csv(build / "results" / "authors_anova.csv")["model"])
    assert "Ledger of the authors" in html and ledger["script"].iloc[0] in html
    assert values["authors"]["reference"]["n_values"] == 0 and "were not compared with the R reference" in html
    # the standalone paper.tex of the synthetic study compiles (pdflatex, Debian TeX Live) with no overfull box
    _paper_tex_compiles(build / "report" / "paper.qmd")


def _paper_tex_compiles(qmd):
    import shutil
    import subprocess

    from latex_check import overfull

    from discbias.report.render import render_latex

    tex = render_latex(qmd)
    assert r"\begin{document}" in tex.read_text()
    kpse = shutil.which("kpsewhich")
    if not shutil.which("latexmk") or not kpse or not subprocess.run([kpse, "lmodern.sty"], capture_output=True,
                                                                     text=True).stdout.strip():
        return  # written, not compiled: apt-get install -y latexmk texlive-latex-extra texlive-science texlive-fonts-recommended lmodern
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tex.parent,
                          capture_output=True, text=True, errors="replace", timeout=600)
    log = tex.with_suffix(".log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert overfull(log) == [], overfull(log)


def test_bad_config_is_a_clean_cli_error(tmp_path, capsys):
    assert main(["fit", "--config", str(tmp_path / "nope.toml"), "--root", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
