"""Trees and partial correlations."""

import numpy as np
import pandas as pd
import pytest

from discbias.stats.correlation import holm, partial_correlations
from discbias.stats.trees import regression_tree


def test_tree_root_split_and_cv_is_seeded():
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"red": rng.uniform(0, 255, 500), "hair": rng.uniform(1, 7, 500)})
    d["score"] = 100 + 40 * (d.red > 120) - 2 * d.hair + rng.normal(0, 5, 500)
    t1, s1, _ = regression_tree(d, "score", ["hair", "red"], max_depth=5, seed=3)
    t2, _, _ = regression_tree(d, "score", ["hair", "red"], max_depth=5, seed=3)
    assert s1.loc[s1["depth"] == 0, "feature"].item() == "red"
    assert s1.loc[s1["depth"] == 0, "threshold"].item() == pytest.approx(120, abs=5)
    assert t1["estimate"].tolist() == t2["estimate"].tolist()
    assert s1["depth"].max() == 4 and (s1["parent"] >= -1).all()


def test_partial_corr_equals_residual_correlation_and_holm():
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"lum": rng.normal(size=300)})
    d["a"] = d.lum + rng.normal(size=300)
    d["b"] = rng.normal(size=300)
    d["score"] = 0.5 * d.a + d.lum + rng.normal(size=300)
    out = partial_correlations(d, "score", ["a", "b"], ["lum"], model="pc").set_index("term")
    res = lambda v: v - np.polyval(np.polyfit(d.lum, v, 1), d.lum)  # noqa: E731
    r = np.corrcoef(res(d.a), res(d.score))[0, 1]
    assert out.loc["a", "estimate"] == pytest.approx(r, abs=1e-10)
    assert out["p_holm"].tolist() == pytest.approx(holm(out["p_value"].to_numpy()).tolist())
    assert (out["p_holm"] >= out["p_value"]).all()
    assert "Holm within" in out["holm_family"].iloc[0]
