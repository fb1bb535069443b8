"""Study 2 models: the paper's Bayesian models refitted, mixed-effects models, trees, reliability.

Model ids (public, in ``build/results/models.csv``): ``rgb_bayes``, ``elicited_bayes``,
``elicited_bayes_centred``, ``elicited_ols``, ``elicited_ols_hc3``, ``elicited_ols_cluster``, ``elicited_mixed``,
``rating_level_mixed:<item>``, ``race_gender_hair_mixed``, ``race_gender_hair_ols``,
``partial_corr``, ``partial_corr_rgb``, ``tree_depth5``, ``tree_depth4_ratings``,
``reliability`` and the sensitivity refits ``<model>__<dataset>``. ``rgb_ols``, ``rgb_ols_hc3``,
``men_anova`` and ``women_anova`` are fitted in :mod:`discbias.analyses.study2`.

Sampler and bootstrap sizes come from an optional ``[models]`` table of the study
configuration (keys ``draws``, ``tune``, ``chains``, ``cores``, ``seed``, ``target_accept``, ``sampler``, ``n_boot``); the
defaults are :data:`discbias.stats.bayes.SAMPLER_DEFAULTS` and :data:`N_BOOT`, and for the paper's
specification of the Figure 7 model :data:`ELICITED_PAPER_SAMPLER` where the table does not set a key.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import result_frame
from ..stats.bayes import MAX_RHAT, MIN_ESS, SamplerSettings, elicited_bayes, rgb_bayes
from ..stats.correlation import add_holm, partial_correlations
from ..stats.mixed import cell_marginal_means, mixedlm, nested_variance_components
from ..stats.regression import ols
from ..stats.reliability import item_reliability
from ..stats.trees import regression_tree
from ..studies.grissom2024 import ITEM_NAMES, read_study2

#: The rated axes, in the order of the paper's Figure 7 model.
AXES = ["masculinity", "femininity", "skintone", "afrocentric", "eurocentric", "asiocentric", "hair_length"]
AXIS_COLS = [f"{a}_mean" for a in AXES]
RGB = ["red_mean", "green_mean", "blue_mean"]
N_BOOT = 100
ICC_K = 3
SEED = 20240215
CELL = ["race", "gender", "hair_prompt"]
ELICITED_OLS = "score ~ " + " + ".join(AXIS_COLS)
#: Sampling coordinates of the Figure 7 model per specification (the model is the same in each; see
#: :func:`discbias.stats.bayes.elicited_bayes`). The centred specification converges with the
#: centred-predictor intercept and non-centred slopes. The paper's specification has a heavy-tailed
#: intercept posterior: its t prior (scale about 1 around the mean score) sits on an intercept at
#: ratings of 0, which the data (OLS 198, SE 18, with masculinity and femininity correlated -0.99)
#: pull away from the prior's centre when the shared degrees of freedom are small. Sampled in
#: OLS-whitened coordinates, 4 chains mixed between the prior's core and that tail too rarely
#: (R-hat 1.02, tail ESS 166, also with 3x the draws); with the intercept's t prior written as a
#: non-centred normal scale mixture (``whitened_mixture``) the chains move between them.
ELICITED_PARAMETRIZATION = {"paper": "whitened_mixture", "centred": "centred_intercept"}
#: Sampler settings of the paper's specification on top of the configured ones: 8 chains (the
#: tail visits accumulate across chains; R-hat compares more of them), nutpie's low-rank mass
#: matrix (masculinity and femininity slopes are strongly correlated), longer tuning and
#: target_accept 0.99 (at 0.95 there were 3 divergent transitions in 24,000 draws).
ELICITED_PAPER_SAMPLER = dict(chains=8, draws=2000, tune=3000, target_accept=0.99, mass_matrix="low_rank")
RGH_FIXED = "score ~ C(race) + C(gender) + C(hair) + luminance + red_mean"
RGH_FULL = "score ~ C(race) * C(gender) * C(hair) + luminance + red_mean"


def _paper_settings(config, settings: SamplerSettings) -> SamplerSettings:
    """Sampler settings of the paper's Figure 7 specification: :data:`ELICITED_PAPER_SAMPLER` for
    every key the configuration's ``[models]`` table does not set (a configuration that sets
    ``draws``, ``chains``... gets exactly those), the low-rank mass matrix only with nutpie."""
    from dataclasses import replace

    given = dict(config.raw.get("models", {})) if getattr(config, "raw", None) else {}
    o = {k: v for k, v in ELICITED_PAPER_SAMPLER.items() if k not in given}
    if settings.sampler != "nutpie":
        o.pop("mass_matrix", None)
    return replace(settings, **o)


def _settings(config) -> tuple[SamplerSettings, int]:
    m = dict(config.raw.get("models", {})) if getattr(config, "raw", None) else {}
    s = SamplerSettings(draws=int(m.get("draws", SamplerSettings.draws)), tune=int(m.get("tune", SamplerSettings.tune)),
                        chains=int(m.get("chains", SamplerSettings.chains)), cores=int(m.get("cores", SamplerSettings.cores)),
                        seed=int(m.get("seed", SamplerSettings.seed)),
                        target_accept=float(m.get("target_accept", SamplerSettings.target_accept)),
                        sampler=str(m.get("sampler", SamplerSettings.sampler)))
    return s, int(m.get("n_boot", N_BOOT))


# ----------------------------------------------------------------------------------------------
# measure: the optional balanced subset and the uncleaned rated images


def read_uncleaned(path, *, on_invalid: str = "report") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scraped (Study 2) images of ``all_face_data_matched.csv`` before the exclusion rules.

    Rows named ``<race><m|w><l|s|b><k>.png`` are kept (the FFHQ extremes are left out); the
    design is read from the name; ``matches_prompt`` is the only exclusion flag this file carries.

    Returns
    -------
    images : DataFrame
        ``image, race, gender, hair, hair_prompt, cell, score, red_mean, green_mean, blue_mean,
        luminance, matches_prompt`` and per-item ``<item>_mean/_sd/_n``.
    issues : DataFrame

    Examples
    --------
    >>> images, issues = read_uncleaned("data/raw/all_face_data_matched.csv")  # doctest: +SKIP
    """
    from pathlib import Path

    from ..studies.grissom2024 import _NAME_GEN, _NAME_HAIR, _NAME_RACE, _NAME_RE, _read, ratings_long, summarise_ratings
    from ..studies.validation import numeric_column, require_columns

    name = Path(str(path)).name
    df, log = _read(path, name)
    require_columns(df, ["image", "matches_prompt", *RGB, "luminance"], name,
                    "Point the ratings role at all_face_data_matched.csv")
    keep = df["image"].astype(str).str.match(_NAME_RE.pattern)
    df = df[keep]  # the file's row labels are kept, so that issues name the file's own lines
    parts = df["image"].str.extract(_NAME_RE.pattern)
    out = pd.DataFrame({"image": df["image"]})
    out["race"] = parts["race"].map(_NAME_RACE)
    out["gender"] = parts["gen"].map(_NAME_GEN)
    out["hair_prompt"] = parts["hair"].map(_NAME_HAIR)
    out["hair"] = np.where(out["hair_prompt"] == "long", "long", "short")
    out["cell"] = out["race"] + ":" + out["gender"] + ":" + out["hair_prompt"]
    score_col = next(c for c in ("discriminator_score", "discriminator_Score", "scores") if c in df.columns)
    out["score"] = numeric_column(df, score_col, log, what="score", required=True).to_numpy()
    for c in RGB:
        out[c] = numeric_column(df, c, log, what="channel mean", low=0, high=255).to_numpy()
    out["luminance"] = numeric_column(df, "luminance", log, what="luminance", low=0, high=1).to_numpy()
    out["matches_prompt"] = df["matches_prompt"].map({"Yes": True, "No": False}).to_numpy()
    numeric, _ = ratings_long(df, out["image"], log)
    out = out.join(summarise_ratings(numeric, out["image"]), on="image").reset_index(drop=True)
    return out, log.finish(on_invalid)


