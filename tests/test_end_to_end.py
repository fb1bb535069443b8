"""The whole pipeline on a synthetic study in the released schema: fetch to HTML and PDF."""

import json
from pathlib import Path

import pandas as pd
import pytest

from discbias.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pipeline_renders_paper_from_synthetic_study(synthetic_study, monkeypatch):
    root = synthetic_study.parent.parent
    monkeypatch.setenv("DISCBIAS_DATA_MIRROR", str(root / "mirror"))
    monkeypatch.setenv("DISCBIAS_TEMPLATES", str(REPO / "report"))
    monkeypatch.setenv("DISCBIAS_NO_QUARTO", "1")
    args = ["--config", str(synthetic_study), "--root", str(root)]
    for stage in ("fetch", "measure", "fit", "figures", "render"):
        assert main([stage, *args]) == 0, stage
    build = root / "build"
    html = (build / "report" / "paper.html").read_text()
    assert (build / "report" / "paper.pdf").read_bytes()[:4] == b"%PDF"
    values = json.loads((build / "values.json").read_text())
    claims = pd.read_csv(build / "results" / "claims.csv")
    # the synthetic data has the built-in effects, so these verdicts must come out
    v = claims.set_index("claim_id")["verdict"]
    assert v["S1-luminance"] == "reproduced" and v["S2-black-men-long-hair"] == "reproduced"
    # numbers in the paper are the ones in values.json
    assert f"{values['study1']['n_images']:,}" in html
    assert "Table\u00a0" in html and "Figure\u00a0" in html
    # the authors' files and the ledger of their analyses (synthetic files: no R comparison, and it says so)
    ledger = pd.read_csv(build / "results" / "authors_ledger.csv")
    assert {"men_anova_paper", "women_anova_paper"} <= set(pd.read_csv(build / "results" / "authors_anova.csv")["model"])
    assert "ledger of the authors" in html and ledger["script"].iloc[0] in html
    assert values["authors"]["reference"]["n_values"] == 0 and "were not compared with the R reference" in html
    for name in ("claims", "s1_top_bottom_tests", "s2_cell_means"):
        assert (build / "tables" / f"{name}.tex").read_text().startswith("\\begin{tabular}")


def test_bad_config_is_a_clean_cli_error(tmp_path, capsys):
    assert main(["fit", "--config", str(tmp_path / "nope.toml"), "--root", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
