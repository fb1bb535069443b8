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


# ------------------------------------------------- every path that fits rating- or image-level models
def _verdict_of(table: pd.DataFrame, model: str, term: str, **where) -> tuple[str, str, str]:
    """(specification outcome, its vote, the claim's verdict) of a one-specification claim on ``table``."""
    claim = Claim("C", "x raises y", "+", +1, [Specification("main", "main", result_row("t", model, term, **where))],
                  kind="hypothesis", estimand="slope")
    t, s = evaluate_claims({"t": table}, [claim])
    return s.loc[0, "outcome"], s.loc[0, "vote"], t.loc[0, "robustness"]


def _images(n=60, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    cell = np.repeat(np.arange(12), n // 12)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "cell": cell,
                         "score": 0.8 * x + rng.normal(0, 0.5, 12)[cell] + rng.normal(0, 0.5, n)})


def test_ols_flags_constant_outcome_constant_predictor_and_collinear_design():
    from discbias.stats.regression import ols

    d = _images()
    ok, _ = ols("score ~ x", d, model="m")
    assert "degenerate" not in ok and _verdict_of(ok, "m", "x")[2] == "robust"
    cases = {"constant outcome": (d.assign(score=3.0), "score ~ x", "the outcome score is constant"),
             "constant predictor": (d.assign(z=1.5), "score ~ x + z", "predictor z is constant"),
             "collinear": (d.assign(z=2 * d["x"] + 1), "score ~ x + z", "rank-deficient"),
             "perfect fit": (d.assign(score=2 * d["x"]), "score ~ x", "residual variance")}
    for name, (data, formula, reason) in cases.items():
        t, _ = ols(formula, data, model="m")
        assert t["degenerate"].str.contains(reason).all(), (name, t["degenerate"].tolist())
        assert t["warnings"].str.contains("degenerate fit").all()
        o, vote, verdict = _verdict_of(t, "m", "x")
        assert (o, vote, verdict) == ("degenerate", "does not vote (degenerate)", "inconclusive"), name


@pytest.mark.parametrize("n_clusters", [12, 60])
def test_cluster_robust_tables_flag_a_constant_predictor(n_clusters):
    # CR2 with t(G - 1) below 50 clusters, CR1 above: both flag the degenerate design
    import statsmodels.formula.api as smf

    from discbias.stats.cr2 import cluster_table

    rng = np.random.default_rng(2)
    n = 5 * n_clusters
    d = pd.DataFrame({"x": rng.normal(size=n), "z": 4.0, "g": np.repeat(np.arange(n_clusters), 5)})
    d["y"] = d["x"] + rng.normal(size=n)
    t = cluster_table(smf.ols("y ~ x + z", d).fit(), d["g"].to_numpy(), model="m")
    assert t["degenerate"].str.contains("predictor z is constant").all()
    assert t["inference"].iloc[0] == ("CR2, t(G-1)" if n_clusters < 50 else "CR1, z")
    assert _verdict_of(t, "m", "x")[0] == "degenerate"
    good = cluster_table(smf.ols("y ~ x", d).fit(), d["g"].to_numpy(), model="m")
    assert "degenerate" not in good and _verdict_of(good, "m", "x")[2] == "robust"


def test_mixedlm_score_constant_within_group_is_not_fitted_and_gets_no_verdict(capsys):
    from discbias.stats.mixed import mixedlm

    d = _ratings()
    # the rating-level model of a score per image with a random intercept per image
    t, fit = mixedlm("score ~ x + rating", d, "image", model="m")
    assert fit is None and not t["converged"].any() and t["estimate"].isna().all()
    assert t["degenerate"].str.contains("constant within image").all()
    assert "not fitted" in capsys.readouterr().err
    assert _verdict_of(t, "m", "rating")[:2] == ("degenerate", "does not vote (degenerate)")
    assert _verdict_of(t, "m", "rating")[2] == "inconclusive"
    # image-level: a score constant within design cells
    im = _images()
    t2, fit2 = mixedlm("score ~ x", im.assign(score=im["cell"] * 1.0), "cell", model="m2")
    assert fit2 is None and t2["degenerate"].str.contains("constant within cell").all()
    # the same model of the rating (which varies within images) is fitted and not flagged
    t3, fit3 = mixedlm("rating ~ x", d, "image", model="m3")
    assert fit3 is not None and "degenerate" not in t3 and t3["converged"].all()


def test_nested_variance_components_flag_a_value_constant_within_image(capsys):
    from discbias.stats.mixed import nested_variance_components

    d = _ratings().assign(cell=lambda x: x["image"] % 4)
    t = nested_variance_components(d, "score", "image", "cell", n_boot=0)
    assert t["degenerate"].str.contains("constant within image").all() and not t["converged"].any()
    assert "not fitted" in capsys.readouterr().err
    ok = nested_variance_components(d, "rating", "image", "cell", n_boot=0)
    assert "degenerate" not in ok


def test_bambi_path_flags_score_constant_within_image_before_sampling(capsys, monkeypatch):
    # the Bambi/PyMC back end is never reached: the check runs before either engine (sampling is made to fail)
    import discbias.stats.crossed as crossed

    def no_sampling(*a, **k):
        raise AssertionError("sampled a degenerate model")

    monkeypatch.setattr(crossed, "_fit_bambi", no_sampling)
    t = crossed.crossed_mixed("score ~ x + rating + (1|image) + (1|rater)", _ratings(), model="m", engine="bambi")
    assert t["degenerate"].str.contains("constant within image").all() and not t["converged"].any()
    assert "not fitted" in capsys.readouterr().err
    assert _verdict_of(t, "m", "rating")[2] == "inconclusive"


def test_bayesian_regressions_refuse_degenerate_data_and_flag_a_zero_residual():
    from discbias.stats.bayes import SamplerSettings, _flag_residual, elicited_bayes, rgb_bayes

    d = _images().assign(red=lambda x: x["x"] + 5, green=7.0, blue=lambda x: x["z"])
    with pytest.raises(ValueError, match="predictor green is constant"):
        rgb_bayes(d, "score", ("red", "green", "blue"), settings=SamplerSettings(10, 10, 1, 1))
    with pytest.raises(ValueError, match="outcome score is constant"):
        elicited_bayes(d.assign(score=1.0), "score", ["red", "blue"], settings=SamplerSettings(10, 10, 1, 1))
    tidy = pd.DataFrame({"term": ["x", "sigma"], "estimate": [1.0, 1e-7], "warnings": ["", ""]})
    flagged = _flag_residual(tidy, d["score"].to_numpy())
    assert flagged["degenerate"].str.startswith("residual variance").all()
    assert "degenerate" not in _flag_residual(tidy.assign(estimate=[1.0, 0.5]), d["score"].to_numpy())
