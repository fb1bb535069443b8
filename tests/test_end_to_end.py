"""The whole pipeline on a synthetic study in the released schema: fetch to HTML and PDF."""

import json

import pandas as pd
import pytest

from discbias.cli import main


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
    v = claims.set_index("claim_id")["verdict"]
    assert v["S1-luminance"] == "reproduced" and v["S2-black-men-long-hair"] == "reproduced"
    # numbers in the paper are the ones in values.json
    assert f"{values['study1']['n_images']:,}" in html
    assert "Table\u00a0" in html and "Figure\u00a0" in html
    for name in ("claims", "s1_top_bottom_tests", "s2_cell_means"):
        assert (build / "tables" / f"{name}.tex").read_text().startswith("\\begin{tabular}")


def test_bad_config_is_a_clean_cli_error(tmp_path, capsys):
    assert main(["fit", "--config", str(tmp_path / "nope.toml"), "--root", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
