"""Degenerate fits are flagged and kept from verdicts; ICCs of planned-missing designs use every rating."""

import numpy as np
import pandas as pd
import pytest

from discbias.claims import Claim, Specification, evaluate_claims, result_row
from discbias.stats.crossed import crossed_mixed
from discbias.stats.degenerate import constant_within, hessian_degenerate, residual_degenerate
from discbias.stats.reliability import icc_crossed


def _ratings(n_images=40, n_raters=5, seed=0):
    rng = np.random.default_rng(seed)
    img, rat = np.repeat(np.arange(n_images), n_raters), np.tile(np.arange(n_raters), n_images)
    score = rng.normal(size=n_images)[img]                       # one score per image, repeated per rating
    x = rng.normal(size=n_images)[img]
    rating = 0.5 * score + rng.normal(0, 0.3, n_raters)[rat] + rng.normal(0, 0.5, len(img))
    return pd.DataFrame({"image": img, "rater": rat, "score": score + 0.2 * x, "x": x, "rating": rating})


def test_score_constant_within_image_is_flagged_before_fitting_and_gets_no_verdict(capsys):
    d = _ratings()
    assert constant_within(d, "score", ["image", "rater"]) == ["image"]
    t = crossed_mixed("score ~ x + rating + (1|image)", d, model="m", engine="statsmodels")
    assert t["degenerate"].str.contains("constant within image").all() and not t["converged"].any()
    assert "not fitted" in capsys.readouterr().err
    claim = Claim("C", "rating raises the score", "+", +1, [
        Specification("main", "main", result_row("models", "m", "rating"))], kind="hypothesis", estimand="slope")
    table, specs = evaluate_claims({"models": t}, [claim])
    assert specs.loc[0, "outcome"] == "degenerate" and specs.loc[0, "vote"] == "does not vote (degenerate)"
    assert table.loc[0, "robustness"] == "inconclusive" and "degenerate" in table.loc[0, "reason"]
    # the rating itself varies within images: the same model of the rating is fitted and not flagged
    ok = crossed_mixed("rating ~ x + (1|image) + (1|rater)", d, model="m2", engine="statsmodels")
    assert ok["converged"].all() and ok["degenerate"].isna().all() if "degenerate" in ok else True


def test_residual_and_hessian_checks():
    assert residual_degenerate(2.7e-6 ** 2, 4.0).startswith("residual variance")
    assert residual_degenerate(0.25, 4.0) == ""
    assert "non-positive-definite" in hessian_degenerate(np.array([[1.0, 0.0], [0.0, -1e-3]]))
    assert "not finite" in hessian_degenerate(np.array([[np.nan]]))


@pytest.mark.slow
def test_planned_missing_icc_matches_the_complete_design():
    # the same simulated raters: every rater rates every image (complete), then each rater keeps a
    # random 60% of the images (planned missing); the crossed-variance-component ICC barely moves
    rng = np.random.default_rng(11)
    n_img, n_rat = 150, 8
    img, rat = np.repeat(np.arange(n_img), n_rat), np.tile(np.arange(n_rat), n_img)
    v = rng.normal(0, 1.0, n_img)[img] + rng.normal(0, 0.4, n_rat)[rat] + rng.normal(0, 0.7, len(img))
    full = pd.DataFrame({"image": img, "rater": rat, "value": v})
    keep = np.zeros(len(full), bool)
    for r in range(n_rat):
        idx = np.flatnonzero(rat == r)
        keep[rng.choice(idx, int(0.6 * len(idx)), replace=False)] = True
    part = full[keep]
    a, b = icc_crossed(full), icc_crossed(part)
    assert b["n_ratings"] == int(0.6 * n_img) * n_rat
    assert abs(a["icc1"] - b["icc1"]) < 0.02, (a["icc1"], b["icc1"])
    # complete-case analysis would keep only the images every rater rated: almost none
    complete = part.groupby("image")["rater"].nunique()
    assert (complete == n_rat).sum() < 5
