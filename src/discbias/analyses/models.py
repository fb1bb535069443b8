"""Study 2 models: the paper's Bayesian models refitted, mixed-effects models, trees, reliability.

Model ids (public, in ``build/results/models.csv``): ``rgb_bayes``, ``elicited_bayes``,
``elicited_bayes_centred``, ``elicited_ols``, ``elicited_ols_hc3``, ``elicited_ols_cluster``, ``elicited_mixed``,
``rating_level_mixed:<item>``, ``race_gender_hair_mixed``, ``race_gender_hair_ols``,
``partial_corr``, ``partial_corr_rgb``, ``tree_depth5``, ``tree_depth4_ratings``,
``reliability`` and the sensitivity refits ``<model>__<dataset>``. ``rgb_ols``, ``rgb_ols_hc3``,
``men_anova`` and ``women_anova`` are fitted in :mod:`discbias.analyses.study2`.

Sampler and bootstrap sizes come from an optional ``[models]`` table of the study
configuration (keys ``draws``, ``tune``, ``chains``, ``cores``, ``seed``, ``target_accept``, ``sampler``, ``n_boot``); the
defaults are ``discbias.defaults.DEFAULTS["models"]`` (schema: :class:`discbias.schema.ModelsTable`), and for the
paper's specification of the Figure 7 model :data:`ELICITED_PAPER_SAMPLER` where the table does not set a key.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..defaults import DEFAULTS
from ..results import result_frame
from ..stats.bayes import MAX_RHAT, MIN_ESS, SamplerSettings, elicited_bayes, rgb_bayes
from ..stats.correlation import add_holm, partial_correlations
from ..stats.cr2 import cluster_table
from ..stats.fitcache import FitCache
from ..stats.mixed import cell_marginal_means, mixedlm, nested_variance_components
from ..stats.regression import ols
from ..stats.reliability import item_reliability
from ..stats.trees import regression_tree
from ..studies.grissom2024 import ITEM_NAMES, read_study2

#: The rated axes, in the order of the paper's Figure 7 model.
AXES = ["masculinity", "femininity", "skintone", "afrocentric", "eurocentric", "asiocentric", "hair_length"]
AXIS_COLS = [f"{a}_mean" for a in AXES]
RGB = ["red_mean", "green_mean", "blue_mean"]
N_BOOT = DEFAULTS["models"]["n_boot"]
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
#: Sampler settings of the paper's specification on top of the configured ones: nutpie's low-rank
#: mass matrix (masculinity and femininity slopes are strongly correlated) and target_accept 0.99
#: (at 0.95 there were 3 divergent transitions in 24,000 draws), 4 chains x (1,000 tuning + 2,000
#: kept) draws. Until issue 26 it was 8 chains x (3,000 + 2,000): 3.3x the iterations; the 4-chain
#: run converges (R-hat 1.009, bulk/tail ESS >= 828/1,269, no divergence on the released data) and
#: its quantiles agree with a long reference run of 8 chains (tests/test_elicited_reference.py).
#: Measured routes: benchmarks/bench_fit.py --routes.
ELICITED_PAPER_SAMPLER = dict(chains=4, draws=2000, tune=1000, target_accept=0.99, mass_matrix="low_rank")
#: Sampler settings of the centred specification on top of the configured ones: target_accept 0.99
#: (at 0.95 it had 1 divergent transition in 4,000 under OpenBLAS's Haswell kernel and none under
#: SkylakeX, so its convergence depended on the CPU; tests/test_kernel_convergence.py fits it under
#: every kernel setting).
ELICITED_CENTRED_SAMPLER = dict(target_accept=0.99)
RGH_FIXED = "score ~ C(race) + C(gender) + C(hair) + luminance + red_mean"
RGH_FULL = "score ~ C(race) * C(gender) * C(hair) + luminance + red_mean"


def _centred_settings(config, settings: SamplerSettings) -> SamplerSettings:
    """Sampler settings of the centred Figure 7 specification: :data:`ELICITED_CENTRED_SAMPLER` for
    every key the configuration's ``[models]`` table does not set."""
    from dataclasses import replace

    given = dict(config.raw.get("models", {})) if getattr(config, "raw", None) else {}
    return replace(settings, **{k: v for k, v in ELICITED_CENTRED_SAMPLER.items() if k not in given})


