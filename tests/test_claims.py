"""The claims table is derived from result tables by rules in code, never typed."""

import numpy as np
import pandas as pd

from discbias.claims import CLAIM_COLUMNS, evaluate_claims, sign_rule


def _results(lum_low, lum_high):
    tests = pd.DataFrame([
        dict(model="s1_top_bottom_luminance", term="luminance", estimate=(lum_low + lum_high) / 2, conf_low=lum_low,
             conf_high=lum_high),
        dict(model="s1_black_share", term="black_share", estimate=-0.1, conf_low=-0.2, conf_high=-0.01),
    ])
    return {"study1_top_bottom_tests": tests}


def test_claims_follow_the_results():
    c = evaluate_claims(_results(0.1, 0.3)).set_index("claim_id")
    assert list(evaluate_claims({}).columns) == CLAIM_COLUMNS
    assert c.loc["S1-luminance", "verdict"] == "reproduced"
    assert c.loc["S1-luminance", "estimate"] == 0.2
    assert c.loc["S1-race", "verdict"] == "not reproduced"
    assert c.loc["S2-red", "verdict"] == "not yet estimated" and np.isnan(c.loc["S2-red", "estimate"])
    c2 = evaluate_claims(_results(-0.1, 0.3)).set_index("claim_id")
    assert c2.loc["S1-luminance", "verdict"] == "inconclusive"


def test_every_claim_of_the_foundation_is_listed():
    ids = set(evaluate_claims({})["claim_id"])
    assert {"S1-luminance", "S1-race", "S2-red", "S2-black-men-long-hair", "S2-femininity", "S2-hair",
            "S2-skintone"} <= ids


def test_sign_rule_handles_missing():
    assert sign_rule(np.nan, 0, 1, 1) == "inconclusive"
    assert sign_rule(-1, -2, -0.5, -1) == "reproduced"
