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


def _wcr11_reference(X, y, cl, j):
    """An independent WCR-11 with all 2^G Rademacher sign vectors: restricted residuals (coefficient j = 0),
    bootstrap t with CR1 standard errors (the small-sample factor cancels in the comparison of t's)."""
    import itertools

    G = int(cl.max()) + 1
    Xr = np.delete(X, j, axis=1)
    br = np.linalg.lstsq(Xr, y, rcond=None)[0]
    fitted, ur = Xr @ br, y - Xr @ br
    XtXi = np.linalg.inv(X.T @ X)

    def t_of(yy):
        b = XtXi @ X.T @ yy
        e = yy - X @ b
        S = np.array([X[cl == g].T @ e[cl == g] for g in range(G)])
        V = XtXi @ S.T @ S @ XtXi
        return b[j] / np.sqrt(V[j, j])

    t0 = t_of(y)
    tb = np.array([t_of(fitted + ur * np.asarray(v)[cl]) for v in itertools.product([-1.0, 1.0], repeat=G)])
    return float(np.mean(np.abs(tb) >= np.abs(t0) * (1 - 1e-9)))  # ties (the all-plus/all-minus vectors) count


def test_wild_cluster_bootstrap_matches_an_independent_full_enumeration():
    import statsmodels.formula.api as smf

    from discbias.stats.cr2 import cluster_table, wild_cluster_pvalues

    rng = np.random.default_rng(7)
    G = 9
    d = pd.DataFrame({"x": rng.normal(size=G * 15), "z": rng.normal(size=G * 15), "g": np.repeat(np.arange(G), 15)})
    d["y"] = 0.3 * d.x + rng.normal(size=G)[d.g] + rng.normal(size=len(d))
    fit = smf.ols("y ~ x + z", d).fit()
    w = wild_cluster_pvalues(fit, d["g"].to_numpy()).set_index("term")
    cl = d["g"].to_numpy()
    for j, term in enumerate(["Intercept", "x", "z"]):
        # all 2^9 sign vectors: no Monte Carlo error; the all-plus and all-minus sign vectors give the
        # observed |t| exactly and are counted as ties on any machine, so the two implementations agree exactly
        assert w.loc[term, "wild_enumerated"] and w.loc[term, "wild_draws"] == 2 ** G
        ref = _wcr11_reference(fit.model.exog, fit.model.endog, cl, j)
        assert abs(w.loc[term, "p_value_wild"] - ref) <= 1e-12, (term, w.loc[term, "p_value_wild"], ref)
        assert w.loc[term, "p_value_wild"] >= 2 / 2 ** G  # the two exact ties are always counted
    # in the cluster table (G < 50) the wild p-values sit beside the CR2 ones, and agree with them roughly
    t = cluster_table(fit, cl, model="m").set_index("term")
    assert t.loc["x", "inference"] == "CR2, t(G-1)" and "WCR-11" in t.loc["x", "wild_method"]
    assert abs(t.loc["x", "p_value_wild"] - t.loc["x", "p_value"]) < 0.05