def _paper_settings(config, settings: SamplerSettings) -> SamplerSettings:
    """Sampler settings of the paper's Figure 7 specification: :data:`ELICITED_PAPER_SAMPLER` for
    every key the configuration's ``[models]`` table does not set (a configuration that sets
    ``draws``, ``chains``... gets exactly those), the low-rank mass matrix only with nutpie."""
    from dataclasses import replace

    given = config.models.model_fields_set  # the keys the file's [models] table sets itself
    o = {k: v for k, v in ELICITED_PAPER_SAMPLER.items() if k not in given}
    if settings.sampler != "nutpie":
        o.pop("mass_matrix", None)
    return replace(settings, **o)


def _settings(config) -> tuple[SamplerSettings, int]:
    """The ``[models]`` table (validated by :class:`discbias.schema.ModelsTable`, defaults filled in)."""
    m = config.models
    s = SamplerSettings(draws=m.draws, tune=m.tune, chains=m.chains, cores=m.cores, seed=m.seed,
                        target_accept=m.target_accept, sampler=m.sampler)
    return s, m.n_boot


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

    from ..studies.grissom2024 import NAME_GENDER, NAME_HAIR, NAME_RACE, NAME_RE, read_released, ratings_long, summarise_ratings
    from ..studies.validation import numeric_column, require_columns

    name = Path(str(path)).name
    df, log = read_released(path, name)
    require_columns(df, ["image", "matches_prompt", *RGB, "luminance"], name,
                    "Point the ratings role at all_face_data_matched.csv")
    keep = df["image"].astype(str).str.match(NAME_RE.pattern)
    df = df[keep]  # the file's row labels are kept, so that issues name the file's own lines
    parts = df["image"].str.extract(NAME_RE.pattern)
    out = pd.DataFrame({"image": df["image"]})
    out["race"] = parts["race"].map(NAME_RACE)
    out["gender"] = parts["gen"].map(NAME_GENDER)
    out["hair_prompt"] = parts["hair"].map(NAME_HAIR)
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


