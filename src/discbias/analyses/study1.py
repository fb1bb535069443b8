"""Study 1: the 70,000 FFHQ images and their top and bottom 100."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import Claim, SpecResult, Specification, result_row, row
from ..results import result_frame
from ..stats.groups import category_shares, chisq_independence, correlation, describe, welch_ttest
from ..stats.regression import ols
from ..studies.grissom2024 import RACE_CATEGORIES, read_ffhq_scores, read_top_bottom

BLACK = "Black or African-American"


def measure(ctx):
    a = read_ffhq_scores(ctx.raw("study1_scores"), expected_rows=ctx.expected_rows("study1_scores"),
                         on_invalid=ctx.on_invalid)
    b = read_top_bottom(ctx.raw("study1_top_bottom"), ctx.raw("study1_ratings"),
                        expected_rows=ctx.expected_rows("study1_top_bottom"), on_invalid=ctx.on_invalid)
    return {**a.tables, **b.tables}, pd.concat([a.issues, b.issues], ignore_index=True)


def black_share_per_image(race: pd.DataFrame) -> pd.DataFrame:
    """Share of an image's race ratings that say Black, per image (the image is the unit)."""
    g = race.groupby(["image_id", "group"])["race"]
    return pd.DataFrame({"black_share": g.apply(lambda s: (s == BLACK).mean()), "n_ratings": g.size()}).reset_index()


def luminance_all(valid: pd.DataFrame) -> pd.DataFrame:
    """Score on the released per-image "luminance" (the blue-channel mean) over every valid image.

    Two OLS fits with HC3 standard errors: the raw slope (score logits per unit of the 0-255
    channel mean, model ``s1_luminance_ols_hc3``) and the standardised slope (SD of score per SD
    of the channel mean, ``s1_luminance_ols_hc3_std``). Unlike the top/bottom-100 contrast, the
    images are not selected on the score.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"blue_mean": rng.uniform(0, 255, 300)}); d["score"] = 0.01 * d.blue_mean + rng.normal(size=300)
    >>> t = luminance_all(d)
    >>> t["model"].tolist(), bool((t["conf_low"] > 0).all())
    (['s1_luminance_ols_hc3', 's1_luminance_ols_hc3_std'], True)
    """
    raw, _ = ols("score ~ blue_mean", valid, model="s1_luminance_ols_hc3", cov_type="HC3")
    z = valid[["score", "blue_mean"]].copy()
    for c in z.columns:
        z[f"z_{c}"] = (z[c] - z[c].mean()) / z[c].std(ddof=1)
    std, _ = ols("z_score ~ z_blue_mean", z, model="s1_luminance_ols_hc3_std", cov_type="HC3")
    out = pd.concat([raw, std], ignore_index=True)
    return out[out["term"] != "Intercept"].reset_index(drop=True)


