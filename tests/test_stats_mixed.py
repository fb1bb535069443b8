"""Mixed-model wrappers: lme4 reference results, agreement with statsmodels, parameter recovery."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels

from discbias.stats.mixed import cell_marginal_means, mixedlm, nested_variance_components
from recovery import assert_recovers, k_for

DIETOX = Path(statsmodels.__file__).parent / "regression" / "tests" / "results" / "dietox.csv"


@pytest.fixture(scope="module")
def dietox():
    if not DIETOX.exists():
        pytest.skip(f"statsmodels' bundled dietox data not installed at {DIETOX}")
    return pd.read_csv(DIETOX)


@pytest.mark.parametrize("reml", [True, False])
def test_mixedlm_matches_lme4_dietox(dietox, reml):
    # R (lme4), published in statsmodels/regression/tests/test_lme.py, TestMixedLM.test_dietox:
    #   library(geepack); data(dietox)
    #   rm = lmer(Weight ~ Time + (1 | Pig), data=dietox)               # REML
    #   rm = lmer(Weight ~ Time + (1 | Pig), REML=FALSE, data=dietox)   # ML
    #   fixef(rm); sqrt(diag(vcov(rm))); attr(VarCorr(rm), "sc")^2; VarCorr(rm)[[1]][[1]]
    ref = {True: dict(fe=[15.723523, 6.942505], se=[0.78805374, 0.03338727], scale=11.36692, re=40.39395),
           False: dict(fe=[15.723517, 6.942506], se=[0.7829397, 0.0333661], scale=11.35251, re=39.82097)}[reml]
    tidy, fit = mixedlm("Weight ~ Time", dietox, "Pig", model="dietox", reml=reml)
    t = tidy.set_index("term")
    np.testing.assert_allclose(t.loc[["Intercept", "Time"], "estimate"], ref["fe"], rtol=1e-3)
    np.testing.assert_allclose(t.loc[["Intercept", "Time"], "std_error"], ref["se"], rtol=1e-3)
    np.testing.assert_allclose(t.loc["Group Var", "residual_var"], ref["scale"], rtol=1e-3)
    np.testing.assert_allclose(t.loc["Group Var", "estimate"], ref["re"], rtol=1e-3)
    assert bool(t["converged"].all())
    assert int(t["n_groups"].iloc[0]) == dietox["Pig"].nunique()
    assert not bool(t["re_near_zero"].iloc[0])


def test_mixedlm_flags_near_zero_variance_and_dropped_rows():
    rng = np.random.default_rng(5)
    d = pd.DataFrame({"g": np.repeat(np.arange(12), 30), "x": rng.normal(size=360)})
    e = rng.normal(size=360)
    e -= pd.Series(e).groupby(d["g"]).transform("mean").to_numpy()  # every group's mean noise is exactly 0
    d["y"] = 1 + 0.3 * d.x + e  # no group effect at all: the random-intercept variance is at the boundary
    d.loc[:4, "x"] = np.nan
    tidy, _ = mixedlm("y ~ x", d, "g", model="m")
    w = tidy["warnings"].iloc[0]
    assert "5 rows dropped" in w
    assert int(tidy["n_obs"].iloc[0]) == 355
    assert bool(tidy["re_near_zero"].iloc[0])
    assert "random-intercept variance near zero" in w


def test_mixedlm_does_not_flag_a_real_group_effect():
    rng = np.random.default_rng(5)
    d = pd.DataFrame({"g": np.repeat(np.arange(12), 30), "x": rng.normal(size=360)})
    d["y"] = 1 + 0.3 * d.x + np.repeat(rng.normal(0, 1.0, 12), 30) + rng.normal(size=360)
    tidy, _ = mixedlm("y ~ x", d, "g", model="m")
    assert not bool(tidy["re_near_zero"].iloc[0])
    assert "near zero" not in tidy["warnings"].iloc[0]


def _nested(rng, n_cells=12, per_cell=(60, 120), ratings=(3, 10), var=(1.0, 0.5, 1.2), mu=3.5):
    rows = []
    for c in range(n_cells):
        a = rng.normal(0, np.sqrt(var[0]))
        for i in range(rng.integers(*per_cell)):
            b = rng.normal(0, np.sqrt(var[1]))
            for _ in range(rng.integers(*ratings)):
                rows.append((f"c{c}", f"c{c}i{i}", mu + a + b + rng.normal(0, np.sqrt(var[2]))))
    return pd.DataFrame(rows, columns=["cell", "image", "value"])


def test_nested_vc_equals_statsmodels_reml():
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(3)
    d = _nested(rng, n_cells=5, per_cell=(10, 16), ratings=(2, 7))
    vc = nested_variance_components(d, n_boot=0).set_index("term")
    f = smf.mixedlm("value ~ 1", d, groups="cell", re_formula="1", vc_formula={"image": "0 + C(image)"}).fit(reml=True)
    np.testing.assert_allclose(vc.loc["var(cell)", "estimate"], f.cov_re.iloc[0, 0], rtol=1e-3)
    np.testing.assert_allclose(vc.loc["var(image)", "estimate"], f.vcomp[0], rtol=1e-3)
    np.testing.assert_allclose(vc.loc["var(residual)", "estimate"], f.scale, rtol=1e-3)
    np.testing.assert_allclose(vc.loc["(Intercept)", "estimate"], f.fe_params.iloc[0], rtol=1e-4)


def test_nested_vc_recovers_study2_shaped_truth():
    rng = np.random.default_rng(11)
    truth = (1.0, 0.5, 1.2)
    d = _nested(rng, var=truth)
    vc = nested_variance_components(d, n_boot=150, seed=1).set_index("term")
    for name, v in zip(("cell", "image", "residual"), truth):
        r = vc.loc[f"var({name})"]
        # within K bootstrap SEs of the truth (tests/recovery.py), not "this seed's interval covers it"
        assert_recovers(r["estimate"], v, r["std_error"], k=k_for(3), what=name)
    shares = vc.loc[["share(cell)", "share(image)", "share(residual)"], "estimate"]
    assert shares.sum() == pytest.approx(1.0)
    assert int(vc["n_groups"].iloc[0]) == 12


def test_nested_vc_rejects_images_in_two_cells():
    d = pd.DataFrame({"cell": ["a", "b"], "image": ["x", "x"], "value": [1.0, 2.0]})
    with pytest.raises(ValueError, match="more than one"):
        nested_variance_components(d, n_boot=0)


def test_mixedlm_recovers_fixed_effects_and_cell_means():
    # Study-2-like: 12 cells, ~90 images per cell, a cell random intercept (sd 8) and two slopes.
    rng = np.random.default_rng(7)
    cells = pd.MultiIndex.from_product([["Asian", "Black", "White"], ["men", "women"], ["long", "short"]],
                                       names=["race", "gender", "hair"]).to_frame(index=False)
    cells["u"] = rng.normal(0, 8, len(cells))
    d = cells.loc[cells.index.repeat(90)].reset_index(drop=True)
    d["cell"] = d.race + ":" + d.gender + ":" + d.hair
    d["lum"] = rng.uniform(0.2, 0.8, len(d))
    d["x"] = rng.normal(size=len(d))
    beta = dict(Intercept=150.0, lum=30.0, x=-2.5)
    d["score"] = beta["Intercept"] + beta["lum"] * d.lum + beta["x"] * d.x + d.u + rng.normal(0, 15, len(d))
    tidy, fit = mixedlm("score ~ lum + x", d, "cell", model="sim")
    t = tidy.set_index("term")
    for term in ("lum", "x"):
        assert_recovers(t.loc[term, "estimate"], beta[term], t.loc[term, "std_error"], k=k_for(14), what=term)
    assert 64 / 4 < t.loc["Group Var", "estimate"] < 64 * 4
    grid = cells[["race", "gender", "hair"]].assign(n=90)
    emm = cell_marginal_means(fit, grid, ["race", "gender", "hair"], model="sim", at={"lum": 0.5, "x": 0.0})
    true_means = beta["Intercept"] + beta["lum"] * 0.5 + cells["u"].to_numpy()
    # every cell mean within K SEs of its true mean (14 checks in this test with the slopes above;
    # tests/recovery.py): the former "9 of 12 intervals cover" failed with probability 0.002
    for m, truth, se in zip(emm["estimate"], true_means, emm["std_error"]):
        assert_recovers(m, truth, se, k=k_for(14), what="cell mean")
    assert len(emm) == 12 and emm["n"].eq(90).all()


REF_DIR = Path(__file__).parent / "reference"
SATT_MODELS = {"full": "y ~ x + w + f", "small": "y ~ x", "between": "y ~ w"}


@pytest.mark.parametrize("name", list(SATT_MODELS))
def test_mixedlm_satterthwaite_matches_lmertest_to_4_digits(name):
    # tests/reference/mixed_satterthwaite.R: lme4::lmer(REML) + lmerTest summary() on the synthetic
    # data set it wrote (unbalanced groups, within-group x, group-level w, factor f)
    d = pd.read_csv(REF_DIR / "mixed_satterthwaite_data.csv")
    ref = pd.read_csv(REF_DIR / "mixed_satterthwaite_output.csv")
    ref = ref[ref["model"] == name].set_index("term")
    tidy, _ = mixedlm(SATT_MODELS[name], d, "g", model=name)
    t = tidy[tidy["term"] != "Group Var"].copy()
    t["term"] = t["term"].replace({"Intercept": "(Intercept)", "f[b]": "fb", "f[c]": "fc"})
    t = t.set_index("term").loc[ref.index]
    for col in ("estimate", "std_error", "df", "statistic", "p_value"):
        np.testing.assert_allclose(t[col].astype(float), ref[col], rtol=5e-5, err_msg=f"{name}: {col}")
    np.testing.assert_allclose(t["re_var"].astype(float), ref["re_var"], rtol=1e-3)
    assert (t["test"] == "t (Satterthwaite)").all()
    # the Wald z alternative is kept, labelled, and differs from the t test where df are small
    z = t["statistic"].astype(float)
    from scipy import stats
    np.testing.assert_allclose(t["p_value_wald_z"].astype(float), 2 * stats.norm.sf(np.abs(z)), rtol=1e-10)
    small = t["df"].astype(float) < 30
    assert small.any() and (t.loc[small, "p_value"] > t.loc[small, "p_value_wald_z"]).all()
    assert ((t["conf_high"] - t["conf_low"]) > (t["conf_high_wald_z"] - t["conf_low_wald_z"])).all()


def test_mixedlm_zero_group_variance_falls_back_to_residual_df():
    rng = np.random.default_rng(5)
    d = pd.DataFrame({"g": np.repeat(np.arange(12), 30), "x": rng.normal(size=360)})
    d["y"] = 1 + 0.3 * d.x + rng.normal(size=360)
    tidy, fit = mixedlm("y ~ x", d, "g", model="m")
    fe = tidy[tidy["term"] != "Group Var"]
    if bool(tidy["re_near_zero"].iloc[0]):
        assert (fe["df"] == 360 - 2).all()
        assert fe["test"].str.contains("residual df").all()
        assert "Satterthwaite df undefined" in tidy["warnings"].iloc[0]
    else:  # a small positive variance: Satterthwaite df between the group count and n - p
        assert ((fe["df"] > 5) & (fe["df"] <= 358 + 1e-6)).all()


def test_mixedlm_ml_fit_reports_wald_z():
    d = pd.read_csv(REF_DIR / "mixed_satterthwaite_data.csv")
    tidy, _ = mixedlm("y ~ x", d, "g", model="ml", reml=False)
    fe = tidy[tidy["term"] != "Group Var"]
    assert (fe["test"] == "Wald z").all()
    np.testing.assert_allclose(fe["p_value"].astype(float), fe["p_value_wald_z"].astype(float))


def test_variance_components_at_the_boundary_bootstrap_sanely():
    """No variance between cells: a bootstrap refit that ran to the optimiser's clip (e^30) gave a
    bootstrap SE of 2e12 for a variance of 1e-11 (seen in a rebuild under another BLAS kernel). Refits
    that do not converge or reach the clip are now dropped and counted, never averaged in, and the
    REML criterion is evaluated without the cancellation that lost digits at huge variances."""
    from discbias.stats.mixed import _reml_negloglik, nested_variance_components

    rng = np.random.default_rng(7)
    cell = np.repeat(np.arange(12), 120)
    image = np.repeat(np.arange(360), 4)
    y = 4 + rng.normal(0, 0.3, 360)[image] + rng.normal(0, 2, len(cell))
    vc = nested_variance_components(pd.DataFrame({"value": y, "image": image, "cell": cell}), n_boot=40, seed=3)
    t = vc.set_index("term")
    total = float(np.var(y))
    assert t.loc["var(cell)", "estimate"] < 0.05 * total
    assert np.isfinite(t.loc["var(cell)", "std_error"]) and t.loc["var(cell)", "std_error"] < total
    assert t.loc["share(cell)", "conf_high"] <= 1.0
    # the criterion at a huge cell variance is worse than at a small one, and exact there
    st = pd.DataFrame({"value": y, "image": image, "cell": cell}).groupby("image")
    n = st["value"].count().to_numpy(float)
    ybar = st["value"].mean().to_numpy()
    wss = st["value"].apply(lambda v: ((v - v.mean()) ** 2).sum()).to_numpy()
    codes = st["cell"].first().to_numpy()
    small = _reml_negloglik(np.log([1e-6, 0.09, 4.0]), n, ybar, wss, codes, 12)
    huge = _reml_negloglik(np.log([1e13, 0.09, 4.0]), n, ybar, wss, codes, 12)
    assert np.isfinite(huge) and huge > small
