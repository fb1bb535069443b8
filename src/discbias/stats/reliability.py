"""Inter-rater reliability of rating items, in the tidy results schema.

Study 2's ratings are stored in *slots* (the k-th rating an image received), with a varying
number of ratings per image and missing slots; a slot is not a person. Two coefficients are
reported per item:

* Krippendorff's alpha (interval level), which uses every pairable rating and needs no complete
  rater x target table; the interval is a bootstrap over images (seeded).
* ICC(2,k) and ICC(1,k) (formulas as in pingouin, checked against it in the tests), which need a complete table: they are computed on the
  images with at least ``k`` ratings of the item, using each image's first ``k`` ratings (in slot
  order) as "raters" 1..k. Because the k-th rating of different images comes from different
  people, ICC(1,k) (raters nested in targets) is the better-matched model; ICC(2,k) is reported
  because the brief and common practice ask for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..progress import progress
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


def icc_average(wide: np.ndarray, conf_level: float = 0.95) -> dict:
    """ICC(1,k) and ICC(2,k) (= McGraw & Wong's ICC(A,k)) of a complete targets x raters array.

    Mean squares of the two-way ANOVA without replication; F-based confidence intervals as in
    Shrout & Fleiss (1979) and McGraw & Wong (1996) (the formulas pingouin uses; the tests
    compare the two). Written in numpy because pingouin's long-format route takes seconds per item
    on 1,000 images.

    Examples
    --------
    >>> out = icc_average(np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6],
    ...                              [10, 5, 6, 9], [6, 2, 4, 7]], float))
    >>> round(float(out["ICC1k"]["icc"]), 3), round(float(out["ICC2k"]["icc"]), 3)
    (0.443, 0.62)
    """
    from scipy import stats

    x = np.asarray(wide, float)
    n, k = x.shape
    grand = x.mean()
    ssr = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ssc = n * ((x.mean(axis=0) - grand) ** 2).sum()
    sst = ((x - grand) ** 2).sum()
    sse = sst - ssr - ssc
    msr, msc = ssr / (n - 1), ssc / (k - 1)
    mse = sse / ((n - 1) * (k - 1))
    msw = (ssc + sse) / (n * (k - 1))
    a = 1 - conf_level
    # ICC(1,k)
    icc1k = (msr - msw) / msr
    f1 = msr / msw
    df1, df2 = n - 1, n * (k - 1)
    fl = f1 / stats.f.ppf(1 - a / 2, df1, df2)
    fu = f1 * stats.f.ppf(1 - a / 2, df2, df1)
    out = {"ICC1k": dict(icc=icc1k, F=f1, df1=df1, df2=df2, p=float(stats.f.sf(f1, df1, df2)),
                         low=1 - 1 / fl, high=1 - 1 / fu)}
    # ICC(A,k) with its single-rater ICC(A,1) for the interval
    icc2k = (msr - mse) / (msr + (msc - mse) / n)
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    fj = msc / mse
    vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = (n - 1) * k ** 2 * icc2 ** 2 * fj ** 2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    f3u = stats.f.ppf(1 - a / 2, n - 1, v)
    f3l = stats.f.ppf(1 - a / 2, v, n - 1)
    l2 = n * (msr - f3u * mse) / (f3u * (k * msc + (k * n - k - n) * mse) + n * msr)
    u2 = n * (f3l * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f3l * msr)
    f2 = msr / mse
    out["ICC2k"] = dict(icc=icc2k, F=f2, df1=n - 1, df2=(n - 1) * (k - 1),
                        p=float(stats.f.sf(f2, n - 1, (n - 1) * (k - 1))),
                        low=l2 * k / (1 + l2 * (k - 1)), high=u2 * k / (1 + u2 * (k - 1)))
    return out


def krippendorff_interval(long: pd.DataFrame, *, image: str = "image", slot: str = "slot", value: str = "value",
                          n_boot: int = 200, seed: int = 0, conf_level: float = 0.95) -> dict:
    """Krippendorff's alpha (interval) with a percentile bootstrap CI over images.

    Returns a dict with ``alpha``, ``conf_low``, ``conf_high``, ``n_images``, ``n_ratings``,
    ``n_boot`` and ``boot_se`` (the SD of the bootstrap replicates).

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
        for _ in progress(range(n_boot), desc="bootstrap alpha", unit="rep"):
            cols = rng.integers(0, m, m)
            boots.append(krippendorff.alpha(reliability_data=mat[:, cols], level_of_measurement="interval"))
    a = (1 - conf_level) / 2
    lo, hi = (float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))) if boots else (np.nan, np.nan)
    se = float(np.std(boots, ddof=1)) if len(boots) > 1 else np.nan
    return dict(alpha=alpha, conf_low=lo, conf_high=hi, n_images=int(mat.shape[1]),
                n_ratings=int(np.isfinite(mat).sum()), n_boot=n_boot, boot_se=se)


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
                         converged=True, warnings=warns, n_boot=n_boot, boot_se=ka["boot_se"]))
        fk = first_k_ratings(d, k, image=image, slot=slot, value=value)
        n_img = fk[image].nunique()
        n_all = d.dropna(subset=[value])[image].nunique()
        if n_img < 5:
            rows.append(dict(model=model, term=f"{it}: ICC(2,k)", item=it, coefficient="ICC(2,k)", estimate=np.nan,
                             method="pingouin ICC", n_obs=0, converged=False,
                             warnings=[f"fewer than 5 images with >= {k} ratings"]))
            continue
        wide = fk.pivot(index=image, columns="rater", values=value).to_numpy(float)
        icc = icc_average(wide)
        for typ, label in (("ICC2k", "ICC(2,k)"), ("ICC1k", "ICC(1,k)")):
            r = icc[typ]
            w = [f"images with >= {k} ratings only ({n_img} of {n_all}); first {k} ratings by slot as raters 1..{k}"]
            rows.append(dict(model=model, term=f"{it}: {label}", item=it, coefficient=label, estimate=float(r["icc"]),
                             statistic=float(r["F"]), p_value=float(r["p"]), conf_low=float(r["low"]),
                             conf_high=float(r["high"]), conf_level=0.95,
                             method=f"{label} (Shrout & Fleiss / McGraw & Wong; checked against pingouin), "
                                    f"complete {n_img} x {k} table",
                             n_obs=int(len(fk)), n_images=n_img, n_ratings=int(len(fk)), k=k, converged=True,
                             warnings=w))
    return result_frame(rows)


