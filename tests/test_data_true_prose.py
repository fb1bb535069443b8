"""Data-true prose: every sentence of the paper that states a direction, size, comparison or
property of the data follows the value it describes. The synthetic study's build is rendered
again (the template stage, from its values.json) with the values perturbed each way: reversed
effects, a balanced and an unbalanced Study 2, a cleaned file that fails the exclusion rules, an
unconverged fit, and an analysis whose data is missing; each sentence must change accordingly."""

import copy
import json
import shutil
from pathlib import Path

import pytest

from discbias.paths import project_paths
from discbias.report.render import render_qmd

REPO = Path(__file__).resolve().parents[1]


def _render(root: Path, values: dict) -> str:
    paths = project_paths(root)
    paths.values.write_text(json.dumps(values))
    paper = dict(title="T", subtitle="", authors=[], keywords=[], abstract="", bibliography="references.bib",
                 csl="chicago-author-date.csl")
    text = render_qmd(paths, REPO / "report", paper=paper)
    return " ".join(Path(text).read_text().split())


def _set(values, path, value):
    d = values
    *head, last = path.split(".")
    for k in head:
        d = d[k]
    d[last] = value


@pytest.fixture(scope="module")
def built(synthetic_build, tmp_path_factory):
    root = tmp_path_factory.mktemp("prose")
    src = synthetic_build / "build"
    shutil.copytree(src, root / "build", ignore=shutil.ignore_patterns("cache", "engine", "measures", "report"))
    return root, json.loads((src / "values.json").read_text())


def _variants(base, changes: dict):
    v = copy.deepcopy(base)
    for k, x in changes.items():
        _set(v, k, x)
    return v


@pytest.mark.slow
def test_study1_direction_and_size_follow_the_data(built):
    root, base = built
    up = _render(root, _variants(base, {"study1.luminance.diff": 0.08, "study1.luminance.g": 1.2}))
    down = _render(root, _variants(base, {"study1.luminance.diff": -0.01, "study1.luminance.g": -0.1}))
    if "luminance contrast is" not in up:  # the Discussion names the contrasts only when a claim holds
        up = _render(root, _variants(base, {"study1.luminance.diff": 0.08, "study1.luminance.g": 1.2,
                                            **{f"claims.{k}.verdict": "reproduced" for k in base["claims"]}}))
        down = _render(root, _variants(base, {"study1.luminance.diff": -0.01, "study1.luminance.g": -0.1,
                                              **{f"claims.{k}.verdict": "reproduced" for k in base["claims"]}}))
    assert "luminance contrast is large" in up and "images are brighter" in up
    assert "luminance contrast is negligible" in down and "images are darker" in down
    assert "contrasts are large" not in down


@pytest.mark.slow
def test_study2_balance_and_exclusions_follow_the_data(built):
    root, base = built
    bal = _render(root, _variants(base, {"study2.balanced": True, "study2.cell_n_min": 50, "study2.cell_n_max": 50,
                                         "study2.n_cells": 12}))
    unbal = _render(root, _variants(base, {"study2.balanced": False, "study2.cell_n_min": 57, "study2.cell_n_max": 162,
                                           "study2.n_cells": 12}))
    data = bal.split("# Data {#sec-data}", 1)[1].split("## Corrections to the released files", 1)[0]
    assert "holds 50 images with a valid score (a balanced design)" in data and "unbalanced" not in data
    assert "hold from 57 to 162 images with a valid score (an unbalanced design)" in unbal
    if base["models"]["uncleaned_available"]:
        clean = _render(root, _variants(base, {"study2.n_rule_failures": 0}))
        dirty = _render(root, _variants(base, {"study2.n_rule_failures": 1}))
        assert "passes the original exclusion rules" in clean
        assert "1 image of the released cleaned file fails an original exclusion rule" in dirty
        assert "passes the original exclusion rules" not in dirty


@pytest.mark.slow
def test_ffhq_stratification_sentences_follow_the_data(built):
    root, base = built
    if not base["ffhq_strat"]["available"]:
        pytest.skip("the synthetic study has no FFHQ face attributes")
    one = _render(root, _variants(base, {
        "ffhq_strat.exposure.ols": 0.4, "ffhq_strat.exposure.q10": 0.6, "ffhq_strat.exposure.q90": 0.2,
        "ffhq_strat.face_other.delta_r2": 0.05, "ffhq_strat.face_demographic.delta_r2": 0.001,
        "ffhq_strat.mixed.converged": True}))
    other = _render(root, _variants(base, {
        "ffhq_strat.exposure.ols": -0.4, "ffhq_strat.exposure.q10": -0.1, "ffhq_strat.exposure.q90": -0.5,
        "ffhq_strat.face_other.delta_r2": 0.001, "ffhq_strat.face_demographic.delta_r2": 0.05,
        "ffhq_strat.mixed.converged": False}))
    assert "the score rises with the Face API’s exposure value" in one
    assert "the score falls with the Face API’s exposure value" in other
    assert "the low tail depends more on exposure" in one and "the high tail depends more on exposure" in other
    assert "Most of the face block is not demographic" in one and "Most of the face block is demographic:" in other
    assert "the fit converged" in one and "the fit did not converge" in other
    # an analysis whose data is missing: its sentences disappear, and the paper says so
    gone = _render(root, _variants(base, {"ffhq_strat.available": False}))
    assert "face block" not in gone and "provides no FFHQ face attributes" in gone


@pytest.mark.slow
def test_no_python_values_or_placeholder_plurals_in_the_source(built):
    root, base = built
    text = _render(root, _variants(base, {"meta.n_data_issues": 1}))
    assert "1 issue was found" in text and "issue(s)" not in text
    assert "converged: True" not in text and "True" not in text.replace("`True`", "")