def measure(ctx):
    tables, issues = {}, []
    for role, prefix in (("study2_balanced", "study2bal"), ("study2_balanced_aggregated", "study2balagg")):
        if ctx.config.has_role(role):
            a = read_study2(ctx.raw(role), expected_rows=ctx.expected_rows(role), on_invalid=ctx.on_invalid,
                            table_prefix=prefix)
            tables[f"{prefix}_images"] = a.tables[f"{prefix}_images"]
            issues.append(a.issues)
    role = "study2_uncleaned" if ctx.config.has_role("study2_uncleaned") else "study1_ratings"
    if ctx.config.has_role(role) and ctx.raw(role).exists():
        import csv

        with open(ctx.raw(role), newline="") as fh:
            header = next(csv.reader(fh))
        if "matches_prompt" in header:
            un, iss = read_uncleaned(ctx.raw(role), on_invalid=ctx.on_invalid)
            tables["study2_uncleaned_images"] = un
            issues.append(iss)
    from ..studies.validation import ISSUE_COLUMNS

    return tables, (pd.concat(issues, ignore_index=True) if issues else pd.DataFrame(columns=ISSUE_COLUMNS))


# ----------------------------------------------------------------------------------------------
# fit


def bayes_diagnostics(tidy: pd.DataFrame) -> dict:
    """A Bayesian fit's convergence diagnostics and sampling time for ``models.csv``.

    Examples
    --------
    >>> t = pd.DataFrame(dict(r_hat=[1.0, 1.004], ess_bulk=[900.0, 500.0], ess_tail=[800.0, 450.0],
    ...                       divergences=[0, 0], sampling_seconds=[12.5, 12.5]))
    >>> bayes_diagnostics(t)["min_ess_tail"]
    450.0
    """
    return dict(max_r_hat=float(tidy["r_hat"].max()), min_ess_bulk=float(tidy["ess_bulk"].min()),
                min_ess_tail=float(tidy["ess_tail"].min()), divergences=int(tidy["divergences"].iloc[0]),
                sampling_seconds=float(tidy["sampling_seconds"].iloc[0]) if "sampling_seconds" in tidy else float("nan"))