def black_rating_logit(race: pd.DataFrame) -> pd.DataFrame:
    """Log-odds that a race rating says Black, bottom vs top 100, with image-clustered SEs.

    Ratings are nested in images; the cluster-robust covariance (statsmodels GLM, ``cov_type =
    "cluster"`` by ``image_id``) makes the image the unit, as the per-image Welch test does.

    Examples
    --------
    >>> d = pd.DataFrame({"image_id": np.repeat(np.arange(40), 3), "group": np.repeat(["top", "bottom"], 60),
    ...                   "race": [BLACK if i % 2 else "White" for i in range(60)] + ["White"] * 60})
    >>> round(float(black_rating_logit(d)["estimate"].iloc[0]), 2) < 0
    True
    """
    import statsmodels.api as sm

    d = race.dropna(subset=["race", "group"]).copy()
    y = (d["race"] == BLACK).astype(float).to_numpy()
    x = sm.add_constant((d["group"] == "bottom").astype(float).to_numpy())
    groups = pd.factorize(d["image_id"])[0]
    warns = []
    try:
        f = sm.GLM(y, x, family=sm.families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": groups})
        ci = f.conf_int()
        est, se, lo, hi, p, conv = f.params[1], f.bse[1], ci[1, 0], ci[1, 1], f.pvalues[1], bool(f.converged)
    except Exception as exc:  # perfect separation etc.: recorded, never a verdict
        est = se = lo = hi = p = np.nan
        conv = False
        warns.append(f"{type(exc).__name__}: {exc}")
    return result_frame([dict(model="s1_black_logit_cluster", term="bottom", estimate=est, std_error=se,
                              statistic=est / se if se == se and se else np.nan, p_value=p, conf_low=lo, conf_high=hi,
                              conf_level=0.95, method="Binomial GLM (logit), cluster-robust SEs by image",
                              n_obs=len(d), n_groups=int(groups.max() + 1) if len(groups) else 0, converged=conv,
                              warnings=warns)])


def fit(ctx):
    from statsmodels.stats.multitest import multipletests

    scores = ctx.measures["ffhq_scores"]
    valid = scores[scores["valid"]]
    tb = ctx.measures["top_bottom"]
    race = ctx.measures["top_bottom_race"]

    dist = describe(valid["score"])
    ctx.results["study1_score_distribution"] = pd.DataFrame(
        [dict(statistic=k, value=v) for k, v in dist.items()])
    corr = correlation(valid, "blue_mean", "score", model="s1_blue_score_corr")
    ctx.results["study1_correlations"] = corr
    ctx.add_model("s1_blue_score_corr", "Correlation of score with the blue-channel mean (70k FFHQ)",
                  "cor(score, blue_mean)", corr)
    ctx.results["study1_luminance_all"] = luminance_all(valid)
    for m, t in ctx.results["study1_luminance_all"].groupby("model", sort=False):
        ctx.add_model(m, "Score on the released 'luminance' (blue-channel mean), all 70k FFHQ images, HC3 SEs",
                      str(t["formula"].iloc[0]), t)

    tests = []
    for v in ("luminance", "red_mean", "green_mean", "blue_mean"):
        tests.append(welch_ttest(tb[tb["valid"]], v, "group", "top", "bottom", model=f"s1_top_bottom_{v}"))
    share = black_share_per_image(race)
    tests.append(welch_ttest(share, "black_share", "group", "bottom", "top", model="s1_black_share"))
    tests = pd.concat(tests, ignore_index=True)
    main = ~tests["term"].str.endswith(":hedges_g")
    tests["p_holm"] = np.nan
    tests.loc[main, "p_holm"] = multipletests(tests.loc[main, "p_value"], method="holm")[1]
    tests["multiple_testing"] = "Holm over the five top-vs-bottom tests"
    ctx.results["study1_top_bottom_tests"] = tests
    for m in tests["model"].unique():
        ctx.add_model(m, "Welch t-test, top vs bottom 100 FFHQ images", m.replace("s1_top_bottom_", "") + " ~ group",
                      tests[tests["model"] == m])

    rc = black_rating_logit(race)
    ctx.results["study1_race_logit"] = rc
    ctx.add_model("s1_black_logit_cluster", "Logistic regression of a 'Black' rating on bottom vs top, "
                  "SEs clustered by image", "is_black ~ bottom", rc)

    shares = category_shares(race, "race", "group", RACE_CATEGORIES)
    ctx.results["study1_race_shares"] = shares
    chi = chisq_independence(race, "race", "group", model="s1_race_chisq")
    chi["unit_warning"] = "ratings are nested in images; the per-image Welch test is the primary test"
    ctx.results["study1_race_chisq"] = chi
    ctx.add_model("s1_race_chisq", "Rated race by top/bottom group (all ratings)", "race x group", chi)

    t = tests.set_index("term")
    ctx.values["study1"] = dict(
        n_images=int(len(scores)), n_valid=int(len(valid)), score=dist,
        blue_r=float(corr.loc[0, "estimate"]), blue_r_low=float(corr.loc[0, "conf_low"]),
        blue_r_high=float(corr.loc[0, "conf_high"]), blue_rho=float(corr.loc[1, "estimate"]),
        n_top=int((tb["group"] == "top").sum()), n_bottom=int((tb["group"] == "bottom").sum()),
        top_score_min=float(tb.loc[tb["group"] == "top", "score"].min()),
        bottom_score_max=float(tb.loc[tb["group"] == "bottom", "score"].max()),
        luminance=dict(top=float(t.loc["luminance", "mean_a"]), bottom=float(t.loc["luminance", "mean_b"]),
                       diff=float(t.loc["luminance", "estimate"]), low=float(t.loc["luminance", "conf_low"]),
                       high=float(t.loc["luminance", "conf_high"]), p=float(t.loc["luminance", "p_value"]),
                       g=float(t.loc["luminance:hedges_g", "estimate"])),
        black_share=dict(bottom=float(t.loc["black_share", "mean_a"]), top=float(t.loc["black_share", "mean_b"]),
                         diff=float(t.loc["black_share", "estimate"]), low=float(t.loc["black_share", "conf_low"]),
                         high=float(t.loc["black_share", "conf_high"])),
        n_race_ratings=int(len(race)), race_chisq=float(chi.loc[0, "statistic"]), race_chisq_p=float(chi.loc[0, "p_value"]),
        race_chisq_df=int(chi.loc[0, "df"]), race_cramers_v=float(chi.loc[0, "estimate"]),
        n_images_rated=int(race["image_id"].nunique()),
        n_extremes=int(len(tb)), n_extremes_joined=int(tb["rated_name"].notna().sum()),
    )


_WELCH = "Welch t-test"


def _black_p(results) -> float:
    """Share of all race ratings of the top and bottom 100 that say Black (for the SESOI's scale)."""
    sh = results.get("study1_race_shares")
    if sh is None or not len(sh):
        return float("nan")
    b = sh[sh["category"] == BLACK]
    return float(b["n"].sum() / b["total"].sum()) if len(b) and b["total"].sum() else float("nan")


def _share_scale(r, results) -> float:
    """Cohen's h into a difference of shares at the overall share p: dp = h * sqrt(p (1 - p))."""
    p = _black_p(results)
    return float(np.sqrt(p * (1 - p))) if p == p else 1.0


def _logit_scale(r, results) -> float:
    """Cohen's h into a log-odds difference at the overall share p: h / sqrt(p (1 - p))."""
    p = _black_p(results)
    return float(1 / np.sqrt(p * (1 - p))) if p == p and 0 < p < 1 else 1.0


def _rating_share_difference(results):
    """The paper's reading: the share of all race ratings saying Black, bottom minus top (ratings as if
    independent: a Wald interval for a difference of two proportions)."""
    sh = results.get("study1_race_shares")
    if sh is None or not len(sh):
        return None
    b = sh[sh["category"] == BLACK].set_index("group")
    if not {"top", "bottom"} <= set(b.index):
        return None
    p1, n1 = float(b.loc["bottom", "share"]), float(b.loc["bottom", "total"])
    p2, n2 = float(b.loc["top", "share"]), float(b.loc["top", "total"])
    se = float(np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2))
    d = p1 - p2
    return SpecResult(d, d - 1.959963984540054 * se, d + 1.959963984540054 * se,
                      method="difference of two proportions over all race ratings, Wald interval (ratings treated "
                             "as independent, as a share of ratings reads them)",
                      source="study1_race_shares: Black or African-American, bottom and top",
                      sesoi_scale=_share_scale(None, results),
                      note=f"{int(n1)} bottom and {int(n2)} top ratings; ratings are nested in images")