def icc_crossed(long: pd.DataFrame, *, image: str = "image", rater: str = "rater", value: str = "value",
                k: float | None = None) -> dict:
    """ICC(A,1) and ICC(A,k) from the crossed rater x image variance components (REML), which use every
    rating of an incomplete (planned-missing) design instead of the images every rater rated.

    ``value ~ 1 + (1|image) + (1|rater)``: ICC(A,1) = var(image) / (var(image) + var(rater) +
    var(residual)) (McGraw and Wong's absolute agreement of one rating) and ICC(A,k) =
    var(image) / (var(image) + (var(rater) + var(residual)) / k), with ``k`` the mean number of
    ratings per image unless given.

    Returns
    -------
    dict
        ``icc1``, ``icck``, ``k``, ``var_image``, ``var_rater``, ``var_residual``, ``n_ratings``,
        ``n_images``, ``n_raters``, ``converged``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img, rat = np.repeat(np.arange(60), 4), np.tile(np.arange(4), 60)
    >>> v = rng.normal(0, 1, 60)[img] + rng.normal(0, 0.3, 4)[rat] + rng.normal(0, 0.5, 240)
    >>> out = icc_crossed(pd.DataFrame({"image": img, "rater": rat, "value": v}))
    >>> 0.6 < out["icc1"] < 0.9, out["k"]
    (True, 4.0)
    """
    import warnings as _w

    import statsmodels.formula.api as smf

    d = long[[image, rater, value]].dropna().copy()
    d.columns = ["image", "rater", "value"]
    d["image"], d["rater"] = d["image"].astype(str), d["rater"].astype(str)
    d["_all"] = 1
    with _w.catch_warnings():
        _w.simplefilter("ignore")
        mod = smf.mixedlm("value ~ 1", d, groups="_all", vc_formula={"image": "0 + C(image)", "rater": "0 + C(rater)"},
                          re_formula="0")
        fit = None
        for method in ("lbfgs", "bfgs", "powell"):
            try:
                fit = mod.fit(reml=True, method=method)
            except Exception:  # noqa: BLE001 - the next optimizer is tried; none converging is reported below
                continue
            if fit.converged:
                break
    if fit is None:
        raise RuntimeError("crossed variance components: every optimizer failed")
    vc = dict(zip(mod.exog_vc.names, np.maximum(np.asarray(fit.vcomp, float), 0.0)))
    vi, vr, ve = float(vc["image"]), float(vc["rater"]), float(fit.scale)
    kk = float(k) if k is not None else float(d.groupby("image").size().mean())
    return dict(icc1=vi / (vi + vr + ve), icck=vi / (vi + (vr + ve) / kk), k=kk, var_image=vi, var_rater=vr,
                var_residual=ve, n_ratings=int(len(d)), n_images=int(d["image"].nunique()),
                n_raters=int(d["rater"].nunique()), converged=bool(fit.converged))