def _zscore(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = df.copy()
    for c in cols:
        out[f"z_{c}"] = (out[c] - out[c].mean()) / out[c].std(ddof=1)
    return out


def _complete(df: pd.DataFrame, cols: list[str]) -> tuple[pd.DataFrame, int]:
    ok = df[cols].notna().all(axis=1)
    return df[ok].copy(), int((~ok).sum())


def standardized(tidy: pd.DataFrame, data: pd.DataFrame, y: str = "score", already: bool = False) -> pd.DataFrame:
    """Slopes in SD units of ``y`` per SD of the predictor: ``b * sd(x) / sd(y)`` (intervals alike).

    Posterior rows keep their Monte Carlo standard errors, scaled alike (``mcse_std_estimate``,
    ``mcse_std_low``, ``mcse_std_high``), for ``discbias verify``.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["m"], "term": ["x"], "estimate": [2.0], "conf_low": [1.0], "conf_high": [3.0]})
    >>> standardized(t, pd.DataFrame({"x": [0.0, 1.0], "score": [0.0, 2.0]}))["std_estimate"].round(3).tolist()
    [1.0]
    """
    rows = []
    sy = data[y].std(ddof=1)
    for _, r in tidy.iterrows():
        term = r["term"]
        base = term[2:] if term.startswith("z_") else term
        if base not in data.columns or term in ("Intercept", "sigma", "nu"):
            continue
        f = 1.0 if already else data[base].std(ddof=1) / sy
        row = dict(model=r["model"], term=base, std_estimate=r["estimate"] * f, std_low=r["conf_low"] * f,
                   std_high=r["conf_high"] * f, method=r.get("method", ""))
        if pd.notna(r.get("mcse_mean", np.nan)):  # posterior rows: their Monte Carlo SEs, scaled alike
            row.update(mcse_std_estimate=r["mcse_mean"] * abs(f), mcse_std_low=r["mcse_conf_low"] * abs(f),
                       mcse_std_high=r["mcse_conf_high"] * abs(f))
        rows.append(row)
    return pd.DataFrame(rows)


#: Fewest rows for a sensitivity refit (the elicited OLS has 8 coefficients).
MIN_SENSITIVITY_ROWS = 20


def _sensitivity(ctx, images: pd.DataFrame, agg: pd.DataFrame | None, dataset: str, note: str) -> list[pd.DataFrame]:
    if len(images) < MIN_SENSITIVITY_ROWS:
        return [result_frame([dict(model=f"rgb_ols__{dataset}", term="(not fitted)", n_obs=len(images),
                                   converged=False, method="OLS",
                                   warnings=f"{note}: only {len(images)} row(s), fewer than "
                                            f"{MIN_SENSITIVITY_ROWS}; not fitted")])]
    out = []
    t, _ = ols("score ~ " + " + ".join(RGB), images, model=f"rgb_ols__{dataset}")
    out.append(t)
    if agg is not None:
        a, dropped = _complete(agg, AXIS_COLS + ["score"])
        t, _ = ols(ELICITED_OLS, a, model=f"elicited_ols__{dataset}")
        if dropped:
            t["warnings"] = t["warnings"].str.cat([f"{dropped} image(s) without every rating mean left out"] * len(t), sep="; ").str.strip("; ")
        out.append(t)
        z = _zscore(a, AXIS_COLS + ["score", "luminance"])
        t, _ = mixedlm("z_score ~ " + " + ".join(f"z_{c}" for c in AXIS_COLS + ["luminance"]), z, "cell",
                       model=f"elicited_mixed__{dataset}")
        out.append(t)
    for t in out:
        t["dataset"] = dataset
        t["dataset_note"] = note
        ctx.add_model(t["model"].iloc[0], f"Sensitivity refit on {dataset}: {note}", str(t["formula"].iloc[0]), t)
    return out


def fit(ctx):
    settings, n_boot = _settings(ctx.config)
    im = ctx.measures["study2_images"]
    im = im[im["valid"]].copy()
    agg_all = ctx.measures.get("study2agg_images")
    agg = agg_all[agg_all["valid"]].copy() if agg_all is not None else None
    ratings = ctx.measures["study2_ratings"]
    res = {}
    values: dict = dict(sampler=settings.describe(), n_boot=n_boot, icc_k=ICC_K,
                        convergence=dict(max_r_hat=MAX_RHAT, min_ess=MIN_ESS))

    # --- colour: the paper's Bayesian RGB model ---
    rgb_b, _ = rgb_bayes(im, "score", tuple(RGB), model="rgb_bayes", settings=settings)
    res["models_rgb_bayes"] = rgb_b
    ctx.add_model("rgb_bayes", "Paper's Bayesian regression of score on mean red, green, blue (PyMC NUTS)",
                  "score ~ red_mean + green_mean + blue_mean", rgb_b, **bayes_diagnostics(rgb_b))

    std_rows = [standardized(ctx.results["study2_rgb_ols"][lambda d: d["model"] == "rgb_ols"], im),
                standardized(rgb_b, im)]

    # --- elicited axes (Figure 7): paper's spec, centred spec, OLS, OLS clustered, mixed ---
    el = {}
    if agg is not None:
        a, dropped = _complete(agg, AXIS_COLS + ["score"])
        shared = {"femininity_mean": "masculinity_mean"}
        paper_settings = _paper_settings(ctx.config, settings)
        values["sampler_elicited_paper"] = paper_settings.describe()
        for spec, mid in (("paper", "elicited_bayes"), ("centred", "elicited_bayes_centred")):
            t, _ = elicited_bayes(a, "score", AXIS_COLS, shared_scale=shared, spec=spec, model=mid,
                                  settings=paper_settings if spec == "paper" else settings,
                                  parametrization=ELICITED_PARAMETRIZATION[spec])
            el[mid] = t
            ctx.add_model(mid, "Grissom et al.'s Figure 7 model: score on per-image mean ratings, Student-t slopes"
                          + (" (paper's specification)" if spec == "paper" else " (centred predictors, weak intercept prior)"),
                          ELICITED_OLS, t, **bayes_diagnostics(t))
        t, _ = ols(ELICITED_OLS, a, model="elicited_ols")
        el["elicited_ols"] = t
        ctx.add_model("elicited_ols", "OLS of score on per-image mean ratings (Grissom et al.'s Figure 7 predictors)", ELICITED_OLS, t)
        t, _ = ols(ELICITED_OLS, a, model="elicited_ols_hc3", cov_type="HC3")
        el["elicited_ols_hc3"] = t
        ctx.add_model("elicited_ols_hc3", "As elicited_ols, HC3 robust SEs", ELICITED_OLS, t)
        codes = pd.factorize(a["cell"])[0]
        t, _ = ols(ELICITED_OLS, a, model="elicited_ols_cluster", cov_type="cluster", cov_kwds={"groups": codes})
        t["warnings"] = t["warnings"].str.cat([f"cluster-robust SEs with only {len(set(codes))} clusters"] * len(t),
                                              sep="; ").str.strip("; ")
        el["elicited_ols_cluster"] = t
        ctx.add_model("elicited_ols_cluster", "As elicited_ols, SEs clustered by design cell", ELICITED_OLS, t)
        for t in el.values():
            t["holm_family"] = ""
        res["models_elicited"] = pd.concat(list(el.values()), ignore_index=True)

        z = _zscore(a, AXIS_COLS + ["score", "luminance"])
        zf = "z_score ~ " + " + ".join(f"z_{c}" for c in AXIS_COLS + ["luminance"])
        mx, mfit = mixedlm(zf, z, "cell", model="elicited_mixed")
        zo, _ = ols(zf, z, model="elicited_mixed_ols_cluster", cov_type="cluster",
                    cov_kwds={"groups": pd.factorize(z["cell"])[0]})
        mx = add_holm(mx, "elicited_mixed fixed effects", mask=(mx["term"] != "Intercept") & (mx["term"] != "Group Var"))
        zo = add_holm(zo, "elicited_mixed_ols_cluster slopes", mask=zo["term"] != "Intercept")
        res["models_elicited_mixed"] = pd.concat([mx, zo], ignore_index=True)
        ctx.add_model("elicited_mixed", "MixedLM: standardized score on standardized rating means + luminance, "
                      "random intercept for the design cell", zf + " + (1 | cell)", mx,
                      re_var=float(mx["re_var"].iloc[0]), re_near_zero=bool(mx["re_near_zero"].iloc[0]))
        ctx.add_model("elicited_mixed_ols_cluster", "Same fixed effects by OLS, cell-clustered SEs", zf, zo)
        for mid, t in el.items():
            std_rows.append(standardized(t, a))
        std_rows.append(standardized(mx[mx["term"] != "Group Var"], z, y="z_score", already=True))
        std_rows.append(standardized(zo, z, y="z_score", already=True))
        values["elicited"] = {
            mid: {r["term"].replace("_mean", ""): dict(b=r["estimate"], low=r["conf_low"], high=r["conf_high"])
                  for _, r in t.iterrows()} for mid, t in el.items()}
        values["elicited_n"] = int(len(a))
        values["masc_fem_corr"] = float(a["masculinity_mean"].corr(a["femininity_mean"]))
        values["elicited_dropped"] = dropped
        values["elicited_mixed"] = dict(re_var=float(mx["re_var"].iloc[0]), residual_var=float(mx["residual_var"].iloc[0]),
                                        re_share=float(mx["re_share"].iloc[0]), near_zero=bool(mx["re_near_zero"].iloc[0]),
                                        converged=bool(mx["converged"].iloc[0]), n_groups=int(mx["n_groups"].iloc[0]))
        values["divergences"] = {mid: int(el[mid]["divergences"].iloc[0]) for mid in ("elicited_bayes", "elicited_bayes_centred")}
        values["divergences"]["rgb_bayes"] = int(rgb_b["divergences"].iloc[0])
        diag = pd.concat([rgb_b, el["elicited_bayes"], el["elicited_bayes_centred"]])
        values["bayes_max_rhat"] = float(diag["r_hat"].max())
        values["bayes_min_ess_bulk"] = float(diag["ess_bulk"].min())
        values["bayes_min_ess_tail"] = float(diag["ess_tail"].min())
        values["bayes_all_converged"] = bool(diag["converged"].astype(bool).all())
        values["bayes_unconverged"] = sorted(diag.loc[~diag["converged"].astype(bool), "model"].unique().tolist())
        values["sampling_seconds"] = {mid: float(t["sampling_seconds"].iloc[0]) if "sampling_seconds" in t else None
                                      for mid, t in (("rgb_bayes", rgb_b), ("elicited_bayes", el["elicited_bayes"]),
                                                     ("elicited_bayes_centred", el["elicited_bayes_centred"]))}
        values["bayes_total_divergences"] = int(sum(values["divergences"].values()))

        # partial correlations
        pc = partial_correlations(a, "score", AXIS_COLS, ["luminance"], model="partial_corr")
        pc2 = partial_correlations(a, "score", AXIS_COLS, RGB, model="partial_corr_rgb")
        res["models_partial_corr"] = pd.concat([pc, pc2], ignore_index=True)
        ctx.add_model("partial_corr", "Partial correlation of score with each rated axis | luminance (Holm)",
                      "cor(score, axis | luminance)", pc)
        ctx.add_model("partial_corr_rgb", "Partial correlation of score with each rated axis | red, green, blue (Holm)",
                      "cor(score, axis | red, green, blue)", pc2)

        # trees
        tr, sp, tree = regression_tree(a, "score", AXIS_COLS + RGB, max_depth=5, model="tree_depth5", seed=SEED)
        tr4, sp4, _ = regression_tree(a, "score", AXIS_COLS, max_depth=4, model="tree_depth4_ratings", seed=SEED)
        res["models_tree"] = pd.concat([tr, tr4], ignore_index=True)
        res["models_tree_splits"] = pd.concat([sp, sp4], ignore_index=True)
        ctx.add_model("tree_depth5", "Regression tree (depth 5) on rating means + RGB, 5-fold CV", "score ~ tree(ratings, RGB)", tr)
        ctx.add_model("tree_depth4_ratings", "The authors' tree (depth 4, rating means only), 5-fold CV",
                      "score ~ tree(ratings)", tr4)
        root = sp[sp["depth"] == 0].iloc[0]
        tt = tr.set_index("term")
        values["tree"] = dict(root=root["feature"], root_threshold=float(root["threshold"]),
                              cv_r2=float(tt.loc["cv_r2", "estimate"]), cv_low=float(tt.loc["cv_r2", "conf_low"]),
                              cv_high=float(tt.loc["cv_r2", "conf_high"]), train_r2=float(tt.loc["train_r2", "estimate"]),
                              depth1=sorted(set(sp[sp["depth"] == 1]["feature"])),
                              cv_r2_ratings_only=float(tr4.set_index("term").loc["cv_r2", "estimate"]),
                              root_ratings_only=str(sp4[sp4["depth"] == 0]["feature"].iloc[0]))

    res["models_standardized"] = pd.concat([s for s in std_rows if len(s)], ignore_index=True)

    # --- race x gender x hair: partial pooling vs full interaction ---
    d, _ = _complete(im, ["score", "luminance", "red_mean", "race", "gender", "hair"])
    rm, rfit = mixedlm(RGH_FIXED, d, "cell", model="race_gender_hair_mixed")
    ro, rofit = ols(RGH_FULL, d, model="race_gender_hair_ols")
    res["models_race_gender_hair"] = pd.concat([rm, ro], ignore_index=True)
    ctx.add_model("race_gender_hair_mixed", "Main effects + luminance + red, random intercept for the race x gender x hair cell",
                  RGH_FIXED + " + (1 | cell)", rm, re_var=float(rm["re_var"].iloc[0]),
                  re_near_zero=bool(rm["re_near_zero"].iloc[0]))
    ctx.add_model("race_gender_hair_ols", "Full-interaction OLS of score", RGH_FULL, ro)
    cells = (d.groupby(["race", "gender", "hair", "hair_prompt"], observed=True).size().rename("n").reset_index())
    full = pd.MultiIndex.from_product([["Asian", "Black", "White"], ["men", "women"], ["long", "short"]],
                                      names=["race", "gender", "hair"]).to_frame(index=False)
    full["hair_prompt"] = np.where(full["hair"] == "long", "long", np.where(full["gender"] == "women", "buzz", "short"))
    cells = full.merge(cells, how="left", on=["race", "gender", "hair", "hair_prompt"])
    cells["n"] = cells["n"].fillna(0).astype(int)
    at = dict(luminance=float(d["luminance"].mean()), red_mean=float(d["red_mean"].mean()))
    present = cells[cells["n"] > 0]
    emm = pd.concat([cell_marginal_means(rfit, present, CELL, model="race_gender_hair_mixed", at=at),
                     cell_marginal_means(rofit, present, CELL, model="race_gender_hair_ols", at=at)], ignore_index=True)
    emm = emm.merge(cells[["race", "gender", "hair_prompt", "hair"]], on=["race", "gender", "hair_prompt"], how="left")
    missing_cells = cells[cells["n"] == 0]
    if len(missing_cells):
        emm = pd.concat([emm, result_frame([dict(model=m, term=":".join(r[c] for c in CELL), n=0, estimate=np.nan,
                                                 **{c: r[c] for c in CELL + ["hair"]})
                                            for m in ("race_gender_hair_mixed", "race_gender_hair_ols")
                                            for _, r in missing_cells.iterrows()])], ignore_index=True)
    res["models_cell_emm"] = emm
    values["race_gender_hair"] = dict(re_var=float(rm["re_var"].iloc[0]), residual_var=float(rm["residual_var"].iloc[0]),
                                      near_zero=bool(rm["re_near_zero"].iloc[0]), n=int(len(d)),
                                      ols_r2=float(ro["r_squared"].iloc[0]))

    # --- rating-level variance components and reliability ---
    vcs = []
    for it in AXES:
        sub = ratings[ratings["item"] == it]
        vc = nested_variance_components(sub, "value", "image", "cell", model=f"rating_level_mixed:{it}",
                                        n_boot=n_boot, seed=SEED)
        vc["item"] = it
        vcs.append(vc)
        ctx.add_model(f"rating_level_mixed:{it}", f"Variance components of the {it} ratings: cell, image within cell, residual",
                      "value ~ 1 + (1 | cell) + (1 | cell:image)", vc)
    res["models_variance_components"] = pd.concat(vcs, ignore_index=True)
    rel = item_reliability(ratings, k=ICC_K, n_boot=n_boot, seed=SEED, model="reliability")
    res["models_reliability"] = rel
    ctx.add_model("reliability", f"Inter-rater reliability per item: Krippendorff alpha, ICC(2,k), ICC(1,k) (k={ICC_K})",
                  "ratings ~ image (slots as raters)", rel)
    alpha = rel[rel["coefficient"].str.startswith("Krippendorff")].set_index("item")
    values["reliability"] = {it: dict(alpha=float(alpha.loc[it, "estimate"]), low=float(alpha.loc[it, "conf_low"]),
                                      high=float(alpha.loc[it, "conf_high"])) for it in alpha.index}
    values["reliability_min_item"] = str(alpha["estimate"].idxmin())
    values["reliability_min_alpha"] = float(alpha["estimate"].min())
    shares = res["models_variance_components"]
    values["variance_shares"] = {it: {t.split("(")[1][:-1]: float(v) for t, v in
                                      shares[(shares["item"] == it) & shares["term"].str.startswith("share")][["term", "estimate"]].values}
                                 for it in AXES}

    # --- sensitivity: balanced subset, exclusion rules ---
    sens = []
    if "study2bal_images" in ctx.measures:
        b = ctx.measures["study2bal_images"]
        b = b[b["valid"]]
        ba = ctx.measures.get("study2balagg_images")
        sens += _sensitivity(ctx, b, ba[ba["valid"]] if ba is not None else None, "balanced",
                             "balanced 50-per-cell subset (configured roles study2_balanced[_aggregated])")
    values["balanced_configured"] = "study2bal_images" in ctx.measures
    if "study2_uncleaned_images" in ctx.measures:
        u = ctx.measures["study2_uncleaned_images"]
        u = u[u["score"].notna()]
        ua = u[(u[[f"{a}_n" for a in AXES]] >= ICC_K).all(axis=1)]
        sens += _sensitivity(ctx, u, ua, "all_rated", "every rated scraped image, no exclusion rule applied")
        m = u[u["matches_prompt"] == True]  # noqa: E712 (object column)
        ma = ua[ua["matches_prompt"] == True]  # noqa: E712
        sens += _sensitivity(ctx, m, ma, "matches_prompt", "rated scraped images with matches_prompt = Yes only")
        values["uncleaned"] = dict(n_all=int(len(u)), n_all_agg=int(len(ua)), n_matches=int(len(m)), n_matches_agg=int(len(ma)))
    values["uncleaned_available"] = "study2_uncleaned_images" in ctx.measures
    main = [ctx.results["study2_rgb_ols"][lambda d: d["model"] == "rgb_ols"].assign(dataset="cleaned")]
    if agg is not None:
        main.append(el["elicited_ols"].assign(dataset="cleaned"))
        main.append(mx.assign(dataset="cleaned"))
    res["models_sensitivity"] = pd.concat(main + sens, ignore_index=True)

    ctx.results.update(res)
    ctx.values["models"] = values


# ----------------------------------------------------------------------------------------------
# figures and tables

_LABEL = {"masculinity": "masculinity", "femininity": "femininity", "skintone": "skin tone (darker)",
          "afrocentric": "Afrocentric", "eurocentric": "Eurocentric", "asiocentric": "Asiocentric",
          "hair_length": "hair length (longer)", "luminance": "luminance", "red": "red", "green": "green", "blue": "blue"}


def _short(term: str) -> str:
    return term.replace("_mean", "")


def figures(ctx):
    import matplotlib.pyplot as plt

    res = ctx.results
    if "models_standardized" not in res:
        return
    st = res["models_standardized"].copy()
    st["axis"] = st["term"].map(_short)
    el_models = ["elicited_bayes", "elicited_bayes_centred", "elicited_ols", "elicited_ols_cluster", "elicited_mixed"]
    rgb_models = ["rgb_ols", "rgb_bayes"]
    from ..report.style import OKABE_ITO, figsize

    colours = dict(zip(el_models + rgb_models, OKABE_ITO[:5] + [OKABE_ITO[2], OKABE_ITO[0]]))
    fig, axes = plt.subplots(1, 2, figsize=figsize(1.0, 0.7), gridspec_kw=dict(width_ratios=[2.2, 1]))
    for ax, models, order in ((axes[0], el_models, AXES + ["luminance"]), (axes[1], rgb_models, ["red", "green", "blue"])):
        present = [m for m in models if m in set(st["model"])]
        for k, m in enumerate(present):
            s = st[st["model"] == m].set_index("axis").reindex(order)
            y = np.arange(len(order)) + (k - (len(present) - 1) / 2) * 0.15
            ax.errorbar(s["std_estimate"], y, xerr=[s["std_estimate"] - s["std_low"], s["std_high"] - s["std_estimate"]],
                        fmt="o", ms=2.5, capsize=1.5, lw=0.8, color=colours[m], label=ctx.label(m))
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(range(len(order)), [_LABEL.get(o, o) for o in order])
        ax.invert_yaxis()
        ax.set_xlabel("SD of score per SD")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2 if len(present) > 2 else 1,
                  handlelength=1.2, columnspacing=0.8)
    axes[0].set_title("rated axes (aggregated set)")
    axes[1].set_title("colour (cleaned set)")
    ctx.save_figure(fig, "models_forest")

    # tree figure
    sp = res["models_tree_splits"]
    sp = sp[sp["model"] == "tree_depth5"]
    _tree_figure(ctx, sp)

    # tables
    el = res["models_elicited"]
    rows = []
    for term in ["Intercept"] + AXIS_COLS:
        r = {"Term": _short(term)}
        for m, lab in (("elicited_bayes", "Bayes, paper"), ("elicited_bayes_centred", "Bayes, centred"),
                       ("elicited_ols", "OLS"), ("elicited_ols_cluster", "OLS, cell-clustered")):
            x = el[(el["model"] == m) & (el["term"] == term)]
            r[lab] = (f"{x['estimate'].iloc[0]:.1f} [{x['conf_low'].iloc[0]:.1f}, {x['conf_high'].iloc[0]:.1f}]"
                      if len(x) else "—")
        rows.append(r)
    ctx.save_table(pd.DataFrame(rows), "models_elicited",
                   caption="Grissom et al.'s Figure 7 predictors: estimate [95% interval] per model (Bayesian: posterior mean and HDI; OLS: t interval). Units: score per rating point; the four specifications are the Bayesian model with the paper\u2019s priors, the centred Bayesian model, OLS and OLS with cell-clustered SEs.",
                   label="tbl-models-elicited")

    bay = pd.concat([res["models_rgb_bayes"], el[el["model"].str.startswith("elicited_bayes")]])
    t = pd.DataFrame({"Model": bay["model"], "Term": bay["term"].map(_short), "Mean": bay["estimate"], "SD": bay["std_error"],
                      "HDI low": bay["conf_low"], "HDI high": bay["conf_high"], "R-hat": bay["r_hat"],
                      "ESS bulk": bay["ess_bulk"].round(0), "ESS tail": bay["ess_tail"].round(0),
                      "Divergences": bay["divergences"].astype(int),
                      "Converged": bay["converged"].astype(str).str.lower().eq("true").map({True: "yes", False: "no"})})
    ctx.save_table(t, "models_bayes", digits={"Mean": 3, "SD": 3, "HDI low": 3, "HDI high": 3, "R-hat": 3,
                                               "ESS bulk": 0, "ESS tail": 0, "Divergences": 0},
                   caption="Bayesian fits: posterior mean, SD, 95% HDI, R-hat, bulk and tail effective sample sizes, divergent transitions and whether the fit meets the convergence criteria "
                           f"(R-hat ≤ {MAX_RHAT}, both ESS ≥ {MIN_ESS}, no divergences).",
                   label="tbl-models-bayes")

    mx = res["models_elicited_mixed"]
    t = pd.DataFrame({"Model": mx["model"], "Term": mx["term"].map(lambda s: _short(s[2:]) if s.startswith("z_") else s),
                      "Estimate": mx["estimate"], "SE": mx["std_error"], "95% CI low": mx["conf_low"],
                      "95% CI high": mx["conf_high"], "Test": mx["test"].fillna("z (cluster-robust SE)"),
                      "df": mx["df"], "p": mx["p_value"], "p (Holm)": mx["p_holm"]})
    ctx.save_table(t, "models_elicited_mixed", digits={"Estimate": 3, "SE": 3, "95% CI low": 3, "95% CI high": 3,
                                                       "df": 1, "p": 4, "p (Holm)": 4},
                   caption="Standardized fixed effects: MixedLM (random cell intercept, REML; t tests and intervals on "
                           "Satterthwaite degrees of freedom) and OLS with cell-clustered SEs (z).",
                   label="tbl-models-mixed")

    rgh = res["models_race_gender_hair"]
    rgh = rgh[rgh["model"] == "race_gender_hair_mixed"]
    t = pd.DataFrame({"Term": rgh["term"], "Estimate": rgh["estimate"], "SE": rgh["std_error"],
                      "95% CI low": rgh["conf_low"], "95% CI high": rgh["conf_high"], "Test": rgh["test"],
                      "df": rgh["df"], "p": rgh["p_value"]})
    ctx.save_table(t, "models_rgh_mixed", digits={"Estimate": 2, "SE": 2, "95% CI low": 2, "95% CI high": 2, "df": 1,
                                                  "p": 4},
                   caption="Race \u00d7 gender \u00d7 hair mixed model: fixed effects (REML; t tests and intervals on "
                           "Satterthwaite degrees of freedom, as lmerTest).",
                   label="tbl-models-rgh")

    emm = res["models_cell_emm"]
    wide = []
    for (race, gender, hp), g in emm.groupby(["race", "gender", "hair_prompt"], sort=True):
        r = {"Race": race, "Gender": gender, "Hair prompt": hp, "n": int(g["n"].iloc[0])}
        for m, lab in (("race_gender_hair_ols", "Full interaction OLS"), ("race_gender_hair_mixed", "Mixed (partial pooling)")):
            x = g[g["model"] == m]
            r[lab] = (f"{x['estimate'].iloc[0]:.1f} [{x['conf_low'].iloc[0]:.1f}, {x['conf_high'].iloc[0]:.1f}]"
                      if len(x) and np.isfinite(x["estimate"].iloc[0]) else "—")
        wide.append(r)
    ctx.save_table(pd.DataFrame(wide), "models_cell_emm",
                   caption="Estimated mean score per design cell [95% CI] at mean luminance and red (full cross, n per cell). Mixed: fixed part plus the cell's predicted random intercept (approximate interval).",
                   label="tbl-models-emm")

    pc = res["models_partial_corr"]
    t = pd.DataFrame({"Controls": pc["covariates"].map(
        lambda c: ", ".join(ctx.label(x.strip()) for x in str(c).split(","))), "Axis": pc["term"].map(_short), "n": pc["n_obs"], "Partial r": pc["estimate"],
                      "95% CI low": pc["conf_low"], "95% CI high": pc["conf_high"], "p": pc["p_value"], "p (Holm)": pc["p_holm"]})
    ctx.save_table(t, "models_partial_corr", digits={"Partial r": 3, "95% CI low": 3, "95% CI high": 3, "p": 4, "p (Holm)": 4},
                   caption="Partial correlations of score with each rated axis, controlling for luminance or for red, green and blue; p-values Holm-adjusted within each set of seven.",
                   label="tbl-models-pcor")

    rel = res["models_reliability"]
    vc = res["models_variance_components"]
    rows = []
    for it in AXES:
        r = {"Item": it}
        for coef, lab in (("Krippendorff alpha (interval)", "alpha"), ("ICC(2,k)", "ICC(2,k)"), ("ICC(1,k)", "ICC(1,k)")):
            x = rel[(rel["item"] == it) & (rel["coefficient"] == coef)]
            r[lab] = (f"{x['estimate'].iloc[0]:.2f} [{x['conf_low'].iloc[0]:.2f}, {x['conf_high'].iloc[0]:.2f}]"
                      if len(x) and np.isfinite(x["estimate"].iloc[0]) else "—")
        for share, lab in (("share(cell)", "cell share"), ("share(image)", "image share"), ("share(residual)", "residual share")):
            x = vc[(vc["item"] == it) & (vc["term"] == share)]
            r[lab] = f"{x['estimate'].iloc[0]:.2f} [{x['conf_low'].iloc[0]:.2f}, {x['conf_high'].iloc[0]:.2f}]"
        rows.append(r)
    ctx.save_table(pd.DataFrame(rows), "models_reliability",
                   caption="Inter-rater reliability [95% CI] and variance shares [95% CI] of each rating item (cleaned set).",
                   label="tbl-models-reliability")

    tr = res["models_tree_splits"]
    tr = tr[(tr["model"] == "tree_depth5") & (tr["depth"] <= 2)]
    t = pd.DataFrame({"Depth": tr["depth"], "Feature": tr["feature"].map(_short), "Threshold": tr["threshold"],
                      "n": tr["n_samples"], "Mean left": tr["left_value"], "Mean right": tr["right_value"]})
    ctx.save_table(t, "models_tree_splits", digits={"Depth": 0, "Threshold": 2, "Mean left": 1, "Mean right": 1},
                   caption="Splits of the depth-5 tree up to depth 2.",
                   label="tbl-models-tree")

    se = res["models_sensitivity"]
    keep = se["term"].isin(RGB + AXIS_COLS + [f"z_{c}" for c in AXIS_COLS])
    se = se[keep]
    t = pd.DataFrame({"Model": se["model"].str.split("__").str[0], "Data": se["dataset"],
                      "Term": se["term"].map(lambda s: _short(s[2:]) if s.startswith("z_") else _short(s)),
                      "Estimate": se["estimate"], "95% CI low": se["conf_low"], "95% CI high": se["conf_high"],
                      "n": se["n_obs"]})
    balanced = "balanced; " if ctx.values["models"].get("balanced_configured") else ""
    ctx.save_table(t, "models_sensitivity", digits={"Estimate": 3, "95% CI low": 3, "95% CI high": 3},
                   caption="Sensitivity of the colour and elicited-axes slopes to the data set (cleaned; "
                           f"{balanced}without exclusions; images matching the prompt only).",
                   label="tbl-models-sensitivity")


