"""cell_summary against fairlearn's MetricFrame (the reference; see the cell_summary docstring)."""

import numpy as np
import pandas as pd
import pytest

from discbias.stats.groups import cell_summary

metrics = pytest.importorskip("fairlearn.metrics", reason="fairlearn (dev extra) is the reference")


def _finite(y):
    return pd.Series(np.asarray(y, float)).dropna()


def _metricframe_summary(d, value, by, levels):
    d = d.dropna(subset=by)
    mf = metrics.MetricFrame(
        metrics={"n": lambda y, _: int(_finite(y).size), "mean": lambda y, _: _finite(y).mean(),
                 "sd": lambda y, _: _finite(y).std(), "median": lambda y, _: _finite(y).median()},
        y_true=d[value].to_numpy(float), y_pred=d[value].to_numpy(float), sensitive_features=d[by].astype(object))
    g = mf.by_group
    if not isinstance(g.index, pd.MultiIndex):
        g.index = pd.MultiIndex.from_arrays([g.index], names=by)
    g = g.reindex(pd.MultiIndex.from_product([levels[b] for b in by], names=by))  # the empty cells
    g["n"] = g["n"].fillna(0).astype(int)
    return g.astype({"mean": float, "sd": float, "median": float}).reset_index()


@pytest.mark.parametrize("by", [["a"], ["a", "b"]])
def test_cell_summary_matches_metricframe(by):
    rng = np.random.default_rng(3)
    n = 3000
    d = pd.DataFrame({"v": rng.normal(2, 1, n), "a": rng.choice(["x", "y", "z"], n), "b": rng.choice(["p", "q"], n)})
    d.loc[rng.choice(n, 40, replace=False), "v"] = np.nan
    d.loc[rng.choice(n, 20, replace=False), "b"] = None
    d.loc[(d.a == "z") & (d.b == "q"), "v"] = np.nan  # a cell whose values are all missing
    levels = {"a": ["x", "y", "z", "w"], "b": ["p", "q", "r"]}  # w and r: empty cells
    ours = cell_summary(d, "v", by, {k: levels[k] for k in by})
    ref = _metricframe_summary(d, "v", by, levels)
    assert ours[by].equals(ref[by]) and ours["n"].tolist() == ref["n"].tolist()
    assert (ours["n"] == 0).sum() == (ref["n"] == 0).sum() > 0
    for col in ("mean", "sd", "median"):
        np.testing.assert_allclose(ours[col], ref[col], rtol=1e-12, atol=0, equal_nan=True)
