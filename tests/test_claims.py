"""The verdict engine: claims are judged from result tables by one rule over specification sets."""

import numpy as np
import pandas as pd
import pytest

from discbias.analyses import study1
from discbias.claims import (CLAIM_COLUMNS, SPEC_COLUMNS, Claim, SpecResult, Specification, collect_claims,
                             evaluate_claims, outcome, result_row)
from discbias.pipeline import analysis_claims


def _claim(*robust, direction=+1):
    specs = [Specification("paper", "Paper", lambda r: r.get("paper"), role="paper")]
    for name, required in robust:
        specs.append(Specification(name, name.upper(), lambda r, n=name: r.get(n), required=required))
    specs.append(Specification("desc", "Described", lambda r: r.get("desc"), role="description"))
    return Claim("X", "d", "p", direction, specs)


YES, NO, ZERO = SpecResult(2.0, 1.0, 3.0), SpecResult(-2.0, -3.0, -1.0), SpecResult(0.5, -1.0, 2.0)
UNCONV = SpecResult(2.0, 1.0, 3.0, converged=False)


@pytest.mark.parametrize("results, verdict", [
    (dict(paper=YES, ols=YES, bal=YES), "reproduced"),
    (dict(paper=YES, ols=YES), "reproduced"),                      # optional spec absent: skipped
    (dict(paper=YES, bal=YES), "inconclusive"),                    # required spec absent
    (dict(paper=YES, ols=ZERO, bal=YES), "fragile"),
    (dict(paper=YES, ols=NO), "fragile"),
    (dict(paper=YES, ols=UNCONV), "inconclusive"),                 # unconverged robustness spec blocks reproduced
    (dict(paper=YES, ols=UNCONV, bal=ZERO), "fragile"),            # ... unless a converged one already fails
    (dict(paper=ZERO, ols=YES), "not reproduced"),
    (dict(paper=NO, ols=YES), "not reproduced"),
    (dict(paper=UNCONV, ols=YES), "inconclusive"),                 # never a verdict from an unconverged fit
    (dict(paper=SpecResult(np.nan, np.nan, np.nan), ols=YES), "inconclusive"),
    (dict(paper=SpecResult(2.0, 1.0, 3.0, undetermined=True), ols=YES), "inconclusive"),
    (dict(ols=YES), "not yet estimated"),
    (dict(paper=YES, ols=YES, desc=NO), "reproduced"),             # descriptions never vote
])
def test_verdict_rule(results, verdict):
    table, specs = evaluate_claims(results, [_claim(("ols", True), ("bal", False))])
    assert table.loc[0, "verdict"] == verdict, table.loc[0, "reason"]
    assert list(table.columns) == CLAIM_COLUMNS and list(specs.columns) == SPEC_COLUMNS
    assert len(specs) == 4  # every declared specification is listed, estimated or not


def test_direction_and_extra_condition():
    c = Claim("neg", "d", "p", -1, [Specification("paper", "P", lambda r: r["paper"], role="paper")])
    assert evaluate_claims(dict(paper=NO), [c])[0].loc[0, "verdict"] == "reproduced"
    assert evaluate_claims(dict(paper=YES), [c])[0].loc[0, "verdict"] == "not reproduced"
    assert outcome(SpecResult(2.0, 1.0, 3.0, supports=False), +1) == "condition not met"
    assert outcome(SpecResult(-2.0, -3.0, -1.0, supports=True), +1) == "opposite"  # a condition cannot flip a sign


def test_not_tested_claim_and_declaration_errors():
    c = Claim("W", "needs weights", "p", needs="weights")
    table, specs = evaluate_claims({}, [c])
    assert table.loc[0, "verdict"] == "not tested" and table.loc[0, "needs"] == "weights" and specs.empty
    with pytest.raises(ValueError, match="exactly one"):
        Claim("B", "d", "p", +1, [Specification("a", "A", lambda r: None)])
    with pytest.raises(ValueError, match="direction"):
        Claim("B", "d", "p", 0, needs="x")
    with pytest.raises(ValueError, match="twice"):
        collect_claims([type("M", (), {"CLAIMS": [c]}), type("N", (), {"CLAIMS": [c]})])


def test_result_row_reads_convergence_and_filters():
    df = pd.DataFrame([dict(model="m", term="x", estimate=1.0, conf_low=0.5, conf_high=1.5, converged="False",
                            method="Bayes", dataset="a"),
                       dict(model="m", term="x", estimate=-1.0, conf_low=-1.5, conf_high=-0.5, converged=True,
                            method="Bayes", dataset="b")])
    r = result_row("t", "m", "x")({"t": df})
    assert r.converged is False and r.estimate == 1.0  # CSV round trip: the string "False" is not converged
    r = result_row("t", "m", "x", dataset="b", scale=-1)({"t": df})
    assert (r.estimate, r.conf_low, r.conf_high) == (1.0, 0.5, 1.5)
    assert result_row("t", "m", "x", dataset="c")({"t": df}) is None


def _s1_results(r_low, r_high, tb_low):
    return {
        "study1_correlations": pd.DataFrame([dict(model="s1_blue_score_corr", term="blue_mean~score:pearson",
                                                  estimate=(r_low + r_high) / 2, conf_low=r_low, conf_high=r_high,
                                                  converged=True)]),
        "study1_luminance_all": pd.DataFrame([dict(model=m, term=t, estimate=(r_low + r_high) / 2, conf_low=r_low,
                                                   conf_high=r_high, converged=True)
                                              for m, t in (("s1_luminance_ols_hc3", "blue_mean"),
                                                           ("s1_luminance_ols_hc3_std", "z_blue_mean"))]),
        "study1_top_bottom_tests": pd.DataFrame([dict(model="s1_top_bottom_luminance", term="luminance",
                                                      estimate=tb_low + 0.1, conf_low=tb_low, conf_high=tb_low + 0.2)]),
    }


def test_s1_luminance_is_decided_on_all_images_not_the_extremes():
    c = [x for x in study1.CLAIMS if x.claim_id == "S1-luminance"]
    # the top/bottom contrast (selected on the score) says "brighter" but all 70k do not: not reproduced
    table, specs = evaluate_claims(_s1_results(-0.01, 0.005, 0.1), c)
    assert table.loc[0, "verdict"] == "not reproduced"
    assert specs.set_index("specification").loc["top_bottom", "outcome"] == "supports"
    table, _ = evaluate_claims(_s1_results(0.02, 0.04, -0.3), c)
    assert table.loc[0, "verdict"] == "reproduced"


def test_every_claim_of_the_paper_is_listed():
    table, _ = evaluate_claims({}, analysis_claims())
    ids = set(table["claim_id"])
    assert {"S1-luminance", "S1-race", "S2-red", "S2-black-men-long-hair", "S2-femininity", "S2-hair",
            "S2-skintone", "S1-not-training-data"} <= ids
    v = table.set_index("claim_id")["verdict"]
    assert v["S1-not-training-data"] == "not tested"
    assert (v.drop([c for c in v.index if v[c] == "not tested"]) == "not yet estimated").all()


def test_black_rating_logit_clusters_by_image():
    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        grp = "bottom" if i < 30 else "top"
        p = 0.6 if grp == "bottom" else 0.1
        for slot in range(3):
            rows.append(dict(image_id=i, group=grp, race=study1.BLACK if rng.uniform() < p else "White"))
    t = study1.black_rating_logit(pd.DataFrame(rows))
    assert t.loc[0, "n_groups"] == 60 and t.loc[0, "n_obs"] == 180
    assert t.loc[0, "conf_low"] > 0 and bool(t.loc[0, "converged"])