def _bayes_checks(im: pd.DataFrame, rgb_idata, a: pd.DataFrame | None, elicited: dict, values: dict) -> dict:
    """Heavy-tailed summaries (median and quantiles of nu), prior- and posterior-predictive checks of every
    Bayesian model (:mod:`discbias.stats.bayes_checks`)."""
    from ..stats.bayes_checks import (elicited_log_densities, elicited_prior_predictive, heavy_tail_summary,
                                      power_scaling, predictive_check, replicate_from_posterior, rgb_prior_predictive)

    tails, checks, dens, psens = [], [], [], []
    if rgb_idata is not None:
        d = im.dropna(subset=["score", *RGB])
        y = d["score"].to_numpy(float)
        c, f = predictive_check(y, replicate_from_posterior(rgb_idata, d[RGB].to_numpy(float), seed=SEED),
                                model="rgb_bayes", kind="posterior")
        grid = f["x"].to_numpy()
        c2, f2 = predictive_check(y, rgb_prior_predictive(y, d[RGB].to_numpy(float), seed=SEED), model="rgb_bayes",
                                  kind="prior", grid=grid)
        checks += [c2, c]
        dens += [f2, f]
    if a is not None:
        shared = {"femininity_mean": "masculinity_mean"}
        own = [x for x in AXIS_COLS if x not in shared]
        idx = np.array([own.index(shared.get(x, x)) for x in AXIS_COLS])
        y = a["score"].to_numpy(float)
        for mid, (idata, spec) in elicited.items():
            if idata is None:
                continue
            X = a[AXIS_COLS].to_numpy(float)
            if spec == "centred":
                X = X - X.mean(axis=0)
            if "nu" in idata.posterior:
                tails.append(heavy_tail_summary(idata, "nu", model=mid))
            c, f = predictive_check(y, replicate_from_posterior(idata, X, seed=SEED), model=mid, kind="posterior")
            grid = f["x"].to_numpy()
            c2, f2 = predictive_check(y, elicited_prior_predictive(y, X, AXIS_COLS, idx, spec=spec, seed=SEED),
                                      model=mid, kind="prior", grid=grid)
            checks += [c, c2]
            dens += [f, f2]
            # power-scaling prior (and likelihood) sensitivity, ArviZ psens
            names = ["b0"] + [f"b_{j}" for j in range(len(AXIS_COLS))] + ["nu", "sigma"]
            terms = {"b0": "Intercept", **{f"b_{j}": x for j, x in enumerate(AXIS_COLS)}}
            try:
                psens.append(power_scaling(elicited_log_densities(idata, y, X, idx, spec=spec), model=mid,
                                           var_names=names, terms=terms))
            except Exception as exc:  # recorded in the table, never silently dropped
                psens.append(pd.DataFrame([dict(model=mid, term="(all)", diagnosis=f"psens failed: {exc}")]))
    out = {"models_bayes_tails": pd.DataFrame(tails),
           "models_psens": pd.concat(psens, ignore_index=True) if psens else pd.DataFrame(), "models_ppc": pd.concat(checks, ignore_index=True)
           if checks else pd.DataFrame(), "models_ppc_density": pd.concat(dens, ignore_index=True) if dens else pd.DataFrame()}
    values["nu"] = {r["model"]: {k: r[k] for k in ("median", "q025", "q25", "q75", "q975")} for r in tails}
    ps = out["models_psens"]
    values["psens"] = ({m: dict(n_flagged=int((g["diagnosis"] != "-").sum()), n=int(len(g)),
                                max_prior=float(g["prior_sensitivity"].max()) if "prior_sensitivity" in g else float("nan"),
                                slopes_flagged=[str(t) for t in g.loc[(g["diagnosis"] != "-") & g["term"].isin(AXIS_COLS), "term"]])
                        for m, g in ps.groupby("model")} if len(ps) else {})
    dn = out["models_ppc_density"]
    values["ppc_density"] = dict(n_replications=int(dn["n_replications"].min()) if len(dn) else 0)
    ppc = out["models_ppc"]
    values["ppc"] = ({f"{m}:{k}": {s: dict(observed=float(r["observed"]), p=float(r["p_predictive"]),
                                          low=float(r["rep_low"]), high=float(r["rep_high"]))
                                  for s, r in g.set_index("statistic").iterrows()}
                      for (m, k), g in ppc.groupby(["model", "kind"])} if len(ppc) else {})
    return out



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
                                   warnings=f"{note}: only {len(images)} row{'' if len(images) == 1 else 's'}, fewer than "
                                            f"{MIN_SENSITIVITY_ROWS}; not fitted")])]
    from .study2 import colour_margin

    out = []
    t, f = ols("score ~ " + " + ".join(RGB), images, model=f"rgb_ols__{dataset}")
    out.append(pd.concat([t, colour_margin(f, images, model=f"rgb_ols__{dataset}")], ignore_index=True))
    if agg is not None:
        a, dropped = _complete(agg, AXIS_COLS + ["score"])
        t, _ = ols(ELICITED_OLS, a, model=f"elicited_ols__{dataset}")
        if dropped:
            t["warnings"] = t["warnings"].str.cat([f"{dropped} image{'' if dropped == 1 else 's'} without every rating mean left out"] * len(t), sep="; ").str.strip("; ")
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
    fits = FitCache.for_paths(ctx.paths)  # MCMC fits are reused while their data, spec, settings and code are unchanged
    rgb_b, rgb_idata = fits.fit(rgb_bayes, im, "score", tuple(RGB), model="rgb_bayes", settings=settings,
                                columns=["score", *RGB])
    res["models_rgb_bayes"] = rgb_b
    ctx.add_model("rgb_bayes", "Paper's Bayesian regression of score on mean red, green, blue (PyMC NUTS)",
                  "score ~ red_mean + green_mean + blue_mean", rgb_b, **bayes_diagnostics(rgb_b))

    std_rows = [standardized(ctx.results["study2_rgb_ols"][lambda d: d["model"] == "rgb_ols"], im),
                standardized(rgb_b, im)]

    # --- elicited axes (Figure 7): paper's spec, centred spec, OLS, OLS clustered, mixed ---
    el, bayes_checks = {}, {}
    if agg is not None:
        a, dropped = _complete(agg, AXIS_COLS + ["score"])
        shared = {"femininity_mean": "masculinity_mean"}
        paper_settings = _paper_settings(ctx.config, settings)
        values["sampler_elicited_paper"] = paper_settings.describe()
        values["sampler_elicited_centred"] = _centred_settings(ctx.config, settings).describe()
        for spec, mid in (("paper", "elicited_bayes"), ("centred", "elicited_bayes_centred")):
            t, idata = fits.fit(elicited_bayes, a, "score", AXIS_COLS, shared_scale=shared, spec=spec, model=mid,
                                settings=paper_settings if spec == "paper" else _centred_settings(ctx.config, settings),
                                parametrization=ELICITED_PARAMETRIZATION[spec], columns=["score", *AXIS_COLS])
            el[mid] = t
            bayes_checks[mid] = (idata, spec)
            ctx.add_model(mid, "Grissom et al.'s Figure 7 model: score on per-image mean ratings, Student-t slopes"
                          + (" (paper's specification)" if spec == "paper" else " (centred predictors, weak intercept prior)"),
                          ELICITED_OLS, t, **bayes_diagnostics(t))
        t, efit = ols(ELICITED_OLS, a, model="elicited_ols")
        el["elicited_ols"] = t
        ctx.add_model("elicited_ols", "OLS of score on per-image mean ratings (Grissom et al.'s Figure 7 predictors)", ELICITED_OLS, t)
        t, _ = ols(ELICITED_OLS, a, model="elicited_ols_hc3", cov_type="HC3")
        el["elicited_ols_hc3"] = t
        ctx.add_model("elicited_ols_hc3", "As elicited_ols, HC3 robust SEs", ELICITED_OLS, t)
        codes = pd.factorize(a["cell"])[0]
        # few design cells: CR2 standard errors with t(G - 1) (discbias.stats.cr2)
        t = cluster_table(efit, a["cell"].to_numpy(), model="elicited_ols_cluster", formula=ELICITED_OLS)
        el["elicited_ols_cluster"] = t
        if "p_value_wild" in t:  # the second few-cluster method beside CR2 (stats.cr2.wild_cluster_pvalues)
            w = t[t["term"] != "Intercept"]
            values["wild"] = dict(draws=int(w["wild_draws"].iloc[0]), enumerated=bool(w["wild_enumerated"].iloc[0]),
                                  n_clusters=int(w["n_groups"].iloc[0]),
                                  max_abs_diff=float((w["p_value_wild"] - w["p_value"]).abs().max()),
                                  terms={str(r["term"]).replace("_mean", ""): dict(p_cr2=float(r["p_value"]),
                                                                                   p_wild=float(r["p_value_wild"]))
                                         for _, r in w.iterrows()})
        ctx.add_model("elicited_ols_cluster", "As elicited_ols, CR2 SEs clustered by design cell, t(G - 1)",
                      ELICITED_OLS, t)
        for t in el.values():
            t["holm_family"] = ""
        res["models_elicited"] = pd.concat(list(el.values()), ignore_index=True)

        z = _zscore(a, AXIS_COLS + ["score", "luminance"])
        zf = "z_score ~ " + " + ".join(f"z_{c}" for c in AXIS_COLS + ["luminance"])
        mx, mfit = mixedlm(zf, z, "cell", model="elicited_mixed")
        _, zfit = ols(zf, z, model="elicited_mixed_ols_cluster")
        zo = cluster_table(zfit, z["cell"].to_numpy(), model="elicited_mixed_ols_cluster", formula=zf)
        mx = add_holm(mx, "elicited_mixed fixed effects", mask=(mx["term"] != "Intercept") & (mx["term"] != "Group Var"))
        zo = add_holm(zo, "elicited_mixed_ols_cluster slopes", mask=zo["term"] != "Intercept")
        res["models_elicited_mixed"] = pd.concat([mx, zo], ignore_index=True)
        ctx.add_model("elicited_mixed", "MixedLM: standardized score on standardized rating means + luminance, "
                      "random intercept for the design cell", zf + " + (1 | cell)", mx,
                      re_var=float(mx["re_var"].iloc[0]), re_near_zero=bool(mx["re_near_zero"].iloc[0]))
        ctx.add_model("elicited_mixed_ols_cluster", "Same fixed effects by OLS, CR2 cell-clustered SEs, t(G - 1)", zf, zo)
        for mid, t in el.items():
            std_rows.append(standardized(t, a))
        std_rows.append(standardized(mx[mx["term"] != "Group Var"], z, y="z_score", already=True))
        std_rows.append(standardized(zo, z, y="z_score", already=True))
        values["elicited"] = {
            mid: {r["term"].replace("_mean", ""): dict(b=r["estimate"], low=r["conf_low"], high=r["conf_high"])
                  for _, r in t.iterrows()} for mid, t in el.items()}
        values["elicited_n"] = int(len(a))
        values["masc_fem_corr"] = float(a["masculinity_mean"].corr(a["femininity_mean"]))
        # what the prose says of the data: the lowest per-image mean rating (the intercept sits at
        # ratings of 0, below it) and the number of design cells the cluster-robust SEs use
        values["elicited_min_mean_rating"] = float(a[AXIS_COLS].min().min())
        values["elicited_n_clusters"] = int(len(set(codes)))
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
    res.update(_bayes_checks(im, rgb_idata, a if agg is not None else None, bayes_checks, values))

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
    # a degenerate mixed model is not fitted (rfit None; its rows say why): no marginal means from it
    emm = pd.concat([cell_marginal_means(f, present, CELL, model=mid, at=at)
                     for f, mid in ((rfit, "race_gender_hair_mixed"), (rofit, "race_gender_hair_ols")) if f is not None],
                    ignore_index=True)
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
        vc = fits.fit(nested_variance_components, sub, "value", "image", "cell", model=f"rating_level_mixed:{it}",
                      n_boot=n_boot, seed=SEED, columns=["value", "image", "cell"])  # parametric bootstrap: cached
        vc["item"] = it
        vcs.append(vc)
        ctx.add_model(f"rating_level_mixed:{it}", f"Variance components of the {it} ratings: cell, image within cell, residual",
                      "value ~ 1 + (1 | cell) + (1 | cell:image)", vc)
    res["models_variance_components"] = pd.concat(vcs, ignore_index=True)
    rel = fits.fit(item_reliability, ratings, k=ICC_K, n_boot=n_boot, seed=SEED, model="reliability",
                   columns=["item", "image", "slot", "value"])  # bootstrap intervals: cached
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
FIT_TABLES = ["models_bayes_tails", "models_psens", "models_ppc", "models_ppc_density", "models_rgb_bayes", "models_elicited", "models_elicited_mixed", "models_partial_corr", "models_tree",
              "models_tree_splits", "models_standardized", "models_race_gender_hair", "models_cell_emm",
              "models_variance_components", "models_reliability", "models_sensitivity"]
MEASURES = ["study2_images", "study2_ratings"]
OPTIONAL_MEASURES = ["study2agg_images", "study2bal_images", "study2balagg_images", "study2_uncleaned_images"]


def steps(config, paths) -> list:
    """This module's steps: the sensitivity adapters (balanced subset, uncleaned file), the Study 2 models."""
    from ..stages import fit_step, measure_step

    return [
        measure_step("models:adapt", measure, optional_writes=["study2bal_images", "study2balagg_images",
                                                               "study2_uncleaned_images"]),
        fit_step("models", fit, measures=MEASURES, optional_measures=OPTIONAL_MEASURES, results=["study2_rgb_ols"],
                 optional_writes=FIT_TABLES),
    ]