def _tree_figure(ctx, sp: pd.DataFrame, max_depth: int = 3):
    import matplotlib.pyplot as plt

    sp = sp[sp["depth"] < max_depth]
    from ..report.style import figsize

    fig, ax = plt.subplots(figsize=figsize(1.0, 0.5))
    pos = {}
    # lay out nodes by depth, in node order
    for depth, g in sp.groupby("depth"):
        if depth > 0:  # order children under their parents
            g = g.assign(_px=g["parent"].map(lambda p: pos.get(p, (0, 0))[0])).sort_values(["_px", "node"])
        xs = np.linspace(0, 1, len(g) + 2)[1:-1]
        for x, (_, r) in zip(xs, g.iterrows()):
            pos[r["node"]] = (x, -depth)
            ax.text(x, -depth, f"{_short(r['feature'])}\n\u2264 {r['threshold']:.2f}\nn = {r['n_samples']}, mean {r['value']:.0f}",
                    ha="center", va="center", fontsize=7, bbox=dict(boxstyle="round", fc="#eef", ec="#88a"))
    for _, r in sp.iterrows():
        if r["parent"] in pos:
            (x0, y0), (x1, y1) = pos[r["parent"]], pos[r["node"]]
            ax.plot([x0, x1], [y0 - 0.22, y1 + 0.22], color="#88a", lw=0.8, zorder=0)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-max_depth + 0.4, 0.5)
    ax.axis("off")
    ax.set_title(f"Regression tree (depth 5), first {max_depth} levels")
    ctx.save_figure(fig, "models_tree")
