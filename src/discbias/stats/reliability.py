"""Inter-rater reliability of rating items, in the tidy results schema.

Study 2's ratings are stored in *slots* (the k-th rating an image received), with a varying
number of ratings per image and missing slots; a slot is not a person. Two coefficients are
reported per item:

* Krippendorff's alpha (interval level), which uses every pairable rating and needs no complete
  rater x target table; the interval is a bootstrap over images (seeded).
* ICC(2,k) and ICC(1,k) from pingouin, which need a complete table: they are computed on the
  images with at least ``k`` ratings of the item, using each image's first ``k`` ratings (in slot
  order) as "raters" 1..k. Because the k-th rating of different images comes from different
  people, ICC(1,k) (raters nested in targets) is the better-matched model; ICC(2,k) is reported
  because the brief and common practice ask for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import result_frame


_MCGRAW_WONG = {"ICC2k": "ICC(A,k)", "ICC1k": "ICC(1,k)"}


def first_k_ratings(long: pd.DataFrame, k: int, *, image: str = "image", slot: str = "slot",
                    value: str = "value") -> pd.DataFrame:
    """Each image's first ``k`` non-missing ratings (slot order), renumbered ``rater = 1..k``.

    Images with fewer than ``k`` ratings are left out.

    Examples
    --------
    >>> long = pd.DataFrame({"image": ["a"] * 3 + ["b"], "slot": [3, 1, 5, 1], "value": [1.0, 2.0, 3.0, 4.0]})
    >>> first_k_ratings(long, 2).values.tolist()
    [['a', 1, 2.0], ['a', 2, 1.0]]
    """
    d = long[[image, slot, value]].dropna().sort_values([image, slot])
    d = d.assign(rater=d.groupby(image).cumcount() + 1)
    counts = d.groupby(image)[value].transform("size")
    d = d[(counts >= k) & (d["rater"] <= k)]
    return d[[image, "rater", value]].reset_index(drop=True)


def krippendorff_interval(long: pd.DataFrame, *, image: str = "image", slot: str = "slot", value: str = "value",
                          n_boot: int = 200, seed: int = 0, conf_level: float = 0.95) -> dict:
    """Krippendorff's alpha (interval) with a percentile bootstrap CI over images.

    Returns a dict with ``alpha``, ``conf_low``, ``conf_high``, ``n_images``, ``n_ratings``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(4, 1.5, 100)
    >>> long = pd.DataFrame([(i, s, float(np.clip(np.round(truth[i] + rng.normal(0, 0.5)), 1, 7)))
    ...                      for i in range(100) for s in range(1, 5)], columns=["image", "slot", "value"])
    >>> out = krippendorff_interval(long, n_boot=20)
    >>> 0.7 < out["alpha"] < 1.0 and out["conf_low"] <= out["alpha"] <= out["conf_high"]
    True
    """
    import krippendorff

    wide = long.pivot_table(index=slot, columns=image, values=value, aggfunc="first")
    mat = wide.to_numpy(float)
    pairable = (np.isfinite(mat).sum(axis=0) >= 2)
    mat = mat[:, pairable]
    alpha = float(krippendorff.alpha(reliability_data=mat, level_of_measurement="interval"))
    boots = []
    if n_boot:
        rng = np.random.default_rng(seed)
        m = mat.shape[1]
        for _ in range(n_boot):
            cols = rng.integers(0, m, m)
            boots.append(krippendorff.alpha(reliability_data=mat[:, cols], level_of_measurement="interval"))
    a = (1 - conf_level) / 2
    lo, hi = (float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))) if boots else (np.nan, np.nan)
    return dict(alpha=alpha, conf_low=lo, conf_high=hi, n_images=int(mat.shape[1]),
                n_ratings=int(np.isfinite(mat).sum()), n_boot=n_boot)


def item_reliability(long: pd.DataFrame, *, item: str = "item", image: str = "image", slot: str = "slot",
                     value: str = "value", k: int = 3, n_boot: int = 200, seed: int = 0,
                     model: str = "reliability") -> pd.DataFrame:
    """Reliability of every item of a long ratings table: Krippendorff's alpha, ICC(2,k), ICC(1,k).

    Parameters
    ----------
    long : DataFrame
        One row per rating: ``item, image, slot, value``.
    k : int
        Ratings per image used for the ICCs (images with fewer are left out; see module notes).
    n_boot : int
        Bootstrap replicates for alpha's interval.
    seed : int
    model : str

    Returns
    -------
    DataFrame
        Tidy rows with ``term = "<item>: <coefficient>"`` and extra columns ``item``,
        ``coefficient``, ``n_images``, ``n_ratings``, ``k``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(4, 1.5, 60)
    >>> long = pd.DataFrame([("hair", i, s, truth[i] + rng.normal(0, 0.5)) for i in range(60) for s in range(1, 4)],
    ...                     columns=["item", "image", "slot", "value"])
    >>> item_reliability(long, n_boot=10)["coefficient"].tolist()
    ['Krippendorff alpha (interval)', 'ICC(2,k)', 'ICC(1,k)']
    """
    import pingouin as pg

    rows = []
    for it, d in long.groupby(item, sort=False):
        ka = krippendorff_interval(d, image=image, slot=slot, value=value, n_boot=n_boot, seed=seed)
        warns = []
        if ka["alpha"] < 0.667:
            warns.append("alpha < 0.667 (below Krippendorff's lowest acceptable level)")
        rows.append(dict(model=model, term=f"{it}: alpha", item=it, coefficient="Krippendorff alpha (interval)",
                         estimate=ka["alpha"], conf_low=ka["conf_low"], conf_high=ka["conf_high"], conf_level=0.95,
                         method=f"Krippendorff alpha, interval level, all pairable ratings; bootstrap over images ({n_boot})",
                         n_obs=ka["n_ratings"], n_images=ka["n_images"], n_ratings=ka["n_ratings"], k=np.nan,
                         converged=True, warnings=warns))
        fk = first_k_ratings(d, k, image=image, slot=slot, value=value)
        n_img = fk[image].nunique()
        n_all = d.dropna(subset=[value])[image].nunique()
        if n_img < 5:
            rows.append(dict(model=model, term=f"{it}: ICC(2,k)", item=it, coefficient="ICC(2,k)", estimate=np.nan,
                             method="pingouin ICC", n_obs=0, converged=False,
                             warnings=[f"fewer than 5 images with >= {k} ratings"]))
            continue
        icc = pg.intraclass_corr(data=fk, targets=image, raters="rater", ratings=value).set_index("Type")
        for typ, label in (("ICC2k", "ICC(2,k)"), ("ICC1k", "ICC(1,k)")):
            # pingouin < 0.6 names them ICC2k/ICC1k; 0.6 uses McGraw & Wong's ICC(A,k)/ICC(1,k)
            r = icc.loc[typ] if typ in icc.index else icc.loc[_MCGRAW_WONG[typ]]
            lo, hi = r["CI95"] if "CI95" in r else r["CI95%"]
            w = [f"images with >= {k} ratings only ({n_img} of {n_all}); first {k} ratings by slot as raters 1..{k}"]
            rows.append(dict(model=model, term=f"{it}: {label}", item=it, coefficient=label, estimate=float(r["ICC"]),
                             statistic=float(r["F"]), p_value=float(r["pval"] if "pval" in r else r["p_val"]), conf_low=float(lo), conf_high=float(hi),
                             conf_level=0.95, method=f"pingouin intraclass_corr ({typ}), complete {n_img} x {k} table",
                             n_obs=int(len(fk)), n_images=n_img, n_ratings=int(len(fk)), k=k, converged=True,
                             warnings=w))
    return result_frame(rows)
