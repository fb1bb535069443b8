"""The models analysis on synthetic Study 2 files (same schema as the released CSVs).

The Bayesian fits are replaced by a fast stand-in here (they have their own tests in
test_stats_bayes.py); everything else runs as in the pipeline, including the balanced-subset
sensitivity path that a configuration enables with the roles study2_balanced[_aggregated].
"""

import numpy as np
import pandas as pd
import pytest

from discbias.analyses import models, study2
from discbias.claims import evaluate_claims
from discbias.pipeline import analysis_claims
from discbias.config import load_config
from discbias.paths import project_paths
from discbias.pipeline import FitContext, MeasureContext
from discbias.stats.regression import ols

ITEMS = ["Skintone", "Afrocentric", "Eurocentric", "Asiocentric", "Masculinity", "Femininity", "Hair"]


def synthetic_study2(rng, per_cell=20, slots=6, aggregated=False):
    rows = []
    for race, rc in (("Asian", "a"), ("Black", "b"), ("White", "w")):
        for gen, gc in (("men", "m"), ("women", "w")):
            for hair, hc in (("long", "l"), ("short", "s" if gen == "men" else "b")):
                for k in range(per_cell):
                    red = rng.uniform(60, 220)
                    g, b = red - rng.uniform(5, 30), red - rng.uniform(10, 50)
                    fem = 6 if gen == "women" else 2
                    hl = 6 if hair == "long" else 2
                    skin = {"Asian": 3, "Black": 6, "White": 2}[race]
                    score = 80 + 0.5 * red - 2.5 * hl + rng.normal(0, 10)
                    r = {"stim.race": race, "stim.gen": gen, "hairlength": hair, "fullstimname": f"{rc}{gc}{hc}{k}.png",
                         "discriminator_score": score, "red_mean": red, "green_mean": g, "blue_mean": b,
                         "luminance": (0.2126 * red + 0.7152 * g + 0.0722 * b) / 255,
                         "matches_prompt": "Yes", "dup": "No", "men.low.agree": "No"}
                    centre = dict(Skintone=skin, Afrocentric=6 if race == "Black" else 2,
                                  Eurocentric=6 if race == "White" else 2, Asiocentric=6 if race == "Asian" else 2,
                                  Masculinity=8 - fem, Femininity=fem, Hair=hl)
                    n_r = rng.integers(3, slots + 1)
                    for s in range(1, slots + 1):
                        r[f"Race.{s}"] = race if s <= n_r else np.nan
                        for it in ITEMS:
                            r[f"{it}_{s}"] = (float(np.clip(round(centre[it] + rng.normal(0, 0.8)), 1, 7))
                                              if s <= n_r else np.nan)
                    rows.append(r)
    df = pd.DataFrame(rows)
    if aggregated:
        for it in ITEMS:
            cols = [f"{it}_{s}" for s in range(1, slots + 1)]
            df[f"{it}Mean"] = df[cols].mean(axis=1)
            df[f"{it}Std"] = df[cols].std(axis=1)
    return df


def _fake_bayes(df, y, xs, **kw):
    t, _ = ols(f"{y} ~ " + " + ".join(xs), df, model=kw["model"])
    t["r_hat"], t["ess_bulk"], t["ess_tail"], t["divergences"], t["sampling_seconds"] = 1.0, 1000.0, 1000.0, 0, 1.5
    return t, None


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield _fit_project(tmp_path_factory.mktemp("proj"), mp)


