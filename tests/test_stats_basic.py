"""The foundation's group tests and linear models, checked against independent computations."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from discbias.results import RESULT_COLUMNS
from discbias.stats.groups import category_shares, cell_summary, chisq_independence, welch_ttest
from discbias.stats.regression import anova_type1, ols


def test_welch_matches_scipy_and_hedges_g_formula():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1, 1, 40), rng.normal(0, 2, 25)
    df = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 25, "v": np.r_[a, b]})
    r = welch_ttest(df, "v", "g", "a", "b", model="m")
    assert list(r.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert r.loc[0, "statistic"] == pytest.approx(ref.statistic)
    assert r.loc[0, "p_value"] == pytest.approx(ref.pvalue)
    # Hedges' g written out independently
    sp = np.sqrt((39 * a.var(ddof=1) + 24 * b.var(ddof=1)) / 63)
    g = (a.mean() - b.mean()) / sp * (1 - 3 / (4 * 65 - 9))
    assert r.loc[1, "estimate"] == pytest.approx(g)


def test_cell_summary_keeps_empty_cells():
    df = pd.DataFrame({"race": ["A", "A", "B"], "hair": ["long", "long", "long"], "score": [1.0, 3.0, 2.0]})
    out = cell_summary(df, "score", ["race", "hair"], {"race": ["A", "B", "C"], "hair": ["long", "short"]})
    assert len(out) == 6
    c = out.set_index(["race", "hair"])
    assert c.loc[("C", "short"), "n"] == 0 and np.isnan(c.loc[("C", "short"), "mean"])
    assert c.loc[("A", "long"), "mean"] == 2.0
    assert c.loc[("A", "long"), "conf_low"] == pytest.approx(2 - stats.t.ppf(0.975, 1) * np.sqrt(2) / np.sqrt(2))


def test_category_shares_full_cross_and_chisq():
    df = pd.DataFrame({"g": ["t"] * 50 + ["b"] * 50, "c": ["x"] * 45 + ["y"] * 5 + ["x"] * 10 + ["y"] * 40})
    sh = category_shares(df, "c", "g", ["x", "y", "z"])
    assert len(sh) == 6 and sh.loc[(sh.group == "t") & (sh.category == "z"), "n"].item() == 0
    chi = chisq_independence(df, "c", "g", model="m")
    ref = stats.chi2_contingency(pd.crosstab(df["c"], df["g"]).to_numpy(), correction=False)
    assert chi.loc[0, "statistic"] == pytest.approx(ref[0])


def test_ols_matches_lstsq_and_reports_dropped_rows():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(100, 2)), columns=["x1", "x2"])
    df["y"] = 1 + 2 * df.x1 - df.x2 + rng.normal(size=100)
    df.loc[3, "x1"] = np.nan
    tidy, fit = ols("y ~ x1 + x2", df, model="m")
    d = df.dropna()
    X = np.c_[np.ones(len(d)), d[["x1", "x2"]]]
    beta = np.linalg.lstsq(X, d["y"], rcond=None)[0]
    assert tidy["estimate"].to_numpy() == pytest.approx(beta)
    assert (tidy["n_obs"] == 99).all()
    assert "1 row dropped for missing values" in tidy.loc[0, "warnings"]
    hc3, _ = ols("y ~ x1 + x2", df, model="m", cov_type="HC3")
    assert not np.allclose(hc3["std_error"], tidy["std_error"])


def test_anova_partial_eta_squared():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"g": list("abc") * 30, "x": rng.normal(size=90)})
    df["y"] = df["g"].map({"a": 0, "b": 1, "c": 2}) + df["x"] + rng.normal(size=90)
    _, fit = ols("y ~ C(g) + x", df, model="m")
    a = anova_type1(fit, model="m").set_index("term")
    ss = a["sum_sq"]
    assert a.loc["C(g)", "estimate"] == pytest.approx(ss["C(g)"] / (ss["C(g)"] + ss["Residual"]))
