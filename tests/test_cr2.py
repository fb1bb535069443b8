"""CR2 (Bell-McCaffrey) cluster-robust inference with t(G - 1), checked against R's clubSandwich."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from discbias.stats.cr2 import FEW_CLUSTERS, cluster_table, contrast_cr2, cr2_table, vcov_cr2

REF = Path(__file__).parent / "reference"


def test_cr2_matches_clubsandwich_to_1e_6():
    d = pd.read_csv(REF / "cr2_data.csv")
    ref = pd.read_csv(REF / "cr2_clubsandwich.csv")
    ref["term"] = ref["term"].str.strip().replace({"fb": "C(f)[b]", "fc": "C(f)[c]", "(Intercept)": "Intercept"})
    ref = ref.set_index("term")
    t = cr2_table(smf.ols("y ~ x1 + x2 + C(f)", d).fit(), d["cluster"], model="m").set_index("term")
    assert set(t.index) == set(ref.index)
    for col, rcol in (("estimate", "estimate"), ("std_error", "std_error"), ("p_value", "p_naive"),
                      ("conf_low", "conf_low"), ("conf_high", "conf_high")):
        np.testing.assert_allclose(t[col], ref.loc[t.index, rcol].astype(float), rtol=0, atol=1e-6, err_msg=col)
    assert (t["df"] == 11).all() and (t["n_groups"] == 12).all()


def test_cr2_is_larger_than_cr1_with_few_clusters_and_unbiased_under_iid():
    # under iid errors CR2 is exactly unbiased: the mean of its variance over simulations matches the OLS variance
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(48), rng.normal(size=48)])
    g = np.repeat(np.arange(8), 6)
    V_true = np.linalg.inv(X.T @ X)[1, 1]
    vals = []
    for _ in range(400):
        y = X @ [1.0, 0.5] + rng.normal(size=48)
        b = np.linalg.lstsq(X, y, rcond=None)[0]
        vals.append(vcov_cr2(X, y - X @ b, g)[1, 1])
    assert np.mean(vals) == pytest.approx(V_true, rel=0.08)


def test_cluster_table_switches_at_few_clusters():
    rng = np.random.default_rng(1)
    for G, label in ((12, "CR2, t(G-1)"), (FEW_CLUSTERS, "CR1, z")):
        d = pd.DataFrame({"x": rng.normal(size=G * 4), "g": np.repeat(np.arange(G), 4)})
        d["y"] = d["x"] + rng.normal(size=len(d))
        d.loc[0, "x"] = np.nan  # a dropped row: the cluster labels follow the fit's rows
        t = cluster_table(smf.ols("y ~ x", d).fit(), d["g"].to_numpy(), model="m")
        assert t["inference"].iloc[0] == label and t["n_obs"].iloc[0] == G * 4 - 1


def test_contrast_cr2_equals_coefficient_se():
    d = pd.read_csv(REF / "cr2_data.csv")
    fit = smf.ols("y ~ x1 + x2", d).fit()
    est, se, df = contrast_cr2(fit, d["cluster"], np.array([[0.0, 1.0, 0.0]]))
    t = cr2_table(fit, d["cluster"], model="m").set_index("term")
    assert est[0] == pytest.approx(t.loc["x1", "estimate"]) and se[0] == pytest.approx(t.loc["x1", "std_error"])
    assert df == 11
