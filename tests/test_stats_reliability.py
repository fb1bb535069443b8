"""Reliability: our ICC formulas against pingouin, Krippendorff's alpha with missing values."""

import numpy as np
import pandas as pd
import pytest

from discbias.stats.reliability import first_k_ratings, icc_average, item_reliability, krippendorff_interval


def test_icc_matches_pingouin_on_its_dataset():
    pg = pytest.importorskip("pingouin")
    d = pg.read_dataset("icc")
    ref = pg.intraclass_corr(d, targets="Wine", raters="Judge", ratings="Scores").set_index("Type")
    ours = icc_average(d.pivot(index="Wine", columns="Judge", values="Scores").to_numpy(float))
    for typ, names in (("ICC1k", ("ICC1k", "ICC(1,k)")), ("ICC2k", ("ICC2k", "ICC(A,k)"))):
        name = next(n for n in names if n in ref.index)
        r = ref.loc[name]
        assert ours[typ]["icc"] == pytest.approx(r["ICC"], abs=1e-6)
        assert ours[typ]["F"] == pytest.approx(r["F"], rel=1e-6)
        lo, hi = r["CI95"] if "CI95" in r else r["CI95%"]
        assert ours[typ]["low"] == pytest.approx(lo, abs=0.006)  # pingouin rounds to 2 decimals
        assert ours[typ]["high"] == pytest.approx(hi, abs=0.006)


def test_shrout_fleiss_table_values():
    # Shrout & Fleiss (1979), Table 2 data: ICC(1,k) = .44, ICC(2,k) = .62 (their Table 4).
    x = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    out = icc_average(x)
    assert round(out["ICC1k"]["icc"], 2) == 0.44
    assert round(out["ICC2k"]["icc"], 2) == 0.62


def test_first_k_ratings_skips_missing_and_short_images():
    long = pd.DataFrame({"image": ["a", "a", "a", "b", "b"], "slot": [2, 1, 7, 1, 3],
                         "value": [5.0, np.nan, 3.0, 1.0, 2.0]})
    out = first_k_ratings(long, 2)
    assert out["image"].tolist() == ["a", "a", "b", "b"]
    assert out["value"].tolist() == [5.0, 3.0, 1.0, 2.0]
    assert first_k_ratings(long, 3).empty


def test_alpha_perfect_and_noisy():
    perfect = pd.DataFrame([(i, s, float(i % 7 + 1)) for i in range(40) for s in range(1, 4)],
                           columns=["image", "slot", "value"])
    assert krippendorff_interval(perfect, n_boot=0)["alpha"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = perfect.assign(value=rng.integers(1, 8, len(perfect)).astype(float))
    assert abs(krippendorff_interval(noise, n_boot=0)["alpha"]) < 0.2


def test_item_reliability_handles_missing_slots_and_flags_low_alpha():
    rng = np.random.default_rng(2)
    rows = []
    for i in range(80):
        t = rng.normal(4, 1.5)
        for s in range(1, 1 + rng.integers(2, 7)):
            rows.append(("good", i, s, float(np.clip(round(t + rng.normal(0, 0.4)), 1, 7))))
            rows.append(("bad", i, s, float(rng.integers(1, 8))))
    long = pd.DataFrame(rows, columns=["item", "image", "slot", "value"])
    rel = item_reliability(long, k=3, n_boot=30, seed=1)
    a = rel[rel["coefficient"].str.startswith("Krippendorff")].set_index("item")
    assert a.loc["good", "estimate"] > 0.8 and a.loc["bad", "estimate"] < 0.3
    assert "alpha < 0.667" in a.loc["bad", "warnings"]
    icc = rel[rel["coefficient"] == "ICC(2,k)"].set_index("item")
    n_ge3 = long[long["item"] == "good"].groupby("image").size().ge(3).sum()
    assert int(icc.loc["good", "n_images"]) == n_ge3
    assert "images with >= 3 ratings only" in icc.loc["good", "warnings"]
