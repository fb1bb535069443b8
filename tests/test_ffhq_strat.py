"""The FFHQ stratification analysis on synthetic scores and face attributes with planted effects."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from discbias.analyses import ffhq_strat as fs
from discbias.claims import evaluate_claims
from discbias.stats.quantile import quantreg, rq_fnb, rq_vcov
from discbias.studies.ffhq_features import _frame, _Issues, parse_image
from test_ffhq_features import face

GLASSES = ["NoGlasses", "ReadingGlasses", "Sunglasses"]


def jitter(f, rng):
    """Vary the attributes the helper keeps constant, so that no model column is constant."""
    a = f["faceAttributes"]
    a["headPose"] = {k: float(rng.normal(0, 8)) for k in ("pitch", "roll", "yaw")}
    a["facialHair"] = {k: float(rng.choice([0.0, 0.1, 0.6])) for k in ("moustache", "beard", "sideburns")}
    a["makeup"] = {"eyeMakeup": bool(rng.random() < 0.4), "lipMakeup": bool(rng.random() < 0.4)}
    a["occlusion"]["eyeOccluded"] = bool(rng.random() < 0.05)
    a["hair"]["bald"] = float(rng.random() * 0.3)
    size = int(rng.integers(60, 85))
    f["faceRectangle"].update(width=size, height=size)
    return f


def synthetic(n=1400, seed=0, face_effect=0.0, interaction=0.0):
    """Scores = 40 * exposure + 0.2 * blue + (face_effect if male) + noise; a few no-face images."""
    rng = np.random.default_rng(seed)
    rows, scores = [], []
    log = _Issues("synthetic.tar.gz")
    for i in range(n):
        name = f"{i:05d}"
        gender = "male" if rng.random() < 0.45 else "female"
        age = float(rng.integers(1, 75))
        exposure = float(np.clip(rng.normal(0.6, 0.12), 0, 1))
        blue = float(rng.normal(100, 25))
        if i % 97 == 5:
            faces = []
        elif i % 211 == 7:
            faces = [face(gender=gender, age=age, exposure=exposure), face(width=20, height=20)]
        else:
            faces = [face(gender=gender, age=age, exposure=exposure, glasses=GLASSES[int(rng.integers(0, 3))],
                          smile=float(rng.random()), blur=float(rng.random() * 0.5), noise=float(rng.random() * 0.3),
                          headwear=0.99 if rng.random() < 0.05 else None,
                          hair=() if rng.random() < 0.05 else (("brown", 0.9),) if rng.random() < 0.6 else (("black", 0.9),))]
            faces = [jitter(faces[0], rng)]
        rows.append(parse_image(f"{name}.json", json.dumps(faces).encode(), log))
        cell = (gender == "male") * (age >= 40) * interaction
        s = 40 * exposure + 0.2 * blue + face_effect * (gender == "male") + cell + rng.normal(0, 3)
        scores.append(dict(image_id=name, score=s, blue_mean=blue, valid=True))
    return pd.DataFrame(scores), _frame(rows)


@pytest.fixture(scope="module")
def data():
    s, f = synthetic()
    d, info = fs.prepare(s, f)
    return d, info


def test_prepare_keeps_every_image_and_labels_no_face(data):
    d, info = data
    assert len(d) == 1400 and info["n_scores_without_features"] == 0
    nf = d["no_face"]
    assert nf.sum() == len([i for i in range(1400) if i % 97 == 5])
    assert (d.loc[nf, "gender"] == fs.NO_FACE).all() and (d.loc[nf, "age_band"] == fs.NO_FACE).all()
    assert not d.loc[nf, "in_model"].any()
    assert abs(d.loc[d["in_model"], "exposure_z"].mean()) < 1e-9


def test_prepare_reports_unmatched_ids():
    s, f = synthetic(n=50)
    d, info = fs.prepare(s, f.iloc[5:])
    assert info["n_scores_without_features"] == 5 and len(d) == 50
    assert (d.loc[~d["has_features"], "face_status"] == "no attribute file").all()


def test_full_cross_keeps_empty_cells(data):
    d, _ = data
    cells = fs.cross_summary(d)
    # 3 genders (incl. no face) x 8 age bands x 5 glasses levels, whether observed or not.
    assert len(cells) == 3 * 8 * 5
    assert cells["n"].sum() == len(d)
    empty = cells[cells["n"] == 0]
    assert len(empty) > 0 and empty["mean"].isna().all()
    swim = cells[cells["glasses"] == "SwimmingGoggles"]
    assert (swim["n"] == 0).all()  # never generated, still listed


def test_group_summaries_every_level(data):
    d, _ = data
    g = fs.group_summaries(d)
    gl = g[g["attribute"] == "glasses"]
    assert list(gl["level"]) == ["NoGlasses", "ReadingGlasses", "Sunglasses", "SwimmingGoggles", fs.NO_FACE]
    assert gl["n"].sum() == len(d)
    for attr, sub in g.groupby("attribute"):
        assert sub["n"].sum() == len(d), attr


def test_bin_shares_sum_to_one_and_ratio(data):
    d, _ = data
    sh = fs.bin_shares(d)
    assert set(sh["bin"]) == set(fs.BINS)
    tot = sh.groupby(["grouping", "bin"])["share"].sum()
    assert np.allclose(tot, 1.0)
    dec = sh[(sh["grouping"] == "gender") & sh["bin"].str.startswith("D")]
    assert (dec.groupby("bin")["bin_total"].first() == 140).all()
    r = sh.dropna(subset=["ratio"]).iloc[0]
    assert r["ratio"] == pytest.approx(r["share"] / r["overall_share"])
    # Every level of the full cross appears in every bin.
    cross = sh[sh["grouping"] == "gender x age band x glasses"]
    assert len(cross) == 120 * len(fs.BINS)


def test_top_bin_holds_high_exposure(data):
    d, _ = data
    b = fs.score_bins(d["score"])
    assert d.loc[b["top1"], "exposure_value"].mean() > d.loc[b["bottom1"], "exposure_value"].mean()


def test_quality_curves_find_exposure_not_noise(data):
    d, _ = data
    bins, curves, tests = fs.quality_curves(d[d["in_model"]], n_bins=10)
    t = tests.set_index("measure")
    assert t.loc["exposure_value", "estimate"] > 0.3 and t.loc["exposure_value", "p_holm"] < 1e-10
    assert t.loc["noise_value", "estimate"] < 0.05
    assert (tests["p_holm"] >= tests["p_value"]).all()
    assert set(curves["measure"]) == set(fs.QUALITY_MEASURES)
    assert (curves["conf_low"] <= curves["fit"]).all() and (curves["fit"] <= curves["conf_high"]).all()


@pytest.fixture(scope="module")
def planted():
    s, f = synthetic(n=1500, seed=1, face_effect=6.0, interaction=4.0)
    d, _ = fs.prepare(s, f)
    m, w = fs.model_data(d)
    return fs.fit_regressions(m, w, n_boot=20), m


def test_blocks_recover_planted_effects(planted):
    reg, m = planted
    b = reg["blocks"].set_index("term")
    assert b.loc["block:quality", "estimate"] > 0.3
    assert b.loc["block:quality", "conf_low"] < b.loc["block:quality", "estimate"] < b.loc["block:quality", "conf_high"]
    assert b.loc["block:face", "p_holm"] < 1e-6 and b.loc["block:face", "estimate"] > 0.01
    # Incremental R^2 equals the difference of the two OLS fits' R^2.
    assert b.loc["block:face", "estimate"] == pytest.approx(b.loc["block:face", "r2_full"] - b.loc["block:face", "r2_reduced"])
    ols = reg["coefficients"].query("model == 's1x_ols_full'").set_index("term")
    male = "C(gender, Treatment('female'))[male]"
    assert ols.loc[male, "conf_low"] > 0
    assert reg["coefficients"]["multiple_testing"].str.contains("Holm").all()
    assert (reg["coefficients"]["p_holm"].dropna() >= reg["coefficients"]["p_value"].dropna().loc[
        reg["coefficients"]["p_holm"].notna()] - 1e-15).all()


def test_face_block_split_into_demographic_and_other(planted):
    reg, _ = planted
    b = reg["blocks"].set_index("term")
    assert list(b.index) == ["block:quality", "block:face", "block:face_demographic", "block:face_other"]
    # the planted effect is on gender (and a gender x age cell): the demographic part carries it
    assert b.loc["block:face_demographic", "conf_low"] > fs.MIN_DELTA_R2
    assert b.loc["block:face_other", "conf_high"] < b.loc["block:face_demographic", "conf_low"]
    assert b.loc["block:face_demographic", "df_num"] == 1 + m_age_levels(planted)
    # each part adds no more than the whole face block
    assert b.loc["block:face_demographic", "estimate"] <= b.loc["block:face", "estimate"] + 1e-12
    assert b["multiple_testing"].eq("Holm over the 4 block tests").all()
    specs = evaluate_claims({"ffhq_strat_blocks": reg["blocks"]}, fs.CLAIMS)[1].set_index(["claim_id", "specification"])
    assert specs.loc[("S1-stratified-face", "demographic_block"), "estimate"] == pytest.approx(
        b.loc["block:face_demographic", "estimate"])


def m_age_levels(planted):
    return planted[1]["age_band"].nunique() - 1


def test_gender_contrast_ffhq_and_study2_signs(planted):
    reg, m = planted
    s, f = synthetic(n=1500, seed=1, face_effect=6.0, interaction=4.0)
    d, _ = fs.prepare(s, f)
    study2 = pd.DataFrame({"score": [100.0, 102, 98, 120, 118, 122], "gender": ["men"] * 3 + ["women"] * 3,
                           "valid": [True] * 6})
    g = fs.gender_contrast(d, reg["coefficients"], study2)
    raw = g[g["term"] == "score"].set_index("model")
    assert raw.loc["s1x_gender_ffhq", "estimate"] > 0 and raw.loc["s2_gender", "estimate"] == pytest.approx(-20.0)
    adj = g[g["term"] == fs.MALE_TERM]
    assert len(adj) == 1 and adj["conf_low"].iloc[0] > 0
    v = fs._gender_values(g)
    assert v["opposite_signs"] and v["study2"]["mean_women"] == pytest.approx(120.0)
    assert not fs._gender_values(fs.gender_contrast(d, reg["coefficients"]))["study2_available"]


def test_no_face_effect_gives_small_face_block():
    s, f = synthetic(n=1200, seed=2, face_effect=0.0)
    d, _ = fs.prepare(s, f)
    m, w = fs.model_data(d)
    reg = fs.fit_regressions(m, w, n_boot=20, quantiles=(0.5,))
    b = reg["blocks"].set_index("term")
    assert b.loc["block:face", "conf_high"] < fs.MIN_DELTA_R2
    verdict = fs.block_verdict(b.loc["block:face", "p_holm"], b.loc["block:face", "conf_low"],
                               b.loc["block:face", "conf_high"])
    assert verdict == "not reproduced"


def test_mixed_model_reports_variance_and_interaction(planted):
    reg, m = planted
    v = reg["variance"].set_index("term")
    assert v.loc["var(cell intercept)", "n_groups"] == m["gender_age"].nunique()
    assert v.loc["var(residual)", "estimate"] > 0
    inter = v.loc["gender x age band interaction (fixed)"]
    assert inter["p_value"] < 0.05  # the planted male x 40+ interaction
    mixed = reg["coefficients"].query("model == 's1x_mixed'")
    assert mixed["n_groups"].iloc[0] == m["gender_age"].nunique() and mixed["converged"].all()
    assert v.loc["var(cell intercept)", "estimate"] > 0 and not v.loc["var(cell intercept)", "near_zero"]
    assert "degenerate" not in mixed or mixed["degenerate"].isna().all()  # checked, and a sound fit is not flagged


def test_mixed_model_with_a_zero_residual_is_flagged_degenerate(planted):
    # the score is a function of the fixed effects up to a wobble of 1e-9: the residual variance is ~0
    import statsmodels.formula.api as smf

    _, m = planted
    wobble = 1e-9 * (np.arange(len(m)) % 3)
    exact = m.assign(score_z=2.0 * m["exposure_z"] - 0.5 * m["blur_z"] + wobble)
    ols_fit = smf.ols(fs._formula(fs.QUALITY_TERMS + fs.FACE_TERMS), exact).fit()
    tidy, _ = fs.fit_mixed(exact, ols_fit, [])
    assert tidy["degenerate"].str.contains("residual variance").all() and "degenerate fit" in tidy["warnings"].iloc[0]


def test_mixed_model_flags_near_zero_variance():
    s, f = synthetic(n=1000, seed=3, face_effect=0.0, interaction=0.0)
    d, _ = fs.prepare(s, f)
    m, w = fs.model_data(d)
    ols = sm.OLS.from_formula(fs._formula(fs.QUALITY_TERMS + fs.FACE_TERMS), m).fit()
    tidy, var = fs.fit_mixed(m, ols, w)
    v = var.set_index("term").loc["var(cell intercept)"]
    if v["near_zero"]:
        assert "near zero" in v["warnings"] and "near zero" in tidy["warnings"].iloc[0]
    else:  # sampling gave a small positive variance: then it must not be flagged
        assert v["icc"] >= 1e-3


def test_quantile_regression_rows(planted):
    reg, _ = planted
    q = reg["coefficients"][reg["coefficients"]["model"].str.startswith("s1x_quantile")]
    assert set(q["quantile"]) == {0.1, 0.5, 0.9} and q["converged"].all()
    ex = q[q["term"] == "exposure_z"].set_index("quantile")["estimate"]
    assert (ex > 0.5).all()


def test_claims_read_blocks_total_and_direct_effects(planted):
    from discbias.claims import configure_claims

    reg, m = planted
    s, f = synthetic(n=1500, seed=1, face_effect=6.0, interaction=4.0)
    d, _ = fs.prepare(s, f)
    gender = pd.concat([fs.gender_contrast(d, reg["coefficients"]),
                        fs.gender_mediation(m, reg["coefficients"], reg["mediation"])], ignore_index=True)
    res = {"ffhq_strat_blocks": reg["blocks"], "ffhq_strat_bin_shares": fs.bin_shares(d),
           "ffhq_strat_gender_contrast": gender}
    claims = configure_claims(fs.CLAIMS, {"S1-stratified-face": {"primary": "top10"},
                                          "S1-stratified-quality": {"sesoi": 0.02}})
    table, specs = evaluate_claims(res, claims)
    t, sp = table.set_index("claim_id"), specs.set_index(["claim_id", "specification"])
    # both are extensions: never reproductions
    assert (t["reproduction"] == "not applicable").all() and (t["kind"] == "extension").all()
    assert t.loc["S1-stratified-quality", "extension"] == "robust"
    assert t.loc["S1-stratified-quality", "estimate"] == pytest.approx(
        reg["blocks"].set_index("term").loc["block:quality", "estimate"])
    # men score higher in the planted data: women are under-represented in the top decile (the total disparity);
    # the direct effect (given quality and the other attributes) is shown as a different question
    assert sp.loc[("S1-stratified-face", "top10"), "outcome"] == "supports"
    assert t.loc["S1-stratified-face", "extension"] in ("robust", "fragile")
    for name in ("direct", "total_sd", "total_mean", "indirect", "demographic_block"):
        assert sp.loc[("S1-stratified-face", name), "vote"] == "a different question"
        assert sp.loc[("S1-stratified-face", name), "estimate"] == sp.loc[("S1-stratified-face", name), "estimate"]
    assert sp.loc[("S1-stratified-face", "direct"), "estimate"] < 0  # women minus men
    share = gender.set_index("term").loc["share mediated", "estimate"]
    assert abs(share) < 0.3  # the planted gender effect is direct
    empty = evaluate_claims({}, fs.CLAIMS)[0].set_index("claim_id")
    assert empty.loc["S1-stratified-face", "verdict"] == "not yet estimated"


@pytest.mark.parametrize("p, low, high, verdict", [
    (0.001, 0.02, 0.03, "reproduced"), (0.001, 0.0099, 0.03, "inconclusive"), (0.2, 0.02, 0.03, "not reproduced"),
    (0.001, 0.001, 0.009, "not reproduced"), (np.nan, 0.02, 0.03, "inconclusive")])
def test_block_verdict_rule(p, low, high, verdict):
    assert fs.block_verdict(p, low, high) == verdict


def test_delta_r2_bootstrap_matches_ols():
    rng = np.random.default_rng(4)
    X = np.c_[np.ones(800), rng.normal(size=(800, 3))]
    y = X @ [0, 1, 0.5, 0.2] + rng.normal(size=800)
    est, reps = fs.delta_r2_bootstrap(X, y, np.arange(4), [np.array([0, 1]), np.array([0, 2, 3])], n_boot=40)
    r2 = lambda cols: sm.OLS(y, X[:, cols]).fit().rsquared  # noqa: E731
    assert est[0] == pytest.approx(r2([0, 1, 2, 3]) - r2([0, 1]))
    assert est[1] == pytest.approx(r2([0, 1, 2, 3]) - r2([0, 2, 3]))
    assert reps.shape == (40, 2) and np.all(reps[:, 1] > 0)


def test_frisch_newton_matches_statsmodels_quantreg():
    # Reference: statsmodels QuantReg (IRLS) on the same data; R: quantreg::rq(y ~ x1 + x2, tau = q).
    rng = np.random.default_rng(5)
    X = np.c_[np.ones(1500), rng.normal(size=(1500, 2)), rng.integers(0, 2, 1500)]
    y = X @ [1, 2, -1, 0.5] + rng.standard_t(4, size=1500) * (1 + 0.5 * np.abs(X[:, 1]))
    for q in (0.1, 0.5, 0.9):
        coef, it, ok = rq_fnb(X, y, q)
        ref = sm.QuantReg(y, X).fit(q=q, max_iter=5000, p_tol=1e-10)
        assert ok and it < 60
        np.testing.assert_allclose(coef, ref.params, atol=1e-4)
        np.testing.assert_allclose(np.sqrt(np.diag(rq_vcov(X, y, ref.params, q))), ref.bse, rtol=1e-8)


def test_quantreg_tidy_and_bad_quantile():
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"x": rng.normal(size=200)})
    df["y"] = df["x"] + rng.normal(size=200)
    df.loc[3, "x"] = np.nan
    t = quantreg("y ~ x", df, 0.5, model="m")
    assert t["n_obs"].iloc[0] == 199 and "1 row dropped" in t["warnings"].iloc[0]
    assert (t["conf_low"] < t["estimate"]).all()
    with pytest.raises(ValueError, match="quantile"):
        rq_fnb(np.ones((3, 1)), np.zeros(3), 1.0)


def test_study_without_face_attributes_skips_the_section(tmp_path):
    from types import SimpleNamespace

    from discbias.analyses import ffhq_strat
    from discbias.config import load_config

    cfg = tmp_path / "s.toml"
    cfg.write_text('[study]\nid = "t"\n[sources.a]\nfile = "a.csv"\nsha256 = "0"\n[roles]\nstudy1_scores = "a"\n')
    config = load_config(cfg)
    tables, issues = ffhq_strat.measure(SimpleNamespace(config=config))
    assert tables == {} and issues.empty
    ctx = SimpleNamespace(config=config, measures={"ffhq_scores": pd.DataFrame()}, values={})
    ffhq_strat.fit(ctx)
    assert ctx.values["ffhq_strat"] == {"available": False}
    from discbias.report.figures import ffhq_strat as ffhq_strat_figures

    ffhq_strat_figures.figures(SimpleNamespace(values=ctx.values))  # draws nothing, raises nothing


def test_total_direct_indirect_and_share_mediated_have_bootstrap_intervals(planted):
    reg, m = planted
    med = reg["mediation"]
    gender = fs._mediation_direct_boot(fs.gender_mediation(m, reg["coefficients"], med), med)
    coefs = reg["coefficients"].set_index(["model", "term"])
    total = gender[gender["model"] == "s1x_gender_total"].iloc[0]
    med_rows = gender[gender["model"] == "s1x_gender_mediated"].set_index("term")
    direct = float(coefs.loc[("s1x_ols_full", fs.MALE_TERM), "estimate"])
    # the bootstrap's point estimates are the two fits' coefficients (solved from the Gram matrix)
    assert med["estimates"][0] == pytest.approx(float(total["estimate"]), rel=1e-8)
    assert med["estimates"][1] == pytest.approx(direct, rel=1e-8)
    assert med_rows.loc["indirect", "estimate"] == pytest.approx(float(total["estimate"]) - direct, rel=1e-8)
    assert med_rows.loc["share mediated", "estimate"] == pytest.approx(1 - direct / float(total["estimate"]), rel=1e-8)
    # every effect has an interval around its estimate, with the resamples and seed recorded
    for term in ("indirect", "share mediated"):
        r = med_rows.loc[term]
        assert r["conf_low"] <= r["estimate"] <= r["conf_high"] and r["conf_low"] < r["conf_high"]
        assert r["n_boot"] == 20 and r["seed"] == fs.SEED and "percentile bootstrap" in r["method"]
    assert total["boot_conf_low"] < total["estimate"] < total["boot_conf_high"]
    assert total["conf_low"] < total["estimate"] < total["conf_high"]  # HC3
    # the planted gender effect is direct (the other attributes do not depend on gender): the share's
    # interval includes 0 and the bootstrap SE of the direct effect is close to its HC3 SE
    assert med_rows.loc["share mediated", "conf_low"] < 0 < med_rows.loc["share mediated", "conf_high"]
    boot_direct = fs._mediation_direct_boot(
        pd.concat([reg["coefficients"][(reg["coefficients"]["model"] == "s1x_ols_full")
                                       & (reg["coefficients"]["term"] == fs.MALE_TERM)]]), med).iloc[0]
    assert 0.5 < boot_direct["boot_std_error"] / boot_direct["std_error"] < 2.0
    v = fs._mediation_values(pd.concat([gender, boot_direct.to_frame().T], ignore_index=True))
    assert v["n_boot"] == 20 and v["share"]["boot_low"] < v["share"]["boot_high"]
    assert v["direct"]["estimate"] == pytest.approx(-direct) and v["direct"]["boot_low"] < v["direct"]["boot_high"]


def test_gram_bootstrap_replicates_are_refits_on_resampled_images():
    rng = np.random.default_rng(8)
    X = np.c_[np.ones(200), rng.integers(0, 2, 200), rng.normal(size=200)]
    y = X @ [0.0, 0.5, 1.0] + rng.normal(size=200)
    stat = fs.mediation_statistic(np.array([0, 1]), np.array([0, 1, 2]), 1)
    est, reps = fs.gram_bootstrap(X, y, stat, n_boot=3, seed=5)
    draw = np.random.default_rng(5).integers(0, 200, 200)   # the first resample of images
    total = sm.OLS(y[draw], X[draw][:, :2]).fit().params[1]
    direct = sm.OLS(y[draw], X[draw]).fit().params[1]
    assert reps[0] == pytest.approx([total, direct, total - direct, 1 - direct / total])
