"""The verdict engine: reproduction, robustness and extension apart; one estimand per claim."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from discbias.analyses import study1
from discbias.claims import (CLAIM_COLUMNS, SPEC_COLUMNS, Claim, SpecResult, Specification, collect_claims,
                             configure_claims, evaluate_claims, outcome, printed_tolerance, reproduction_verdict,
                             result_row, verdict_counts)
from discbias.errors import ConfigError
from discbias.pipeline import analysis_claims
from discbias.stats.cr2 import cluster_table
from discbias.stats.regression import ols


def _claim(*robust, direction=+1, **kw):
    specs = [Specification("paper", "Paper", lambda r: r.get("paper"), role="paper")]
    for name, required in robust:
        specs.append(Specification(name, name.upper(), lambda r, n=name: r.get(n), required=required))
    specs.append(Specification("desc", "Described", lambda r: r.get("desc"), role="description"))
    specs.append(Specification("other", "Other estimand", lambda r: r.get("other"), estimand="within-cell slope"))
    return Claim("X", "d", "p", direction, specs, estimand="population slope", **kw)


YES, NO, ZERO = SpecResult(2.0, 1.0, 3.0), SpecResult(-2.0, -3.0, -1.0), SpecResult(0.5, -1.0, 2.0)
UNCONV = SpecResult(2.0, 1.0, 3.0, converged=False)
DEGEN = SpecResult(2.0, 1.0, 3.0, degenerate="outcome constant within image")


@pytest.mark.parametrize("results, verdict", [
    (dict(paper=YES, ols=YES, bal=YES), "robust"),
    (dict(paper=YES, ols=YES), "robust"),                           # optional spec absent: skipped
    (dict(paper=YES, bal=YES), "inconclusive"),                     # required spec absent
    (dict(paper=YES, ols=ZERO, bal=YES), "fragile"),
    (dict(paper=YES, ols=NO, bal=YES), "fragile"),
    (dict(paper=YES, ols=UNCONV), "inconclusive"),                  # unconverged robustness spec blocks robust
    (dict(paper=YES, ols=UNCONV, bal=ZERO), "fragile"),             # ... unless a converged one already fails
    (dict(paper=ZERO, ols=YES), "inconclusive"),                    # the primary's interval includes 0
    (dict(paper=NO, ols=YES), "contradicted"),                      # the primary is credible the other way
    (dict(paper=ZERO, ols=NO, bal=NO), "contradicted"),             # most voting specifications are
    (dict(paper=UNCONV, ols=YES), "inconclusive"),                  # never a verdict from an unconverged fit
    (dict(paper=DEGEN, ols=YES), "inconclusive"),                   # ... nor from a degenerate one
    (dict(paper=SpecResult(np.nan, np.nan, np.nan), ols=YES), "inconclusive"),
    (dict(ols=YES), "not yet estimated"),
    (dict(paper=YES, ols=YES, desc=NO, other=NO), "robust"),        # descriptions and other questions never vote
])
def test_robustness_rule(results, verdict):
    table, specs = evaluate_claims(results, [_claim(("ols", True), ("bal", False))])
    assert table.loc[0, "robustness"] == verdict == table.loc[0, "verdict"], table.loc[0, "reason"]
    assert table.loc[0, "extension"] == "not applicable"
    assert list(table.columns) == CLAIM_COLUMNS and list(specs.columns) == SPEC_COLUMNS
    assert len(specs) == 5  # every declared specification is listed, estimated or not
    s = specs.set_index("specification")
    assert s.loc["other", "vote"] == "a different question" and not s.loc["other", "used_for_verdict"]
    assert s.loc["desc", "vote"] == "a description"
    assert isinstance(table.loc[0, "sentence"], str) and table.loc[0, "sentence"].endswith(".")


def test_sesoi_decides_negligible_effects():
    c = _claim(("ols", True), sesoi=0.5)
    tiny = SpecResult(0.1, 0.05, 0.15)          # excludes 0 but lies inside ±SESOI: practically nothing
    t, s = evaluate_claims(dict(paper=tiny, ols=tiny), [c])
    assert t.loc[0, "robustness"] == "negligible" and (s["outcome"].iloc[:2] == "supports").all()
    flat = SpecResult(0.01, -0.2, 0.2)          # includes 0 and inside ±SESOI: equivalent to 0
    t, s = evaluate_claims(dict(paper=flat, ols=YES), [c])
    assert t.loc[0, "robustness"] == "negligible" and s.loc[0, "outcome"] == "negligible"
    # a specification in other units converts the SESOI with its sesoi_scale
    assert outcome(SpecResult(0.5, -1.0, 2.0), +1, sesoi=0.5) == "includes 0"
    assert outcome(SpecResult(0.5, -1.0, 2.0, sesoi_scale=10.0), +1, sesoi=0.5) == "negligible"


def test_sesoi_is_symmetric_an_opposite_effect_inside_it_is_negligible_not_a_contradiction():
    c = _claim(("ols", True), sesoi=0.5)
    small_opposite = SpecResult(-0.1, -0.15, -0.05)   # credibly opposite, but inside ±SESOI
    t, s = evaluate_claims(dict(paper=small_opposite, ols=small_opposite), [c])
    assert (s["outcome"].iloc[:2] == "opposite").all()
    assert t.loc[0, "robustness"] == "negligible", t.loc[0, "reason"]
    assert "opposite direction" in t.loc[0, "reason"]
    # mirror images get the same verdict: the claimed-direction twin is negligible too
    t2, _ = evaluate_claims(dict(paper=SpecResult(0.1, 0.05, 0.15), ols=SpecResult(0.1, 0.05, 0.15)), [c])
    assert t2.loc[0, "robustness"] == "negligible"
    # an opposite interval reaching beyond the SESOI is still a contradiction
    big = SpecResult(-0.5, -0.7, -0.3)
    assert evaluate_claims(dict(paper=big, ols=big), [c])[0].loc[0, "robustness"] == "contradicted"
    edge = SpecResult(-0.4, -0.6, -0.2)                # straddles -SESOI: not practically zero
    assert evaluate_claims(dict(paper=edge, ols=edge), [c])[0].loc[0, "robustness"] == "contradicted"
    # without a SESOI nothing is negligible: a credible opposite effect contradicts
    c0 = _claim(("ols", True))
    assert evaluate_claims(dict(paper=small_opposite, ols=small_opposite), [c0])[0].loc[0, "robustness"] == "contradicted"


def test_bayesian_decisions_read_the_posterior_probability_not_the_hdi():
    # the paper's Figure 7 numbers: skin tone's HDI includes 0 and femininity's excludes it, but their
    # posterior probabilities of the claimed direction are the same (.973 and .971): same outcome
    skin = SpecResult(-1.914, -3.800, 0.079, p_positive=0.027)
    fem = SpecResult(2.4, 0.07, 4.2, p_positive=0.971)
    assert outcome(skin, -1) == outcome(fem, +1) == "includes 0"
    assert outcome(SpecResult(2.4, 0.07, 4.2, p_positive=0.99), +1) == "supports"
    assert outcome(SpecResult(-2.4, -4.2, -0.07, p_positive=0.99), -1) == "opposite"


def test_reproduction_against_printed_rounding_and_monte_carlo_error():
    c = _claim(printed={"estimate": "-1.9", "conf_low": "-3.8", "conf_high": "0.13"}, direction=-1)
    assert reproduction_verdict(c, SpecResult(-1.94, -3.83, 0.134))[0] == "reproduced"
    v, why = reproduction_verdict(c, SpecResult(-1.96, -3.83, 0.134))
    assert v == "differs" and why.startswith("estimate −1.96 vs printed -1.9")
    # the upper HDI bound 0.079 is off by 0.051: beyond rounding alone, within a Monte Carlo error of 0.02
    assert reproduction_verdict(c, SpecResult(-1.914, -3.8, 0.079))[0] == "differs"
    assert reproduction_verdict(c, SpecResult(-1.914, -3.8, 0.079, mcse_high=0.02))[0] == "reproduced"
    assert reproduction_verdict(c, UNCONV)[0] == "inconclusive"
    assert reproduction_verdict(c, None)[0] == "not yet estimated"
    assert printed_tolerance("0.13") == pytest.approx(0.005) and printed_tolerance("-3.8") == pytest.approx(0.05)
    # no printed number: the paper's conclusion under its own rule
    bare = _claim()
    assert reproduction_verdict(bare, YES)[0] == "reproduced" and reproduction_verdict(bare, ZERO)[0] == "differs"
    ext = Claim("E", "d", "p", +1, [Specification("a", "A", lambda r: YES)], kind="extension")
    t, _ = evaluate_claims({}, [ext])
    assert (t.loc[0, "reproduction"], t.loc[0, "robustness"], t.loc[0, "extension"]) == (
        "not applicable", "not applicable", "robust")


# ------------------------------------------------------------------ planted data, real fits
def _planted(slope: float, within: float | None = None, seed: int = 0, n_cells: int = 12, per: int = 40):
    """Images in design cells; ``slope`` is the population slope of y on x; ``within`` (if given) the
    within-cell slope, with cell means of x and y arranged so that the pooled slope is ``slope``."""
    rng = np.random.default_rng(seed)
    cell = np.repeat(np.arange(n_cells), per)
    cx = np.linspace(-2, 2, n_cells)[cell]
    x = cx + rng.normal(size=len(cell))
    if within is None:
        y = slope * x + rng.normal(size=len(cell))
    else:  # within-cell slope `within`; between cells the means move so that the pooled slope is ~`slope`
        between = (slope * (np.var(cx) + 1) - within * 1) / np.var(cx)
        y = within * (x - cx) + between * cx + rng.normal(scale=0.5, size=len(cell))
    return pd.DataFrame({"x": x, "y": y, "cell": cell})


def _planted_results(d: pd.DataFrame) -> dict:
    t1, f = ols("y ~ x", d, model="ols")
    t2, _ = ols("y ~ x", d, model="ols_hc3", cov_type="HC3")
    t3 = cluster_table(f, d["cell"].to_numpy(), model="ols_cr2")
    t4, _ = ols("y ~ x + C(cell)", d, model="within")
    return {"fits": pd.concat([t1, t2, t3, t4], ignore_index=True)}


def _planted_claim(printed=None):
    return Claim("P", "x raises y", "+0.5", +1, [
        Specification("paper", "OLS", result_row("fits", "ols", "x"), role="paper"),
        Specification("hc3", "OLS, HC3", result_row("fits", "ols_hc3", "x")),
        Specification("cr2", "OLS, CR2", result_row("fits", "ols_cr2", "x")),
        Specification("within", "cell fixed effects", result_row("fits", "within", "x"), estimand="within-cell slope"),
    ], estimand="population slope", printed=printed or {}, sesoi=0.05)


def test_planted_true_in_every_specification_is_robust():
    t, s = evaluate_claims(_planted_results(_planted(0.5)), [_planted_claim()])
    assert t.loc[0, "robustness"] == "robust" and t.loc[0, "n_voting"] == 3 and t.loc[0, "share_agreeing"] == 1.0


def test_planted_true_only_under_a_different_estimand_does_not_vote():
    d = _planted(0.0, within=0.8)
    res = _planted_results(d)
    t, s = evaluate_claims(res, [_planted_claim()])
    s = s.set_index("specification")
    assert s.loc["within", "outcome"] == "supports" and s.loc["within", "vote"] == "a different question"
    assert t.loc[0, "robustness"] in ("inconclusive", "negligible") and t.loc[0, "n_voting"] == 3
    assert "a different question" in t.loc[0, "sentence"]


def test_planted_significant_in_the_opposite_direction_is_contradicted():
    t, _ = evaluate_claims(_planted_results(_planted(-0.5)), [_planted_claim()])
    assert t.loc[0, "robustness"] == "contradicted"


def test_planted_printed_number_off_by_more_than_its_rounding_differs():
    res = _planted_results(_planted(0.5, seed=3))
    est = float(res["fits"].query("model == 'ols' and term == 'x'")["estimate"].iloc[0])
    ok = f"{est:.2f}"
    off = f"{est + 0.011:.2f}"   # the estimate is more than half a unit of the 2nd decimal away
    assert evaluate_claims(res, [_planted_claim({"estimate": ok})])[0].loc[0, "reproduction"] == "reproduced"
    t, _ = evaluate_claims(res, [_planted_claim({"estimate": off})])
    assert t.loc[0, "reproduction"] == "differs" and "more than ±0.005 (rounding)" in t.loc[0, "reproduction_reason"]


# ------------------------------------------------------------------ declarations and configuration
def test_declaration_errors():
    c = Claim("W", "needs weights", "p", needs="weights")
    table, specs = evaluate_claims({}, [c])
    assert table.loc[0, "verdict"] == "not tested" and table.loc[0, "needs"] == "weights" and specs.empty
    with pytest.raises(ValueError, match="exactly one"):
        Claim("B", "d", "p", +1, [Specification("a", "A", lambda r: None)])
    with pytest.raises(ValueError, match="direction"):
        Claim("B", "d", "p", 0, needs="x")
    with pytest.raises(ValueError, match="twice"):
        collect_claims([type("M", (), {"CLAIMS": [c]}), type("N", (), {"CLAIMS": [c]})])
    with pytest.raises(ValueError, match="must estimate the claim's estimand"):
        _claim(("ols", True), primary="other")
    with pytest.raises(ValueError, match="has no 'paper' specification"):
        Claim("E", "d", "p", +1, [Specification("paper", "P", lambda r: None, "paper")], kind="extension")


def test_configuration_sets_primary_and_sesoi_and_rejects_unknown_names():
    c = _claim(("ols", True))
    [c2] = configure_claims([c], {"X": {"primary": "ols", "justification": "why", "sesoi": 0.3}})
    t, s = evaluate_claims(dict(paper=ZERO, ols=YES), [c2])
    assert t.loc[0, "primary"] == "ols" and t.loc[0, "primary_justification"] == "why"
    assert t.loc[0, "robustness"] == "fragile"  # the primary supports it, the paper's specification does not
    with pytest.raises(ConfigError, match="names no claim"):
        configure_claims([c], {"Y": {"primary": "ols"}})
    with pytest.raises(ConfigError, match="not one of"):
        configure_claims([c], {"X": {"primary": "nope"}})


def test_result_row_reads_convergence_posterior_and_filters():
    df = pd.DataFrame([dict(model="m", term="x", estimate=1.0, conf_low=0.5, conf_high=1.5, converged="False",
                            method="Bayes", dataset="a", prob_positive=0.99, mcse_conf_low=0.01,
                            mcse_conf_high=0.03),
                       dict(model="m", term="x", estimate=-1.0, conf_low=-1.5, conf_high=-0.5, converged=True,
                            method="Bayes", dataset="b", prob_positive=0.01, mcse_conf_low=0.01,
                            mcse_conf_high=0.03)])
    r = result_row("t", "m", "x")({"t": df})
    assert r.converged is False and r.estimate == 1.0 and r.p_direction(+1) == 0.99 and r.mcse_high == 0.03
    r = result_row("t", "m", "x", dataset="b", scale=-1)({"t": df})
    assert (r.estimate, r.conf_low, r.conf_high) == (1.0, 0.5, 1.5)
    assert r.p_direction(+1) == pytest.approx(0.99) and (r.mcse_low, r.mcse_high) == (0.03, 0.01)
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
                                                      estimate=tb_low + 0.1, conf_low=tb_low, conf_high=tb_low + 0.2),
                                                 dict(model="s1_top_bottom_blue_mean", term="blue_mean",
                                                      estimate=tb_low + 0.1, conf_low=tb_low, conf_high=tb_low + 0.2)]),
    }


def test_selection_rule_applies_to_every_score_selected_contrast():
    claims = [c for c in study1.CLAIMS if c.claim_id in ("S1-luminance", "S1-blue-all", "S1-race")]
    table, specs = evaluate_claims(_s1_results(0.02, 0.04, 0.1), claims)
    t = table.set_index("claim_id")
    s = specs.set_index(["claim_id", "specification"])
    # the top/bottom contrast reproduces the paper's conclusion but never votes on a population association
    assert t.loc["S1-luminance", "reproduction"] == "reproduced"
    assert s.loc[("S1-luminance", "paper"), "vote"] == "a different question (selected on score)"
    assert s.loc[("S1-blue-all", "top_bottom"), "vote"] == "a different question (selected on score)"
    assert t.loc["S1-luminance", "robustness"] == "inconclusive"   # luminance exists only for the extremes
    assert t.loc["S1-blue-all", "extension"] == "robust" and t.loc["S1-blue-all", "reproduction"] == "not applicable"
    # S1-race is stated about the score-selected groups: its selected specifications vote
    assert {s.loc[("S1-race", n), "vote"] for n in ("paper", "image_share", "logit_cluster")} <= {
        "votes", "does not vote (missing)"}
    table, _ = evaluate_claims(_s1_results(-0.04, -0.02, 0.1), claims)
    assert table.set_index("claim_id").loc["S1-blue-all", "extension"] == "contradicted"


def test_every_claim_of_the_paper_is_listed_and_configured():
    from discbias.config import load_config

    cfg = load_config("analysis/grissom2024.toml")
    claims = configure_claims(analysis_claims(), cfg.raw.get("claims"))
    table, _ = evaluate_claims({}, claims)
    ids = set(table["claim_id"])
    assert {"S1-luminance", "S1-race", "S2-red", "S2-black-men-long-hair", "S2-femininity", "S2-hair",
            "S2-skintone", "S1-not-training-data", "S1-blue-all"} <= ids
    t = table.set_index("claim_id")
    assert t.loc["S1-not-training-data", "verdict"] == "not tested"
    # every tested claim has a written justification for its primary and a SESOI with its reference
    for c in claims:
        if c.specifications and c.primary_spec is not None:
            assert c.justification and c.sesoi > 0 and c.sesoi_reference, c.claim_id
    # extensions are never reproductions; "[paper]" only where the paper ran the analysis
    assert (t.loc[t["kind"] == "extension", "reproduction"] == "not applicable").all()
    assert t.loc["S1-stratified-face", "kind"] == "extension" and t.loc["S1-stratified-quality", "kind"] == "extension"
    counts = verdict_counts(table)
    assert set(counts) == {"reproduction", "robustness", "extension"}


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


def test_monte_carlo_tolerance_is_the_stated_three_sigma_rule():
    # the difference of two independent Monte Carlo estimates has SD sqrt(2) MCSE; 3 SDs: P(|Z| > 3) = 0.0027
    from scipy import stats

    from discbias.claims import MC_FALSE_DIFFERS, MC_Z, REPRODUCTION_RULE

    assert MC_Z == 3.0 and MC_FALSE_DIFFERS == pytest.approx(2 * stats.norm.sf(3.0), rel=1e-12)
    assert round(MC_FALSE_DIFFERS, 4) == 0.0027 and f"{MC_FALSE_DIFFERS:.4f}" in REPRODUCTION_RULE
    c = _claim(printed={"estimate": "1.0"})
    mcse, rounding = 0.1, 0.05
    edge = rounding + MC_Z * np.sqrt(2) * mcse
    assert reproduction_verdict(c, SpecResult(1.0 + 0.99 * edge, 0, 2, mcse_estimate=mcse))[0] == "reproduced"
    assert reproduction_verdict(c, SpecResult(1.0 + 1.01 * edge, 0, 2, mcse_estimate=mcse))[0] == "differs"
    # simulated: two independent MCMC-like estimates of the same number, printed to 1 decimal, are called
    # different at about the stated rate (here with no rounding slack: printed with many digits)
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, mcse, 200_000), rng.normal(0, mcse, 200_000)
    rate = np.mean(np.abs(a - b) > MC_Z * np.sqrt(2) * mcse)
    assert rate == pytest.approx(MC_FALSE_DIFFERS, abs=0.0006)


def test_sentence_names_the_specifications_that_do_not_support_a_fragile_claim():
    bayes = SpecResult(1.9, -0.09, 3.86, p_positive=0.965)
    t, _ = evaluate_claims(dict(paper=YES, ols=YES, bal=bayes), [_claim(("ols", True), ("bal", False))])
    assert "(not: BAL 1.9 [−0.09, 3.86], P = 0.965, includes 0)" in t.loc[0, "sentence"], t.loc[0, "sentence"]
    t, _ = evaluate_claims(dict(paper=YES, ols=ZERO, bal=YES), [_claim(("ols", True), ("bal", False))])
    sent = t.loc[0, "sentence"]
    assert t.loc[0, "robustness"] == "fragile" and "(not: OLS 0.5 [−1, 2], includes 0)" in sent, sent