def _fit_project(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    synthetic_study2(rng).to_csv(raw / "s2.csv", index=False)
    synthetic_study2(rng, aggregated=True).to_csv(raw / "s2agg.csv", index=False)
    synthetic_study2(rng, per_cell=10).to_csv(raw / "s2bal.csv", index=False)
    synthetic_study2(rng, per_cell=10, aggregated=True).to_csv(raw / "s2balagg.csv", index=False)
    srcs = "".join(f'[sources.{n}]\nfile = "{n}.csv"\nsha256 = "00"\n' for n in ("s2", "s2agg", "s2bal", "s2balagg"))
    cfg = tmp_path / "study.toml"
    cfg.write_text('[study]\nid = "syn"\ntitle = "Synthetic"\n[upstream]\nrepository = "o/r"\ncommit = "c"\n'
                   'url = "https://example.org/{path}"\n' + srcs +
                   '[roles]\nstudy2_images = "s2"\nstudy2_aggregated = "s2agg"\n'
                   'study2_balanced = "s2bal"\nstudy2_balanced_aggregated = "s2balagg"\n'
                   '[models]\nn_boot = 10\n')
    monkeypatch.setattr(models, "rgb_bayes", _fake_bayes)
    monkeypatch.setattr(models, "elicited_bayes", _fake_bayes)
    config = load_config(cfg)
    paths = project_paths(tmp_path)
    paths.ensure()
    mctx = MeasureContext(config, paths, "report")
    tables = {}
    for mod in (study2, models):
        made, _ = mod.measure(mctx)
        tables.update(made)
    ctx = FitContext(config, paths, tables)
    study2.fit(ctx)
    models.fit(ctx)
    return ctx


def test_models_fit_writes_every_model_with_diagnostics(project):
    ctx = project
    ids = {m["model"] for m in ctx.models}
    for mid in ("rgb_bayes", "elicited_bayes", "elicited_bayes_centred", "elicited_ols", "elicited_ols_cluster",
                "elicited_mixed", "race_gender_hair_mixed", "race_gender_hair_ols", "partial_corr", "tree_depth5",
                "reliability", "rating_level_mixed:skintone", "rgb_ols", "men_anova"):
        assert mid in ids, mid
    for m in ctx.models:
        assert "n_obs" in m and "converged" in m and "warnings" in m, m["model"]
    emm = ctx.results["models_cell_emm"]
    assert len(emm) == 2 * 12 and emm["n"].gt(0).all()
    vc = ctx.results["models_variance_components"]
    s = vc[vc["term"].str.startswith("share")].groupby("item")["estimate"].sum()
    assert np.allclose(s, 1.0)
    pc = ctx.results["models_partial_corr"]
    assert pc["holm_family"].str.startswith("Holm within").all()
    assert ctx.values["models"]["tree"]["root"] in models.AXIS_COLS + models.RGB


def test_balanced_sensitivity_runs_when_configured(project):
    sens = project.results["models_sensitivity"]
    assert {"cleaned", "balanced"} <= set(sens["dataset"])
    bal = sens[sens["dataset"] == "balanced"]
    assert set(bal["model"]) == {"rgb_ols__balanced", "elicited_ols__balanced", "elicited_mixed__balanced"}
    assert int(bal[bal["model"] == "rgb_ols__balanced"]["n_obs"].iloc[0]) == 120
    assert project.values["models"]["balanced_configured"] is True


def test_claims_read_the_models(project):
    claims, specs = evaluate_claims(project, analysis_claims())
    claims = claims.set_index("claim_id")
    for cid in ("S2-red", "S2-femininity", "S2-hair", "S2-skintone", "S2-black-men-long-hair"):
        assert claims.loc[cid, "verdict"] != "not yet estimated", cid
    hair = specs[specs["claim_id"] == "S2-hair"].set_index("specification")
    # every declared specification is estimated on the synthetic project, the balanced subset included
    assert set(hair.index) == {"paper", "centred", "ols_hc3", "cluster", "mixed", "balanced"}
    assert hair["estimate"].notna().all()
    assert hair.loc["paper", "source"].startswith("models_elicited: elicited_bayes ")
    # simulated hair effect is -2.5 per point and clearly estimated under every specification
    assert claims.loc["S2-hair", "robustness"] == "robust", hair[["estimate", "conf_low", "conf_high", "outcome"]]
    # the mixed model's within-cell standardised slope is a different question: shown, never voting
    assert hair.loc["mixed", "vote"] == "a different question" and not hair.loc["mixed", "used_for_verdict"]
    assert hair.loc["cluster", "method"].startswith("OLS, CR2")
    bl = specs[specs["claim_id"] == "S2-black-men-long-hair"].set_index("specification")
    assert bl.loc["vs_all_men", "vote"] == "a different question" and not bl.loc["vs_all_men", "used_for_verdict"]
    red = specs[specs["claim_id"] == "S2-red"].set_index("specification")
    assert red.loc["balanced", "estimate"] == red.loc["balanced", "estimate"]  # the balanced margin is estimated
    assert red.loc["paper", "vote"] == "a different question"  # the red slope alone: reproduction only
    assert "authors_file" in bl.index and bl.loc["authors_file", "outcome"] == "missing"  # optional: skipped


def test_unconverged_bayes_fit_never_supports_a_claim(project):
    res = dict(project.results)
    el = res["models_elicited"].copy()
    el.loc[el["model"] == "elicited_bayes", "converged"] = False
    res["models_elicited"] = el
    claims, specs = evaluate_claims(res, analysis_claims())
    c = claims.set_index("claim_id")
    assert c.loc["S2-hair", "verdict"] == "inconclusive"
    assert "not converged" in c.loc["S2-hair", "reason"]
    assert c.loc["S2-hair", "reproduction"] == "inconclusive" and "did not converge" in c.loc["S2-hair", "reproduction_reason"]
    s = specs[(specs["claim_id"] == "S2-hair") & (specs["specification"] == "paper")].iloc[0]
    assert s["outcome"] == "not converged" and not s["supports"]


def test_black_long_contrast_is_against_the_next_lowest_cell(project):
    con = project.results["study2_black_long_contrasts"]
    emm = project.results["study2_black_long_emm"]
    for mid, c in con.groupby("model"):
        assert len(c) == 5 and c["next_lowest"].sum() == 1  # five other men's cells, one binding contrast
        e = emm[(emm["model"] == mid) & (emm["term"] != "Black:long")]
        lowest = e.loc[e["estimate"].idxmin(), "term"]
        assert c.loc[c["next_lowest"], "other"].item() == lowest
        assert (c["p_holm"] >= c["p_value"] - 1e-12).all()


def test_cleaned_subset_anova_uses_r_term_order(project):
    """men_anova/women_anova are R's anova(lm(score ~ race * hair + luminance)): main effects
    (luminance included) before the interaction, and the sequential sums of squares add up to the
    total sum of squares of the subset."""
    an = project.results["study2_anova"]
    for mid in ("men_anova", "women_anova"):
        a = an[an["model"] == mid]
        assert a["term"].tolist() == ["race", "hair", "luminance", "race:hair", "Residual"], mid
        assert a["df"].tolist() == [2, 1, 1, 2, a["df"].iloc[-1]]
        assert a["method"].str.contains("R term order").all()
        # interaction SS after luminance: the same as in the full model fitted with luminance entered first
        im = project.measures["study2_images"]
        sub = im[im["valid"] & (im["gender"] == mid.split("_")[0])]
        _, fit_small = ols("score ~ C(race) + C(hair) + luminance", sub, model="s")
        _, fit_full = ols("score ~ C(race) * C(hair) + luminance", sub, model="f")
        ss_int = float(fit_small.ssr - fit_full.ssr)
        assert np.isclose(a.set_index("term").loc["race:hair", "sum_sq"], ss_int, rtol=1e-8)
    assert set(project.values["study2"]["men_anova"]) == {"race", "hair", "luminance", "race_x_hair"}
