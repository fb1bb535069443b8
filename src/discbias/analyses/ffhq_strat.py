"""Study 1 extended: how the released scores stratify all 70,000 FFHQ images.

The released scores (``RGB_format_images_data.csv``) are joined with the Face API attributes of
each image (:mod:`discbias.studies.ffhq_features`). Four analyses, each a tidy result table:

* **Disaggregation** (fairlearn's MetricFrame, by hand): score n, mean, median, SD and a t CI for
  every cell of gender x age band x glasses (the full cross, empty cells kept with n = 0) and
  for each attribute alone; each group's share of every score decile and of the top and bottom
  1% (``ffhq_strat_groups``, ``ffhq_strat_cells``, ``ffhq_strat_bin_shares``).
* **Image-quality stratification**: score against exposure, blur, noise and the blue-channel
  mean, as binned means with CIs and a cubic B-spline fit with HC3 bands
  (``ffhq_strat_quality_bins``, ``ffhq_strat_quality_curves``, ``ffhq_strat_quality_tests``).
* **Regression** of the standardized score on standardized image-quality and face attributes:
  OLS with HC3 standard errors; a linear mixed model (statsmodels MixedLM, REML) with gender and
  age band as fixed effects and random intercepts for the 14 gender x age band cells, which
  partially pools their interaction; quantile regressions at the 10th, 50th and 90th
  percentiles (``ffhq_strat_coefficients``, ``ffhq_strat_variance``).
* **Blocks**: robust (HC3) Wald F-tests, in the full OLS model, of the image-quality block, of
  the face block, and of the face block's two parts: the demographic labels (gender, age band)
  and the other face attributes (smile, head pose, glasses, facial hair, make-up, headwear,
  baldness, hair colour, face size, two faces, occlusion); each block's incremental R^2 over the
  full model without it, with a bootstrap CI (``ffhq_strat_blocks``). The quality block decides
  ``S1-stratified-quality``; the demographic block decides ``S1-stratified-face``, which is
  narrowed to what FFHQ can test: its labels have gender and age but no race.
* **Gender contrast**: men's minus women's mean score on FFHQ (raw, Welch) and adjusted for image
  quality and the other face attributes (the OLS coefficient, in score SDs), beside the same raw
  contrast in Study 2 (``ffhq_strat_gender_contrast``): men score higher on FFHQ, lower in Study 2.

Multiple testing: Holm within each family (the terms of one model; the four quality curves; the
four block tests), written in the ``p_holm`` and ``multiple_testing`` columns.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from ..claims import Claim, SpecResult, Specification
from ..progress import progress
from ..results import clean_term, result_frame
from ..stats.groups import cell_summary, welch_ttest
from ..stats.mixed import MIXED_OPTIMIZERS, mixedlm_highest_reml  # noqa: F401 (MIXED_OPTIMIZERS: public here before)
from ..stats.quantile import quantreg
from ..stats.regression import ols
from ..studies.ffhq_features import GENDERS, GLASSES, HAIR_COLORS, read_ffhq_features

NO_FACE = "no face"
NO_HAIR_COLOUR = "none given"
AGE_BANDS = ["0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60+"]
_AGE_EDGES = [-np.inf, 10, 20, 30, 40, 50, 60, np.inf]
QUALITY_MEASURES = {"exposure_value": "Face API exposure", "blur_value": "Face API blur",
                    "noise_value": "Face API noise", "blue_mean": "blue-channel mean (0-255)"}
BINS = ["bottom 1%"] + [f"D{k}" for k in range(1, 11)] + ["top 1%"]
QUANTILES = (0.1, 0.5, 0.9)
#: Minimum incremental R^2 (share of score variance) for a block to count as stratifying scores.
MIN_DELTA_R2 = 0.01
ALPHA = 0.05
N_BOOT = 200
SEED = 20240215

#: Predictors (after :func:`prepare`): continuous ones are z-scores over the model sample.
QUALITY_TERMS = ["exposure_z", "I(exposure_z ** 2)", "blur_z", "noise_z", "blue_z"]
FACE_TERMS = ["C(gender, Treatment('female'))", "C(age_band, Treatment('20-29'))", "smile_z", "abs_yaw_z",
              "pitch_z", "abs_roll_z", "C(glasses, Treatment('NoGlasses'))", "facial_hair_z", "eye_makeup",
              "lip_makeup", "headwear", "bald_z", "C(hair_colour, Treatment('brown'))",
              "face_area_z", "multi_face", "occluded"]
# ``hair_invisible`` is left out: in the released files it equals ``headwear`` (headwear
# confidence >= 0.5) for every face, so the two cannot be separated.
DEMOGRAPHIC_TERMS = FACE_TERMS[:2]
#: Face attributes that are not demographic labels: expression, pose, accessories, make-up, hair, framing.
OTHER_FACE_TERMS = FACE_TERMS[2:]
#: The block tests: (term, block label, terms, what the reduced model leaves out).
BLOCKS = (("block:quality", "image quality", QUALITY_TERMS),
          ("block:face", "face attributes", FACE_TERMS),
          ("block:face_demographic", "face: gender and age", DEMOGRAPHIC_TERMS),
          ("block:face_other", "face: other attributes", OTHER_FACE_TERMS))
#: Which block each claim reads.
CLAIM_BLOCKS = {"S1-stratified-quality": "block:quality", "S1-stratified-face": "block:face_demographic"}
CLAIM_IDS = ("S1-stratified-quality", "S1-stratified-face")
#: BLAS threads while fitting. The fits are chains of small dense products (70k x 35); with
#: several BLAS threads on a shared 2-core machine they ran 10x slower than single-threaded.
BLAS_THREADS = 1


# ----------------------------------------------------------------------------------------- data
def measure(ctx):
    """Adapter: the face-attribute table (cached as Parquet keyed by the archive's sha256).

    A study without an ``ffhq_features`` role has no such section: nothing is read.
    """
    if not ctx.config.has_role("ffhq_features"):
        return {}, pd.DataFrame()
    src = ctx.config.role("ffhq_features")
    res = read_ffhq_features(ctx.raw("ffhq_features"), expected_files=src.meta.get("files"),
                             content_digest=src.content_digest or None, cache_dir=ctx.paths.build / "cache",
                             on_invalid=ctx.on_invalid)
    return res.tables, res.issues


def _z(s: pd.Series) -> pd.Series:
    s = s.astype(float)
    sd = s.std()
    return (s - s.mean()) / sd if sd > 0 else s * 0.0


def _with_level(s: pd.Series, levels: list[str], fill: str, fill_mask: pd.Series) -> pd.Categorical:
    out = s.astype(object).where(~fill_mask, fill)
    return pd.Categorical(out, categories=levels + [fill])


def prepare(scores: pd.DataFrame, features: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Join scores and face attributes; add grouping variables and standardized predictors.

    Returns ``(data, info)``: one row per valid score (``has_features`` False where no attribute
    file matched) and counts of what matched.

    Examples
    --------
    >>> s = pd.DataFrame({"image_id": ["00000", "00001"], "score": [1.0, 2.0], "blue_mean": [90.0, 100.0],
    ...                   "valid": [True, True]})
    >>> f = pd.DataFrame({"image_id": ["00000"], "no_face": [True], "multi_face": [False]})
    >>> d, info = prepare(s, f); info["n_scores_without_features"], str(d.loc[0, "gender"])
    (1, 'no face')
    """
    sc = scores[scores["valid"]] if "valid" in scores else scores
    d = sc.merge(features, on="image_id", how="left", indicator=True)
    info = dict(n_scores=int(len(sc)), n_features=int(len(features)),
                n_scores_without_features=int((d["_merge"] == "left_only").sum()),
                n_features_without_score=int((~features["image_id"].isin(sc["image_id"])).sum()))
    d["has_features"] = d["_merge"] == "both"
    d = d.drop(columns="_merge")
    for c, default in (("no_face", False), ("multi_face", False)):
        d[c] = d[c].astype("boolean").fillna(default).astype(bool) if c in d else default
    for c in ("gender", "glasses", "age", "hair_color", "smile", "beard", "moustache", "sideburns", "eye_makeup",
              "lip_makeup", "accessory_headwear", "bald", "hair_invisible", "exposure_value", "blur_value",
              "noise_value", "head_yaw", "head_pitch", "head_roll", "face_area_share", "forehead_occluded",
              "eye_occluded", "mouth_occluded", "blur_level", "exposure_level", "noise_level", "face_status"):
        if c not in d:
            d[c] = np.nan
    no = d["no_face"] | ~d["has_features"]
    d["gender"] = _with_level(d["gender"], GENDERS, NO_FACE, no)
    d["glasses"] = _with_level(d["glasses"], GLASSES, NO_FACE, no)
    band = pd.cut(d["age"].astype(float), _AGE_EDGES, right=False, labels=AGE_BANDS)
    d["age_band"] = _with_level(band, AGE_BANDS, NO_FACE, no)
    hc = d["hair_color"].astype(object).where(d["hair_color"].notna(), NO_HAIR_COLOUR)
    d["hair_colour"] = _with_level(hc, HAIR_COLORS + [NO_HAIR_COLOUR], NO_FACE, no)
    d["cell"] = (d["gender"].astype(str) + " | " + d["age_band"].astype(str) + " | " + d["glasses"].astype(str))
    d["gender_age"] = d["gender"].astype(str) + ":" + d["age_band"].astype(str)

    def flag(s, yes, no_, thr=0.5):
        v = s.astype(float)
        return _with_level(pd.Series(np.where(v >= thr, yes, no_), index=d.index).where(v.notna()),
                           [yes, no_], NO_FACE, no)

    d["smiling"] = flag(d["smile"], "smiling", "not smiling")
    fh = d[["beard", "moustache", "sideburns"]].astype(float)
    d["facial_hair"] = flag(fh.max(axis=1, skipna=False), "facial hair", "no facial hair")
    mk = d["eye_makeup"].astype("boolean") | d["lip_makeup"].astype("boolean")
    d["makeup"] = flag(mk.astype("Float64").astype(float), "makeup", "no makeup")
    d["headwear_g"] = flag(d["accessory_headwear"], "headwear", "no headwear")
    for c, levels in (("blur_level", ["low", "medium", "high"]),
                      ("exposure_level", ["underExposure", "goodExposure", "overExposure"]),
                      ("noise_level", ["low", "medium", "high"])):
        d[c] = _with_level(d[c], levels, NO_FACE, no)
    d["face_status"] = pd.Categorical(np.where(~d["has_features"], "no attribute file",
                                               d["face_status"].astype(object)),
                                      categories=["one", "several", "none", "no attribute file"])
    # Model variables (z-scored over the rows that have a face; refitted samples re-standardize).
    f = ~no
    num = {"exposure_z": "exposure_value", "blur_z": "blur_value", "noise_z": "noise_value", "blue_z": "blue_mean",
           "smile_z": "smile", "bald_z": "bald", "face_area_z": "face_area_share"}
    for z, c in num.items():
        d[z] = np.nan
        d.loc[f, z] = _z(d.loc[f, c])
    d["abs_yaw_z"] = np.nan
    d.loc[f, "abs_yaw_z"] = _z(d.loc[f, "head_yaw"].astype(float).abs())
    d["abs_roll_z"] = np.nan
    d.loc[f, "abs_roll_z"] = _z(d.loc[f, "head_roll"].astype(float).abs())
    d["pitch_z"] = np.nan
    d.loc[f, "pitch_z"] = _z(d.loc[f, "head_pitch"])
    d["facial_hair_z"] = np.nan
    d.loc[f, "facial_hair_z"] = _z(fh.loc[f].mean(axis=1))
    for c in ("eye_makeup", "lip_makeup", "hair_invisible"):
        d[c] = d[c].astype("Float64").astype(float)
    d["headwear"] = (d["accessory_headwear"].astype(float) >= 0.5).astype(float).where(d["accessory_headwear"].notna())
    occ = d[["forehead_occluded", "eye_occluded", "mouth_occluded"]].astype("Float64").astype(float)
    d["occluded"] = occ.max(axis=1, skipna=False)
    d["multi_face"] = d["multi_face"].astype(float)
    d["score_z"] = _z(d["score"])
    d["in_model"] = f
    return d, info


# ------------------------------------------------------------------------------ disaggregation
#: Attributes summarized one at a time (column -> label).
ATTRIBUTES = {"gender": "gender", "age_band": "age band", "glasses": "glasses", "face_status": "faces found",
              "smiling": "smile", "facial_hair": "facial hair", "makeup": "makeup", "headwear_g": "headwear",
              "hair_colour": "top hair colour", "blur_level": "blur level", "exposure_level": "exposure level",
              "noise_level": "noise level"}
CROSS = ["gender", "age_band", "glasses"]


def group_summaries(d: pd.DataFrame) -> pd.DataFrame:
    """Score n, mean, median, SD and 95% t CI for each level of each attribute alone (all levels).

    Examples
    --------
    >>> d = pd.DataFrame({"score": [1.0, 2.0, 3.0],
    ...                   "gender": pd.Categorical(["male", "male", "female"], ["female", "male", "no face"])})
    >>> group_summaries(d[["score", "gender"]].assign(**{a: d["gender"] for a in ATTRIBUTES if a != "gender"}))["n"].tolist()[:3]
    [1, 2, 0]
    """
    out = []
    for col, label in ATTRIBUTES.items():
        s = cell_summary(d, "score", [col], {col: list(d[col].cat.categories)})
        out.append(s.rename(columns={col: "level"}).assign(attribute=col, attribute_label=label))
    df = pd.concat(out, ignore_index=True)
    df["level"] = df["level"].astype(str)
    return df[["attribute", "attribute_label", "level", "n", "mean", "median", "sd", "conf_low", "conf_high",
               "conf_level"]]


def cross_summary(d: pd.DataFrame) -> pd.DataFrame:
    """Score summary for every cell of gender x age band x glasses (full cross, n = 0 kept)."""
    levels = {c: list(d[c].cat.categories) for c in CROSS}
    s = cell_summary(d, "score", CROSS, levels)
    for c in CROSS:
        s[c] = s[c].astype(str)
    s["structurally_empty"] = (s[CROSS].eq(NO_FACE).any(axis=1) & ~s[CROSS].eq(NO_FACE).all(axis=1))
    return s


def score_bins(score: pd.Series) -> pd.DataFrame:
    """Decile (``D1``..``D10``, by rank, ties broken by order) and extreme-1% membership.

    Examples
    --------
    >>> b = score_bins(pd.Series(np.arange(1000.0)))
    >>> int(b["decile"].value_counts().min()), int(b["top1"].sum()), int(b["bottom1"].sum())
    (100, 10, 10)
    """
    r = score.rank(method="first")
    n = score.notna().sum()
    dec = np.ceil(r / n * 10).clip(1, 10)
    return pd.DataFrame({"decile": pd.Categorical("D" + dec.astype("Int64").astype(str), BINS[1:-1]),
                         "bottom1": r <= np.floor(0.01 * n), "top1": r > n - np.floor(0.01 * n)}, index=score.index)


def bin_shares(d: pd.DataFrame) -> pd.DataFrame:
    """Each group's share of every score bin (deciles, bottom and top 1%), for each attribute alone
    and for the gender x age band x glasses cells; every level x bin appears.

    Columns: ``grouping, level, bin, n, bin_total, share, overall_share, ratio`` (share / overall
    share: 1 means represented as in the whole set), with a Wilson 95% CI of ``share``.
    """
    from statsmodels.stats.proportion import proportion_confint

    b = score_bins(d["score"])
    masks = {"bottom 1%": b["bottom1"].to_numpy()}
    for k in range(1, 11):
        masks[f"D{k}"] = (b["decile"] == f"D{k}").to_numpy()
    masks["top 1%"] = b["top1"].to_numpy()
    groupings = {c: d[c] for c in ATTRIBUTES} | {"gender x age band x glasses": pd.Categorical(
        d["cell"], categories=[" | ".join(x) for x in pd.MultiIndex.from_product(
            [list(d[c].cat.categories) for c in CROSS])])}
    rows = []
    N = len(d)
    for gname, g in groupings.items():
        g = pd.Categorical(g)
        codes = g.codes
        overall = np.bincount(codes[codes >= 0], minlength=len(g.categories))
        for bname, m in masks.items():
            cnt = np.bincount(codes[m & (codes >= 0)], minlength=len(g.categories))
            tot = int(m.sum())
            if tot:
                p = cnt / tot
                low, high = proportion_confint(cnt, tot, alpha=0.05, method="wilson")
            else:
                p = low = high = np.full(len(cnt), np.nan)
            for lev, c, o, pi, lo, hi in zip(g.categories, cnt, overall, p, low, high):
                # The Wilson interval contains p; min/max only absorb floating-point rounding at p = 0 or 1.
                rows.append(dict(grouping=gname, level=str(lev), bin=bname, n=int(c), bin_total=tot, share=pi,
                                 share_low=min(lo, pi), share_high=max(hi, pi), overall_n=int(o),
                                 overall_share=o / N, ratio=pi / (o / N) if o else np.nan))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ image quality
def _spline_formula(x: pd.Series, name: str) -> tuple[str, tuple]:
    lo, hi = float(x.min()), float(x.max())
    qs = np.quantile(x, [0.01, 0.99])
    knots = tuple(np.round(np.linspace(qs[0], qs[1], 6)[1:-1], 6))
    return f"score ~ bs({name}, knots={knots}, degree=3, lower_bound={lo}, upper_bound={hi})", knots


def quality_curves(d: pd.DataFrame, n_bins: int = 20) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score against each image-quality measure: binned means, a spline fit and its test.

    Returns ``(bins, curves, tests)``: quantile bins of the measure (ties merged) with the mean
    score and a t CI; the spline's fitted mean with a 95% HC3 band on a grid; and one tidy row
    per measure with the robust Wald F-test that the curve is flat, its R^2 and a Holm p-value
    over the four measures.
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    import statsmodels.formula.api as smf

    bins, curves, tests = [], [], []
    for x, label in QUALITY_MEASURES.items():
        s = d[["score", x]].dropna()
        q = pd.qcut(s[x], n_bins, duplicates="drop")
        g = s.groupby(q, observed=False)
        agg = pd.DataFrame({"n": g["score"].count(), "mean": g["score"].mean(), "sd": g["score"].std(),
                            "x_mean": g[x].mean()}).reset_index(drop=True)
        se = agg["sd"] / np.sqrt(agg["n"])
        tq = stats.t.ppf(0.975, (agg["n"] - 1).clip(lower=1))
        agg["conf_low"], agg["conf_high"] = agg["mean"] - tq * se, agg["mean"] + tq * se
        agg.insert(0, "measure", x)
        agg["bin"] = np.arange(len(agg))
        bins.append(agg)
        formula, knots = _spline_formula(s[x], x)
        warns = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = smf.ols(formula, data=s).fit(cov_type="HC3")
        warns += [str(w.message) for w in caught]
        k = len(fit.params) - 1
        wt = fit.wald_test(np.eye(len(fit.params))[1:], use_f=True, scalar=True)
        grid = pd.DataFrame({x: np.linspace(s[x].quantile(0.005), s[x].quantile(0.995), 80)})
        pr = fit.get_prediction(grid).summary_frame(alpha=0.05)
        curves.append(pd.DataFrame({"measure": x, "x": grid[x], "fit": pr["mean"], "conf_low": pr["mean_ci_lower"],
                                    "conf_high": pr["mean_ci_upper"]}))
        tests.append(dict(model=f"s1x_spline_{x}", term=f"bs({x}) (all {k} terms)", estimate=fit.rsquared,
                          statistic=float(wt.statistic), p_value=float(wt.pvalue), method=(
                              "OLS cubic B-spline (interior knots at equal steps between the 1st and 99th "
                              "percentiles); HC3 Wald F-test of flatness; estimate: R^2"),
                          n_obs=int(fit.nobs), converged=True, warnings=warns, df_num=k, df_den=float(fit.df_resid),
                          measure=x, label=label, knots=str(knots)))
    tests = result_frame(tests)
    tests["p_holm"] = multipletests(tests["p_value"], method="holm")[1]
    tests["multiple_testing"] = "Holm over the four quality curves"
    return pd.concat(bins, ignore_index=True), pd.concat(curves, ignore_index=True), tests


# ---------------------------------------------------------------------------------- regression
def model_data(d: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows with a face and every model variable present (and what was dropped, as warnings)."""
    cols = ["score_z", "exposure_z", "blur_z", "noise_z", "blue_z", "gender", "age_band", "smile_z", "abs_yaw_z",
            "pitch_z", "abs_roll_z", "glasses", "facial_hair_z", "eye_makeup", "lip_makeup", "headwear", "bald_z",
            "hair_invisible", "hair_colour", "face_area_z", "multi_face", "occluded", "gender_age"]
    face = d[d["in_model"]]
    m = face[cols].dropna().copy()
    warns = [f"{int((~d['in_model']).sum())} image{'' if int((~d['in_model']).sum()) == 1 else 's'} without a detected face (or attribute file) excluded"]
    if len(m) < len(face):
        warns.append(f"{len(face) - len(m)} image{'' if len(face) - len(m) == 1 else 's'} with a face dropped for missing attribute values")
    for c in ("gender", "age_band", "glasses", "hair_colour"):
        m[c] = m[c].cat.remove_unused_categories()
    return m, warns


def _formula(terms: list[str]) -> str:
    return "score_z ~ " + " + ".join(terms)


def _block_columns(names: list[str], terms: list[str]) -> list[int]:
    keys = [t.split(",")[0].replace("C(", "") if t.startswith("C(") else t for t in terms]
    out = []
    for i, n in enumerate(names):
        base = n.split("[")[0]
        base = base.split(",")[0].replace("C(", "") if base.startswith("C(") else base
        if base in keys:
            out.append(i)
    return out


def _r2_from_gram(G: np.ndarray, idx: np.ndarray, tss: float) -> float:
    # G is the (weighted) Gram matrix of [X, y]; idx selects the columns of X in the model.
    A = G[np.ix_(idx, idx)]
    b = G[idx, -1]
    coef = np.linalg.lstsq(A, b, rcond=None)[0]
    rss = G[-1, -1] - coef @ b
    return 1 - rss / tss


def delta_r2_bootstrap(X: np.ndarray, y: np.ndarray, full: np.ndarray, reduced: list[np.ndarray], *,
                       n_boot: int = N_BOOT, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Incremental R^2 of the columns ``full`` of ``X`` over each column set in ``reduced``, and
    bootstrap replicates.

    The bootstrap resamples rows (multinomial weights), so a replicate needs one weighted Gram
    matrix; every model is solved from a sub-block of it. ``X`` must hold an intercept column in
    every model. Returns ``(estimates, replicates)`` of shapes ``(k,)`` and ``(n_boot, k)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0); X = np.c_[np.ones(500), rng.normal(size=(500, 2))]
    >>> y = X[:, 1] + 0.5 * X[:, 2] + rng.normal(size=500)
    >>> est, reps = delta_r2_bootstrap(X, y, np.array([0, 1, 2]), [np.array([0, 1])], n_boot=50)
    >>> bool(0.05 < est[0] < 0.25), reps.shape
    (True, (50, 1))
    """
    def stat(G, tss):
        r2 = _r2_from_gram(G, full, tss)
        return np.array([r2 - _r2_from_gram(G, r, tss) for r in reduced])

    return gram_bootstrap(X, y, stat, n_boot=n_boot, seed=seed)


def gram_bootstrap(X: np.ndarray, y: np.ndarray, statistic, *, n_boot: int = N_BOOT,
                   seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A nonparametric bootstrap over rows (images) of statistics of linear fits on columns of ``X``.

    Each replicate draws multinomial row weights (``n`` rows with replacement) and forms one
    weighted Gram matrix ``G`` of ``[X, y]``; ``statistic(G, tss)`` (``tss`` the weighted total sum
    of squares of ``y``) returns a vector computed from sub-blocks of it (:func:`_r2_from_gram`,
    :func:`_coef_from_gram`). Returns ``(estimates, replicates)`` of shapes ``(k,)`` and
    ``(n_boot, k)``; the seed fixes the resamples.

    Examples
    --------
    >>> rng = np.random.default_rng(0); X = np.c_[np.ones(300), rng.normal(size=300)]
    >>> y = 2 * X[:, 1] + rng.normal(size=300)
    >>> est, reps = gram_bootstrap(X, y, lambda G, tss: np.array([_coef_from_gram(G, np.array([0, 1]), 1)]), n_boot=30)
    >>> bool(1.8 < est[0] < 2.2), reps.shape
    (True, (30, 1))
    """
    Z = np.c_[X, y]
    rng = np.random.default_rng(seed)

    def one(w):
        G = (Z * w[:, None]).T @ Z
        n = w.sum()
        tss = G[-1, -1] - (w @ y) ** 2 / n
        return np.atleast_1d(np.asarray(statistic(G, tss), float))

    n = len(y)
    est = one(np.ones(n))
    reps = np.array([one(np.bincount(rng.integers(0, n, n), minlength=n).astype(float))
                     for _ in progress(range(n_boot), desc="bootstrap", unit="rep")])
    return est, reps.reshape(n_boot, len(est))


def _coef_from_gram(G: np.ndarray, idx: np.ndarray, j: int) -> float:
    """The coefficient of the ``j``-th column of ``idx`` in the least-squares fit of y on the columns ``idx``."""
    return float(np.linalg.lstsq(G[np.ix_(idx, idx)], G[idx, -1], rcond=None)[0][j])


def mediation_statistic(total_idx: np.ndarray, full_idx: np.ndarray, col: int):
    """The statistic of :func:`gram_bootstrap` for a coefficient's total, direct and indirect effect
    and share mediated: ``[total, direct, total - direct, 1 - direct / total]``, where ``total`` is
    the coefficient of column ``col`` in the model ``total_idx`` and ``direct`` in ``full_idx``
    (the difference-in-coefficients decomposition; for linear models without interactions it is
    the product-of-coefficients indirect effect summed over the mediators)."""
    jt, jf = list(total_idx).index(col), list(full_idx).index(col)

    def stat(G, tss):
        t, d = _coef_from_gram(G, total_idx, jt), _coef_from_gram(G, full_idx, jf)
        return np.array([t, d, t - d, 1.0 - d / t if t else np.nan])

    return stat


#: Terms of the mediation rows (``s1x_gender_mediated``) in the order of :func:`mediation_statistic`.
MEDIATION_TERMS = ("total", "direct", "indirect", "share mediated")


def fit_regressions(m: pd.DataFrame, base_warnings: list[str], *, n_boot: int = N_BOOT,
                    quantiles=QUANTILES) -> dict:
    """OLS (HC3), MixedLM and quantile regressions of the standardized score; block tests.

    Returns a dict of tidy frames: ``coefficients``, ``blocks``, ``variance``, plus ``timings``
    (seconds per model) and ``info``. BLAS is limited to :data:`BLAS_THREADS` threads meanwhile.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=BLAS_THREADS):
        return _fit_regressions(m, base_warnings, n_boot=n_boot, quantiles=quantiles)


def _fit_regressions(m: pd.DataFrame, base_warnings: list[str], *, n_boot: int = N_BOOT,
                     quantiles=QUANTILES) -> dict:
    """OLS (HC3), MixedLM and quantile regressions of the standardized score; block tests.

    Returns a dict of tidy frames: ``coefficients``, ``blocks``, ``variance``, plus ``timings``
    (seconds per model) and ``info``.
    """
    from statsmodels.stats.multitest import multipletests

    import statsmodels.formula.api as smf

    timings = {}
    out = []
    full_terms = QUALITY_TERMS + FACE_TERMS
    t0 = time.perf_counter()
    fits = {}
    for name, terms in (("s1x_ols_full", full_terms), ("s1x_ols_quality", QUALITY_TERMS),
                        ("s1x_ols_face", FACE_TERMS)):
        tidy, fit = ols(_formula(terms), m, model=name, cov_type="HC3")
        tidy["warnings"] = ["; ".join([w for w in [*base_warnings, x] if w]) for x in tidy["warnings"]]
        fits[name] = fit
        if name == "s1x_ols_full":
            out.append(tidy)
    timings["ols"] = time.perf_counter() - t0
    full = fits["s1x_ols_full"]
    names = list(full.model.exog_names)

    # Blocks: robust Wald F in the full model; incremental R^2 with a bootstrap CI (one set of
    # resamples for all blocks).
    t0 = time.perf_counter()
    X, y = full.model.exog, full.model.endog
    all_idx = np.arange(X.shape[1])
    block_idx = [np.array(_block_columns(names, terms)) for _, _, terms in BLOCKS]
    q_idx = block_idx[0]
    blocks = []
    # One set of resamples of images for the blocks' incremental R^2 and the gender mediation (total,
    # direct, indirect, share mediated): a replicate is one weighted Gram matrix, every model a sub-block.
    reduced = [np.setdiff1d(all_idx, idx) for idx in block_idx]
    clean = [clean_term(n) for n in names]
    male = clean.index(MALE_TERM) if MALE_TERM in clean else None
    med_stat = None
    if male is not None:
        total_idx = np.array([0] + [i for i, n in enumerate(names) if n.startswith("C(gender")])
        med_stat = mediation_statistic(total_idx, all_idx, male)

    def block_stat(G, tss):
        r2 = _r2_from_gram(G, all_idx, tss)
        out = [r2 - _r2_from_gram(G, r, tss) for r in reduced]
        return np.r_[out, med_stat(G, tss)] if med_stat is not None else np.array(out)

    ests_all, reps_all = gram_bootstrap(X, y, block_stat, n_boot=n_boot, seed=SEED)
    ests, reps = ests_all[:len(reduced)], reps_all[:, :len(reduced)]
    mediation = None
    if med_stat is not None:
        mediation = dict(estimates=ests_all[len(reduced):], replicates=reps_all[:, len(reduced):], n_boot=n_boot,
                         seed=SEED, n_obs=int(full.nobs))
    reduced_names = {"block:quality": "s1x_ols_face", "block:face": "s1x_ols_quality"}
    for k, ((term, block, _), idx) in enumerate(zip(BLOCKS, block_idx)):
        reduced_name = reduced_names.get(term, f"s1x_ols_full without {block}")
        R = np.zeros((len(idx), X.shape[1]))
        R[np.arange(len(idx)), idx] = 1
        wt = full.wald_test(R, use_f=True, scalar=True)
        est = float(ests[k])
        lo, hi = np.quantile(reps[:, k], [0.025, 0.975]) if n_boot else (np.nan, np.nan)
        blocks.append(dict(model="s1x_ols_full", term=term, estimate=est,
                           std_error=reps[:, k].std(ddof=1) if n_boot > 1 else np.nan,
                           statistic=float(wt.statistic), p_value=float(wt.pvalue), conf_low=lo, conf_high=hi,
                           conf_level=0.95, method=("HC3 Wald F-test of the block in the full OLS model; estimate: "
                                                    f"incremental R^2 (full - {reduced_name}), percentile bootstrap CI "
                                                    f"({n_boot} resamples of images)"),
                           n_obs=int(full.nobs), converged=True, warnings=base_warnings, block=block, n_boot=n_boot,
                           df_num=len(idx), df_den=float(full.df_resid), r2_full=full.rsquared,
                           r2_reduced=fits[reduced_name].rsquared if reduced_name in fits else full.rsquared - est,
                           terms="; ".join(names[i] for i in idx)))
    blocks = result_frame(blocks)
    blocks["p_holm"] = multipletests(blocks["p_value"], method="holm")[1]
    blocks["multiple_testing"] = f"Holm over the {len(BLOCKS)} block tests"
    timings["blocks_bootstrap"] = time.perf_counter() - t0

    # Mixed model: gender and age band fixed, random intercepts for the gender x age band cells.
    t0 = time.perf_counter()
    mixed_tidy, variance = fit_mixed(m, full, base_warnings)
    out.append(mixed_tidy)
    timings["mixedlm"] = time.perf_counter() - t0

    # Quantile regressions.
    t0 = time.perf_counter()
    for q in quantiles:
        out.append(fit_quantile(m, full_terms, q, base_warnings))
    timings["quantreg"] = time.perf_counter() - t0

    coefs = pd.concat(out, ignore_index=True)
    coefs = coefs[coefs["term"] != "Intercept"].reset_index(drop=True)
    coefs["p_holm"] = np.nan
    for mod, idx in coefs.groupby("model").groups.items():
        ok = coefs.loc[idx, "p_value"].notna()
        if ok.any():
            coefs.loc[ok[ok].index, "p_holm"] = multipletests(coefs.loc[ok[ok].index, "p_value"], method="holm")[1]
    coefs["multiple_testing"] = "Holm over the terms of each model (intercept excluded)"
    coefs["block"] = np.where(coefs["term"].isin([clean_term(n) for n in np.array(names)[q_idx]]),
                              "image quality", "face attributes")
    return dict(coefficients=coefs, blocks=blocks, variance=variance, timings=timings, mediation=mediation,
                info=dict(r2_full=full.rsquared, r2_quality=fits["s1x_ols_quality"].rsquared,
                          r2_face=fits["s1x_ols_face"].rsquared, n_obs=int(full.nobs)))


def fit_mixed(m: pd.DataFrame, ols_fit, base_warnings: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MixedLM (REML) with random intercepts for gender x age band cells; tidy fixed effects and
    the variance components, with the near-zero-variance check of DESIGN.md's known traps.

    The fit is :func:`discbias.stats.mixed.mixedlm_highest_reml` (every optimizer of
    :data:`~discbias.stats.mixed.MIXED_OPTIMIZERS`, the highest REML log-likelihood kept)."""
    formula = _formula(QUALITY_TERMS + FACE_TERMS)
    fit, best, fit_warnings = mixedlm_highest_reml(formula, m, m["gender_age"], optimizers=MIXED_OPTIMIZERS)
    warns = list(base_warnings) + fit_warnings
    group_var = float(fit.cov_re.iloc[0, 0])
    resid_var = float(fit.scale)
    icc = group_var / (group_var + resid_var)
    near_zero = icc < 1e-3
    shared = [t for t in fit.fe_params.index if t in ols_fit.params.index and t != "Intercept"]
    max_diff = float(np.max(np.abs(fit.fe_params[shared] - ols_fit.params[shared])))
    from ..stats.degenerate import hessian_degenerate, residual_degenerate

    k_fe = len(fit.fe_params)
    degenerate = "; ".join(filter(None, [residual_degenerate(resid_var, float(np.var(m["score_z"], ddof=1))),
                                         hessian_degenerate(np.asarray(fit.cov_params())[:k_fe, :k_fe])]))
    if degenerate:
        warns.append(f"degenerate fit: {degenerate}")
    if near_zero:
        warns.append(f"random-intercept variance near zero (share {icc:.2g} of the residual + cell variance): "
                     f"the cells' interaction is pooled away (max |fixed effect - OLS| = {max_diff:.2g})")
    n_groups = int(m["gender_age"].nunique())
    ci = fit.conf_int()
    rows = []
    for t in fit.fe_params.index:
        rows.append(dict(model="s1x_mixed", term=clean_term(t), estimate=fit.fe_params[t],
                         std_error=fit.bse_fe[t], statistic=fit.tvalues[t], p_value=fit.pvalues[t],
                         conf_low=ci.loc[t, 0], conf_high=ci.loc[t, 1], conf_level=0.95,
                         method="Linear mixed model (statsmodels MixedLM, REML): random intercepts for gender x age band cells",
                         n_obs=int(fit.nobs), n_groups=n_groups, converged=bool(fit.converged), warnings=warns,
                         formula=formula + " + (1 | gender:age_band)", optimizer="+".join(best),
                         **(dict(degenerate=degenerate) if degenerate else {})))
    try:
        blups = sorted((g, float(v.iloc[0])) for g, v in fit.random_effects.items())
    except (ValueError, np.linalg.LinAlgError):
        # statsmodels refuses to predict from a singular (zero) covariance: every BLUP is 0.
        blups = [(g, 0.0) for g in sorted(m["gender_age"].unique())]
        warns.append("random-effect covariance singular: predicted cell intercepts set to 0")
    inter = _interaction_test(m)
    variance = result_frame(
        [dict(model="s1x_mixed", term="var(cell intercept)", estimate=group_var, method="REML variance component",
              n_obs=int(fit.nobs), n_groups=n_groups, converged=bool(fit.converged), warnings=warns,
              icc=icc, near_zero=near_zero, max_abs_diff_vs_ols=max_diff),
         dict(model="s1x_mixed", term="var(residual)", estimate=resid_var, method="REML residual variance",
              n_obs=int(fit.nobs), n_groups=n_groups, converged=bool(fit.converged), warnings=warns,
              icc=icc, near_zero=near_zero, max_abs_diff_vs_ols=max_diff)]
        + [dict(model="s1x_mixed", term=f"BLUP[{g}]", estimate=v, method="predicted cell intercept (BLUP)",
                n_obs=int((m["gender_age"] == g).sum()), n_groups=n_groups, converged=bool(fit.converged),
                warnings="") for g, v in blups]
        + [inter])
    return result_frame(rows), variance


def _interaction_test(m: pd.DataFrame) -> dict:
    """OLS check of what the random intercepts model: the gender x age band interaction, added
    to the full OLS model as fixed effects, tested with an HC3 Wald F-test."""
    import statsmodels.formula.api as smf

    formula = _formula(QUALITY_TERMS + FACE_TERMS) + " + " + ":".join(DEMOGRAPHIC_TERMS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = smf.ols(formula, m).fit(cov_type="HC3")
        names = fit.model.exog_names
        idx = [i for i, n in enumerate(names) if ":" in n and "C(gender" in n and "C(age_band" in n]
        R = np.zeros((len(idx), len(names)))
        R[np.arange(len(idx)), idx] = 1
        wt = fit.wald_test(R, use_f=True, scalar=True)
    rank = int(np.linalg.matrix_rank(fit.model.exog))
    df_num = len(idx) - (fit.model.exog.shape[1] - rank)
    return dict(model="s1x_ols_interaction", term="gender x age band interaction (fixed)",
                estimate=float(np.nan), statistic=float(wt.statistic), p_value=float(wt.pvalue),
                method="HC3 Wald F-test of the gender x age band interaction added to the full OLS model",
                n_obs=int(fit.nobs), n_groups=int(m["gender_age"].nunique()), converged=True,
                warnings=sorted({str(w.message).splitlines()[0] for w in caught}), df_num=df_num)


def fit_quantile(m: pd.DataFrame, terms: list[str], q: float, base_warnings: list[str]) -> pd.DataFrame:
    """Quantile regression of the standardized score (Frisch-Newton; robust sandwich SEs as
    statsmodels' QuantReg; see :mod:`discbias.stats.quantile`)."""
    tidy = quantreg(_formula(terms), m, q, model=f"s1x_quantile_{int(round(q * 100)):02d}")
    tidy["warnings"] = ["; ".join([w for w in [*base_warnings, x] if w]) for x in tidy["warnings"]]
    return tidy


# ------------------------------------------------------------------------------ gender contrast
MALE_TERM = "C(gender, Treatment('female'))[male]"


def gender_contrast(d: pd.DataFrame, coefficients: pd.DataFrame, study2: pd.DataFrame | None = None) -> pd.DataFrame:
    """Men's minus women's score: FFHQ raw and adjusted, and Study 2 raw, as one tidy table.

    Rows (column ``sample``): the FFHQ mean difference male - female by the Face API's label
    (Welch; and Hedges' g), the OLS coefficient of ``male`` in the full model (standardized score,
    adjusted for image quality and the other face attributes), and, when ``study2`` (the Study 2
    images table) is given, the Study 2 mean difference men - women by the scrape prompt (Welch;
    and Hedges' g). Raw differences are in released-score units.

    Examples
    --------
    >>> d = pd.DataFrame({"score": [3.0, 4.0, 5.0, 1.0, 2.0, 3.0], "gender": ["male"] * 3 + ["female"] * 3})
    >>> coefs = pd.DataFrame({"model": ["s1x_ols_full"], "term": [MALE_TERM], "estimate": [0.2],
    ...                       "conf_low": [0.1], "conf_high": [0.3]})
    >>> gender_contrast(d, coefs).query("term == 'score'")["estimate"].tolist()
    [2.0]
    """
    ffhq = d[d["gender"].astype(str).isin(["male", "female"])].assign(g=lambda x: x["gender"].astype(str))
    parts = [welch_ttest(ffhq, "score", "g", "male", "female", model="s1x_gender_ffhq")
             .assign(sample="FFHQ, Face API gender label (raw)")]
    ols_c = coefficients[(coefficients["model"] == "s1x_ols_full") & (coefficients["term"] == MALE_TERM)]
    parts.append(ols_c.assign(sample="FFHQ, adjusted for image quality and the other face attributes "
                                     "(OLS, score SDs)"))
    if study2 is not None:
        s2 = study2[study2["valid"]] if "valid" in study2 else study2
        parts.append(welch_ttest(s2, "score", "gender", "men", "women", model="s2_gender")
                     .assign(sample="Study 2, scrape prompt (raw)"))
    return pd.concat(parts, ignore_index=True)


def gender_mediation(m: pd.DataFrame, coefficients: pd.DataFrame, mediation: dict | None = None, *,
                     conf_level: float = 0.95) -> pd.DataFrame:
    """Total and direct gender effect on the standardized score, the indirect effect and the share mediated.

    Total: OLS (HC3) of ``score_z`` on gender alone in the model sample; direct: the gender
    coefficient of the full model (image quality and the other face attributes held fixed); both
    rows keep their HC3 intervals and get the percentile bootstrap interval beside them
    (``boot_conf_low``, ``boot_conf_high``, ``boot_std_error``). The indirect effect
    (total - direct) and the share of the total mediated by the other attributes and image quality
    (``1 - direct / total``) are rows of model ``s1x_gender_mediated`` with percentile bootstrap
    intervals.

    Why a bootstrap: total and direct come from two models fitted to the same images, so their
    estimates are correlated and neither the difference nor the ratio has a standard error from
    the two fits' own covariances; a nonparametric bootstrap over images refits both on every
    resample and keeps that correlation (a delta-method interval would need their joint
    covariance, a seemingly-unrelated-regressions sandwich, for the same answer to first order).
    Percentile rather than BCa: BCa's acceleration needs a jackknife over the 70,000 images; the
    bias-correction constant ``boot_bias_z0`` (the normal quantile of the share of replicates below
    the estimate) is recorded on each row, and where it is near 0 the percentile and
    bias-corrected intervals coincide. ``mediation`` is :func:`fit_regressions`' ``mediation`` entry (the resamples shared with
    the blocks' incremental R²); without it the rows have no interval and say so.

    Rows are men minus women, as the other rows of the gender contrast.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = pd.Categorical(rng.choice(["female", "male"], 400), categories=["female", "male"])
    >>> m = pd.DataFrame({"gender": g}); m["score_z"] = 0.5 * (m["gender"] == "male") + rng.normal(size=400)
    >>> coefs = pd.DataFrame({"model": ["s1x_ols_full"], "term": [MALE_TERM], "estimate": [0.25]})
    >>> med = dict(estimates=np.array([0.5, 0.25, 0.25, 0.5]), n_boot=3, seed=1, n_obs=400,
    ...            replicates=np.array([[0.4, 0.2, 0.2, 0.5], [0.5, 0.3, 0.2, 0.4], [0.6, 0.2, 0.4, 0.67]]))
    >>> t = gender_mediation(m, coefs, med)
    >>> t["term"].tolist()[-2:], float(t["conf_high"].iloc[-1]) > float(t["conf_low"].iloc[-1])
    (['indirect', 'share mediated'], True)
    """
    tot, _ = ols("score_z ~ C(gender, Treatment('female'))", m, model="s1x_gender_total", cov_type="HC3")
    tot = tot[tot["term"] == MALE_TERM].assign(sample="FFHQ model sample, total (gender alone; OLS, score SDs)")
    direct = coefficients[(coefficients["model"] == "s1x_ols_full") & (coefficients["term"] == MALE_TERM)]
    if not len(tot) or not len(direct):
        return tot
    alpha = 1 - conf_level
    t_hc3, d_hc3 = float(tot["estimate"].iloc[0]), float(direct["estimate"].iloc[0])
    if mediation is not None and len(mediation["replicates"]):
        est, reps = np.asarray(mediation["estimates"], float), np.asarray(mediation["replicates"], float)
        B, seed = int(mediation["n_boot"]), int(mediation["seed"])
        lo, hi = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
        se = np.nanstd(reps, axis=0, ddof=1) if B > 1 else np.full(len(est), np.nan)
        # BC's bias-correction constant z0 = Phi^-1(share of replicates below the estimate): near 0 the
        # percentile interval and the bias-corrected one coincide
        from scipy import stats

        z0 = stats.norm.ppf(np.clip((reps < est).mean(axis=0), 1 / (2 * B), 1 - 1 / (2 * B)))
        how = (f"percentile bootstrap {100 * conf_level:g}% CI, {B:,} resamples of images (seed {seed}), "
               "the same resamples as the blocks' incremental R²")
        tot = tot.assign(boot_conf_low=lo[0], boot_conf_high=hi[0], boot_std_error=se[0], n_boot=B, seed=seed)
    else:
        est = np.array([t_hc3, d_hc3, t_hc3 - d_hc3, 1 - d_hc3 / t_hc3 if t_hc3 else np.nan])
        lo = hi = se = z0 = np.full(4, np.nan)
        B, seed, how = 0, np.nan, "no interval (no bootstrap resamples given)"
    methods = {"indirect": "total - direct (gender coefficients on the standardized score without and with image "
                           "quality and the other face attributes)",
               "share mediated": "1 - direct / total (the same coefficients)"}
    rows = [dict(model="s1x_gender_mediated", term=term, estimate=float(est[k]), std_error=float(se[k]),
                 conf_low=float(lo[k]), conf_high=float(hi[k]), conf_level=conf_level,
                 method=f"{methods[term]}; {how}", n_obs=int(tot["n_obs"].iloc[0]), converged=True, warnings="",
                 n_boot=B, seed=seed, boot_bias_z0=float(z0[k]))
            for k, term in enumerate(MEDIATION_TERMS) if term in methods]
    med = result_frame(rows).assign(sample=["FFHQ model sample, indirect effect via image quality and the other "
                                            "face attributes (total − direct, score SDs)",
                                            "FFHQ model sample, share of the total gender difference mediated"])
    return pd.concat([tot, med], ignore_index=True)


def _mediation_direct_boot(gender: pd.DataFrame, mediation: dict | None) -> pd.DataFrame:
    """The percentile bootstrap interval of the direct effect beside its HC3 interval (row s1x_ols_full, male)."""
    if mediation is None or not len(mediation["replicates"]):
        return gender
    reps = np.asarray(mediation["replicates"], float)[:, 1]
    k = (gender["model"] == "s1x_ols_full") & (gender["term"] == MALE_TERM)
    gender = gender.copy()
    for c in ("boot_conf_low", "boot_conf_high", "boot_std_error", "n_boot", "seed"):
        if c not in gender:
            gender[c] = np.nan
    gender.loc[k, ["boot_conf_low", "boot_conf_high"]] = np.nanquantile(reps, [0.025, 0.975])
    gender.loc[k, "boot_std_error"] = float(np.nanstd(reps, ddof=1)) if len(reps) > 1 else np.nan
    gender.loc[k, ["n_boot", "seed"]] = [mediation["n_boot"], mediation["seed"]]
    return gender


# --------------------------------------------------------------------------------------- stage
def fit(ctx):
    from threadpoolctl import threadpool_limits

    if "ffhq_features" not in ctx.measures:
        ctx.values["ffhq_strat"] = dict(available=False)
        return
    with threadpool_limits(limits=BLAS_THREADS):
        _fit(ctx)


def _fit(ctx):
    scores = ctx.measures["ffhq_scores"]
    features = ctx.measures["ffhq_features"]
    d, info = prepare(scores, features)
    timings = {}
    t0 = time.perf_counter()
    groups = group_summaries(d)
    cells = cross_summary(d)
    shares = bin_shares(d)
    timings["disaggregation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    qbins, qcurves, qtests = quality_curves(d[d["in_model"]])
    timings["quality_curves"] = time.perf_counter() - t0
    m, base_warns = model_data(d)
    reg = fit_regressions(m, base_warns)
    timings.update(reg["timings"])
    gender = gender_contrast(d, reg["coefficients"], ctx.measures.get("study2_images"))
    gender = pd.concat([gender, gender_mediation(m, reg["coefficients"], reg.get("mediation"))], ignore_index=True)
    gender = _mediation_direct_boot(gender, reg.get("mediation"))
    ctx.results.update(ffhq_strat_groups=groups, ffhq_strat_cells=cells, ffhq_strat_bin_shares=shares,
                       ffhq_strat_quality_bins=qbins, ffhq_strat_quality_curves=qcurves,
                       ffhq_strat_quality_tests=qtests, ffhq_strat_coefficients=reg["coefficients"],
                       ffhq_strat_blocks=reg["blocks"], ffhq_strat_variance=reg["variance"],
                       ffhq_strat_gender_contrast=gender)
    coefs = reg["coefficients"]
    for mod, desc in (("s1x_ols_full", "OLS of standardized score on image quality + face attributes (HC3), 70k FFHQ"),
                      ("s1x_mixed", "MixedLM, random intercepts for gender x age band cells, 70k FFHQ"),
                      *[(f"s1x_quantile_{int(q * 100):02d}", f"Quantile regression q = {q:g}, 70k FFHQ") for q in QUANTILES]):
        t = coefs[coefs["model"] == mod]
        ctx.add_model(mod, desc, f"score_z ~ image quality ({len(QUALITY_TERMS)} terms) + face attributes ({len(FACE_TERMS)} terms)"
                      + (" + (1 | gender:age band)" if mod == "s1x_mixed" else ""), t)
    for _, r in qtests.iterrows():
        ctx.add_model(r["model"], f"Score vs {r['label']}: cubic B-spline (HC3)", f"score ~ bs({r['measure']})",
                      qtests[qtests["model"] == r["model"]])
    for mod in ("s1x_gender_ffhq", "s2_gender"):
        t = gender[gender["model"] == mod]
        if len(t):
            ctx.add_model(mod, "Welch t-test of score, men - women (" + t["sample"].iloc[0] + ")", "score ~ gender", t)
    ctx.values["ffhq_strat"] = _values(d, info, groups, shares, qtests, reg, m, timings, ctx, gender)


def _block_values(blocks: pd.DataFrame, term: str) -> dict:
    r = blocks.loc[term]
    return dict(delta_r2=float(r["estimate"]), low=float(r["conf_low"]), high=float(r["conf_high"]),
                F=float(r["statistic"]), df=int(r["df_num"]), p=float(r["p_value"]), p_holm=float(r["p_holm"]))


def _gender_values(gender: pd.DataFrame) -> dict:
    def row(model, term):
        r = gender[(gender["model"] == model) & (gender["term"] == term)]
        return r.iloc[0] if len(r) else None

    out = {}
    for key, model, term in (("ffhq", "s1x_gender_ffhq", "score"), ("ffhq_g", "s1x_gender_ffhq", "score:hedges_g"),
                             ("ffhq_adjusted", "s1x_ols_full", MALE_TERM), ("study2", "s2_gender", "score"),
                             ("study2_g", "s2_gender", "score:hedges_g")):
        r = row(model, term)
        if r is None:
            continue
        out[key] = dict(diff=float(r["estimate"]), low=float(r["conf_low"]), high=float(r["conf_high"]),
                        p=float(r["p_value"]))
        if term == "score":
            out[key].update(mean_men=float(r["mean_a"]), mean_women=float(r["mean_b"]), n_men=int(r["n_a"]),
                            n_women=int(r["n_b"]), direction="higher" if r["estimate"] > 0 else "lower")
    out["study2_available"] = "study2" in out
    out["opposite_signs"] = bool(out["study2_available"] and np.sign(out["ffhq"]["diff"]) != np.sign(out["study2"]["diff"]))
    return out


def _mediation_values(gender: pd.DataFrame) -> dict:
    """Total, direct, indirect and share mediated (women − men for the effects) with their intervals, for the text."""
    out = {}

    def get(model, term):
        r = gender[(gender["model"] == model) & (gender["term"] == term)]
        return r.iloc[0] if len(r) else None

    for key, model, term, flip in (("total", "s1x_gender_total", MALE_TERM, True),
                                   ("direct", "s1x_ols_full", MALE_TERM, True),
                                   ("indirect", "s1x_gender_mediated", "indirect", True),
                                   ("share", "s1x_gender_mediated", "share mediated", False)):
        r = get(model, term)
        if r is None:
            continue
        sgn = -1.0 if flip else 1.0
        boot = ("boot_conf_low", "boot_conf_high") if key in ("total", "direct") else ("conf_low", "conf_high")
        v = dict(estimate=sgn * float(r["estimate"]),
                 boot_low=min(sgn * float(r.get(boot[0], np.nan)), sgn * float(r.get(boot[1], np.nan))),
                 boot_high=max(sgn * float(r.get(boot[0], np.nan)), sgn * float(r.get(boot[1], np.nan))))
        if key in ("total", "direct"):
            v.update(low=min(sgn * float(r["conf_low"]), sgn * float(r["conf_high"])),
                     high=max(sgn * float(r["conf_low"]), sgn * float(r["conf_high"])))
        out[key] = v
    r = get("s1x_gender_mediated", "share mediated")
    out["n_boot"] = int(r["n_boot"]) if r is not None and r.get("n_boot") == r.get("n_boot") else 0
    out["seed"] = int(r["seed"]) if r is not None and r.get("seed") == r.get("seed") else None
    return out


def _values(d, info, groups, shares, qtests, reg, m, timings, ctx, gender) -> dict:
    src = ctx.config.role("ffhq_features")
    available = True
    blocks = reg["blocks"].set_index("term")
    var = reg["variance"].set_index("term")
    coefs = reg["coefficients"]
    ols_c = coefs[coefs["model"] == "s1x_ols_full"].set_index("term")
    top = ols_c.reindex(ols_c["estimate"].abs().sort_values(ascending=False).index).head(3)
    sh = shares.set_index(["grouping", "level", "bin"])

    def share(gr, lev, b):
        return float(sh.loc[(gr, lev, b), "share"])

    def overall(gr, lev):
        return float(sh.loc[(gr, lev, "D1"), "overall_share"])

    g = groups.set_index(["attribute", "level"])
    qt = qtests.set_index("measure")
    quant = coefs[coefs["model"].str.startswith("s1x_quantile")]
    blue_q = quant[quant["term"] == "blue_z"].set_index("quantile")["estimate"]
    exp_q = quant[quant["term"] == "exposure_z"].set_index("quantile")["estimate"]
    claims = {cid: _claim_numbers(reg["blocks"], cid) for cid in CLAIM_IDS}
    return dict(available=available,
        source=dict(repository=src.meta.get("repository", ""), commit=src.meta.get("commit", ""),
                    licence=src.meta.get("licence", ""), content_digest=src.content_digest, file=src.file),
        **info,
        n_rows=int(len(d)), n_with_face=int(d["in_model"].sum()), n_no_face=int(d["no_face"].sum()),
        n_multi_face=int((d["multi_face"] > 0).sum()), n_model=int(len(m)),
        n_cells=int(len(ctx.results["ffhq_strat_cells"])),
        n_cells_empty=int((ctx.results["ffhq_strat_cells"]["n"] == 0).sum()),
        female_share=overall("gender", "female"),
        female_share_top1=share("gender", "female", "top 1%"), female_share_bottom1=share("gender", "female", "bottom 1%"),
        child_share=overall("age_band", "0-9"), child_share_top1=share("age_band", "0-9", "top 1%"),
        child_share_bottom1=share("age_band", "0-9", "bottom 1%"),
        sunglasses_share=overall("glasses", "Sunglasses"),
        sunglasses_share_bottom1=share("glasses", "Sunglasses", "bottom 1%"),
        sunglasses_share_top1=share("glasses", "Sunglasses", "top 1%"),
        mean_female=float(g.loc[("gender", "female"), "mean"]), mean_male=float(g.loc[("gender", "male"), "mean"]),
        mean_no_face=float(g.loc[("gender", NO_FACE), "mean"]),
        spline_r2={k: float(qt.loc[k, "estimate"]) for k in QUALITY_MEASURES},
        spline_p={k: float(qt.loc[k, "p_holm"]) for k in QUALITY_MEASURES},
        quality=_block_values(blocks, "block:quality"), face=_block_values(blocks, "block:face"),
        face_demographic=_block_values(blocks, "block:face_demographic"),
        face_other=_block_values(blocks, "block:face_other"), n_blocks=len(BLOCKS),
        gender=_gender_values(gender),
        top_terms=[dict(term=t, label=_pretty(t, _study_labels(ctx)), estimate=float(r["estimate"]), low=float(r["conf_low"]), high=float(r["conf_high"]))
                   for t, r in top.iterrows()],
        blue=dict(ols=float(ols_c.loc["blue_z", "estimate"]), q10=float(blue_q.get(0.1, np.nan)),
                  q50=float(blue_q.get(0.5, np.nan)), q90=float(blue_q.get(0.9, np.nan))),
        exposure=dict(ols=float(ols_c.loc["exposure_z", "estimate"]), q10=float(exp_q.get(0.1, np.nan)),
                      q90=float(exp_q.get(0.9, np.nan))),
        mixed=dict(group_var=float(var.loc["var(cell intercept)", "estimate"]),
                   resid_var=float(var.loc["var(residual)", "estimate"]), icc=float(var.loc["var(cell intercept)", "icc"]),
                   near_zero=bool(var.loc["var(cell intercept)", "near_zero"]),
                   max_diff=float(var.loc["var(cell intercept)", "max_abs_diff_vs_ols"]),
                   converged=bool(var.loc["var(cell intercept)", "converged"]),
                   n_groups=int(var.loc["var(cell intercept)", "n_groups"]),
                   optimizer=str(coefs.loc[coefs["model"] == "s1x_mixed", "optimizer"].iloc[0]),
                   n_optimizers=len(MIXED_OPTIMIZERS),
                   optimizer_note=next((w for w in str(var.loc["var(cell intercept)", "warnings"]).split("; ")
                                        if w.startswith("optimizer ")), "")),
        claims=claims, min_delta_r2=MIN_DELTA_R2, alpha=ALPHA, n_boot=N_BOOT,
        share_mediated=float(gender.loc[gender["term"] == "share mediated", "estimate"].iloc[0])
        if (gender["term"] == "share mediated").any() else float("nan"),
        mediation=_mediation_values(gender),
        quantiles_converged=bool(coefs.loc[coefs["model"].str.startswith("s1x_quantile"), "converged"].all()),
        timings=timings,
    )


_PRETTY = {"exposure_z": "exposure", "I(exposure_z ** 2)": "exposure²", "blur_z": "blur", "noise_z": "noise",
           "blue_z": "blue-channel mean", "smile_z": "smile", "abs_yaw_z": "|yaw|", "pitch_z": "pitch",
           "abs_roll_z": "|roll|", "facial_hair_z": "facial hair", "eye_makeup": "eye makeup",
           "lip_makeup": "lip makeup", "headwear": "headwear", "bald_z": "baldness", "hair_invisible": "hair invisible",
           "face_area_z": "face area share", "multi_face": "two faces found", "occluded": "any occlusion"}


def _study_labels(ctx) -> dict:
    from ..report.labels import labels_from_config

    return labels_from_config(ctx.config)


def _pretty(term: str, labels: dict | None = None) -> str:
    if term in _PRETTY:
        return _PRETTY[term]
    if term.startswith("C("):
        var = term[2:].split(",")[0]
        lev = term.split("[")[-1].rstrip("]")
        name = {"hair_colour": "hair", "age_band": "age", "gender": "gender", "glasses": "glasses"}.get(var, var)
        from ..report.labels import label

        return f"{name}: {label(lev, labels)}"
    return term


# -------------------------------------------------------------------------------------- claims
def _claim_numbers(blocks: pd.DataFrame, claim_id: str) -> dict:
    term = CLAIM_BLOCKS[claim_id]
    r = blocks[blocks["term"] == term].iloc[0]
    return dict(delta_r2=float(r["estimate"]), low=float(r["conf_low"]), high=float(r["conf_high"]),
                p=float(r["p_value"]), p_holm=float(r["p_holm"]),
                verdict=block_verdict(float(r["p_holm"]), float(r["conf_low"]), float(r["conf_high"])))


def block_verdict(p: float, low: float, high: float, *, alpha: float = ALPHA, min_delta: float = MIN_DELTA_R2) -> str:
    """The verdict rule of the two stratification claims.

    ``reproduced`` if the block's robust Wald test is significant (Holm p < ``alpha``) and the
    lower bound of the incremental R^2's bootstrap CI is at least ``min_delta``; ``not
    reproduced`` if the test is not significant or the upper bound is below ``min_delta``
    (the block adds less than ``min_delta`` of the score variance); otherwise ``inconclusive``.

    Examples
    --------
    >>> block_verdict(1e-9, 0.03, 0.05), block_verdict(0.2, 0.0, 0.001), block_verdict(1e-9, 0.001, 0.004)
    ('reproduced', 'not reproduced', 'not reproduced')
    >>> block_verdict(1e-9, 0.008, 0.012)
    'inconclusive'
    """
    if not np.all(np.isfinite([p, low, high])):
        return "inconclusive"
    if p < alpha and low >= min_delta:
        return "reproduced"
    if p >= alpha or high < min_delta:
        return "not reproduced"
    return "inconclusive"


_RULE = ("HC3 Wald F-test of the {block} in the full OLS model of the standardized score (Holm over the "
         f"{len(BLOCKS)} block tests) p < {ALPHA} AND the lower 95% bootstrap bound of its incremental R^2 >= {MIN_DELTA_R2}")


def _block_delta(term: str):
    """A block's incremental R^2 with its bootstrap interval; the SESOI (Cohen's f^2) becomes an
    incremental R^2 of f^2 x (1 - R^2 of the full model)."""
    def lookup(results):
        df = results.get("ffhq_strat_blocks")
        if df is None or not len(df) or not (df["term"] == term).any():
            return None
        r = df[df["term"] == term].iloc[0]
        conv = bool(df["converged"].fillna(False).astype(bool).all()) if "converged" in df else True
        return SpecResult(float(r["estimate"]), float(r["conf_low"]), float(r["conf_high"]), converged=conv,
                          method=str(r["method"]), source=f"ffhq_strat_blocks: s1x_ols_full {term}",
                          sesoi_scale=1.0 - float(r["r2_full"]) if r.get("r2_full") == r.get("r2_full") else 1.0,
                          note=f"HC3 Wald F = {float(r['statistic']):.4g}, Holm p = {float(r['p_holm']):.3g}")
    return lookup


def _share_gap(level: str, bin_: str, grouping: str = "gender"):
    """A group's share of a score stratum minus its share of all images (FFHQ is the whole population,
    so its overall share is fixed); Wilson 95% interval of the stratum share. The SESOI (Cohen's h) is
    converted at the overall share p: h x sqrt(p (1 - p))."""
    def lookup(results):
        df = results.get("ffhq_strat_bin_shares")
        if df is None or not len(df):
            return None
        hit = df[(df["grouping"] == grouping) & (df["level"] == level) & (df["bin"] == bin_)]
        if hit.empty:
            return None
        r = hit.iloc[0]
        o = float(r["overall_share"])
        return SpecResult(float(r["share"]) - o, float(r["share_low"]) - o, float(r["share_high"]) - o,
                          method=f"share of {level} images in the {bin_} by score minus their share of all images; "
                                 "Wilson 95% interval",
                          source=f"ffhq_strat_bin_shares: {grouping} {level} {bin_}",
                          sesoi_scale=float(np.sqrt(o * (1 - o))),
                          note=f"{int(r['n'])} of {int(r['bin_total'])} images; {100 * o:.1f}% of all images")
    return lookup


def _gender_row(model: str, term: str, scale: float = -1.0):
    """Women minus men from ``ffhq_strat_gender_contrast`` (rows are men minus women)."""
    def lookup(results):
        from ..claims import result_row
        return result_row("ffhq_strat_gender_contrast", model, term, scale=scale)(results)
    return lookup


CLAIMS = [
    Claim("S1-stratified-quality",
          "D's scores are stratified by image-level qualities (all 70k FFHQ images; exposure, blur, noise, blue mean).",
          "abstract: D 'systematically stratifies scores by both image- and face-level qualities' (qualitative; "
          "FFHQ inspected only through the top and bottom 100)", +1,
          [Specification("quality_block", "image-quality block, incremental R² (full OLS model, HC3)",
                         _block_delta("block:quality"))],
          quantity="incremental R²", kind="extension",
          estimand="share of score variance added by the image-quality block to the face attributes (incremental R²)"),
    Claim("S1-stratified-face",
          "Women are under-represented among the highest-scored FFHQ images (all 70k FFHQ images, Face API gender; "
          "FFHQ has no race label, so the paper's race claim is not tested here).",
          "abstract: stratification by face-level qualities 'disproportionately affects images across gender, race, "
          "and other categories' (qualitative)", -1,
          [Specification("top1", "women's share of the top 1% minus their share of all images",
                         _share_gap("female", "top 1%")),
           Specification("top10", "women's share of the top decile minus their share of all images",
                         _share_gap("female", "D10")),
           Specification("total_mean", "total: mean score, women − men (Welch, score units)",
                         _gender_row("s1x_gender_ffhq", "score"),
                         estimand="total mean score difference, women − men"),
           Specification("total_sd", "total: women − men in the model sample (OLS, score SDs, HC3)",
                         _gender_row("s1x_gender_total", MALE_TERM),
                         estimand="total standardised score difference, women − men"),
           Specification("direct", "direct: women − men adjusted for image quality and the other face attributes "
                                   "(OLS, score SDs, HC3)",
                         _gender_row("s1x_ols_full", MALE_TERM),
                         estimand="direct standardised score difference, women − men, given image quality and "
                                  "the other face attributes"),
           Specification("indirect", "indirect: total − direct, via image quality and the other face attributes "
                                     "(score SDs, percentile bootstrap over images)",
                         _gender_row("s1x_gender_mediated", "indirect"),
                         estimand="indirect standardised score difference, women − men, through image quality and "
                                  "the other face attributes"),
           Specification("demographic_block", "gender and age band beyond quality and the other face attributes, "
                                              "incremental R²", _block_delta("block:face_demographic"),
                         estimand="incremental R² of gender and age band"),
           ],
          quantity="share gap (women, top stratum minus all images)", kind="extension",
          estimand="women's share of the highest-scored images minus their share of all FFHQ images"),
]


FIT_TABLES = ["ffhq_strat_groups", "ffhq_strat_cells", "ffhq_strat_bin_shares", "ffhq_strat_quality_bins",
              "ffhq_strat_quality_curves", "ffhq_strat_quality_tests", "ffhq_strat_coefficients", "ffhq_strat_blocks",
              "ffhq_strat_variance", "ffhq_strat_gender_contrast"]


def steps(config, paths) -> list:
    """This module's steps: the FFHQ face-attribute adapter, the stratified fit (with its claims)."""
    from ..stages import fit_step, measure_step

    return [
        measure_step("ffhq_strat:adapt", measure, optional_writes=["ffhq_features"]),
        fit_step("ffhq_strat", fit, measures=["ffhq_scores"], optional_measures=["ffhq_features", "study2_images"],
                 optional_writes=FIT_TABLES, claims=CLAIMS),
    ]