def _raw_over_std(r, results) -> float:
    """The standardised SESOI in raw units: the raw slope's ratio to the standardised one."""
    std = row(results, "study1_luminance_all", "s1_luminance_ols_hc3_std", "z_blue_mean")
    return float(r["estimate"]) / float(std["estimate"]) if std is not None and float(std["estimate"]) else 1.0


CLAIMS = [
    Claim("S1-luminance", "Higher-luminance FFHQ images get higher scores.",
          "top 100 brighter than bottom 100", +1, [
              Specification("paper", "top vs bottom 100: luminance (Welch)",
                            result_row("study1_top_bottom_tests", "s1_top_bottom_luminance", "luminance"),
                            role="paper", selected_on_score=True),
              Specification("blue_all", "all 70k: blue-channel mean, Pearson r (not luminance; see S1-blue-all)",
                            result_row("study1_correlations", "s1_blue_score_corr", "blue_mean~score:pearson"),
                            estimand="association of score with the blue-channel mean"),
          ], quantity="luminance difference (top minus bottom), or r", kind="replication",
          estimand="association of score with image luminance over FFHQ"),
    Claim("S1-blue-all", "Across all 70,000 FFHQ images, a higher blue-channel mean (the released file's "
          "'luminance' column) goes with a higher score.",
          "not in the paper: the released 70k file's 'luminance' column is the blue-channel mean", +1, [
              Specification("pearson", "all 70k: Pearson r",
                            result_row("study1_correlations", "s1_blue_score_corr", "blue_mean~score:pearson")),
              Specification("ols_hc3_std", "all 70k: standardised slope, HC3",
                            result_row("study1_luminance_all", "s1_luminance_ols_hc3_std", "z_blue_mean")),
              Specification("ols_hc3", "all 70k: OLS slope, HC3 (score per unit of the 0-255 mean)",
                            result_row("study1_luminance_all", "s1_luminance_ols_hc3", "blue_mean",
                                       sesoi_scale=_raw_over_std)),
              Specification("top_bottom", "top vs bottom 100: blue-channel mean (Welch)",
                            result_row("study1_top_bottom_tests", "s1_top_bottom_blue_mean", "blue_mean"),
                            selected_on_score=True),
          ], quantity="association of score with the blue-channel mean", kind="extension",
          estimand="association of score with the blue-channel mean over all FFHQ images (r)"),
    Claim("S1-race", "The bottom 100 FFHQ images are far more often rated Black than the top 100.",
          "bottom 100 far more often rated Black", +1, [
              Specification("paper", "share of ratings saying Black (ratings as independent)",
                            _rating_share_difference, role="paper", selected_on_score=True),
              Specification("image_share", "per-image share rated Black, Welch",
                            result_row("study1_top_bottom_tests", "s1_black_share", "black_share",
                                       sesoi_scale=_share_scale), selected_on_score=True),
              Specification("logit_cluster", "rating-level logit, image-clustered (log-odds)",
                            result_row("study1_race_logit", "s1_black_logit_cluster", "bottom",
                                       sesoi_scale=_logit_scale), selected_on_score=True),
          ], quantity="bottom minus top", kind="replication", selected_on_score=True, primary="image_share",
          estimand="how much more often the bottom 100 than the top 100 images are rated Black"),
    Claim("S1-not-training-data", "The discriminator's biases are not explicable by the training data.",
          "abstract: biases 'not explicable by the training data' (qualitative)", kind="qualitative",
          needs="the discriminator's weights and images to score, and a comparison of the probes' responses with "
                "the training (FFHQ) distribution of the same attributes"),
]


FIT_TABLES = ["study1_score_distribution", "study1_correlations", "study1_luminance_all", "study1_top_bottom_tests",
              "study1_race_logit", "study1_race_shares", "study1_race_chisq"]


def steps(config, paths) -> list:
    """This module's steps: the Study 1 adapters, the fit (with the Study 1 claims).

    The adapter's score table is ``released/ffhq_scores``; ``measures/ffhq_scores`` (what the fit
    reads) is written by ``rescoring:import`` with the scores read back from the score cache.
    """
    from ..stages import fit_step, measure_step

    meas = ["ffhq_scores", "top_bottom", "top_bottom_race"]
    return [
        measure_step("study1:adapt", measure, writes=["ffhq_scores", "top_bottom", "top_bottom_race",
                                                      "top_bottom_ratings"],
                     rename={"ffhq_scores": "released/ffhq_scores"}),
        fit_step("study1", fit, measures=meas, writes=FIT_TABLES, claims=CLAIMS),
    ]
