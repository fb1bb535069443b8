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
    t["r_hat"], t["ess_bulk"], t["ess_tail"], t["divergences"] = 1.0, 1000.0, 1000.0, 0
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
    claims = evaluate_claims(project).set_index("claim_id")
    for cid in ("S2-red", "S2-femininity", "S2-hair", "S2-skintone"):
        assert claims.loc[cid, "verdict"] != "not yet estimated", cid
    assert claims.loc["S2-red", "source"].startswith("models_rgb_bayes")
    # simulated hair effect is -2.5 per point and clearly estimated
    assert claims.loc["S2-hair", "verdict"] == "reproduced"
    assert "centred spec" in claims.loc["S2-hair", "source"]


def test_elicited_claim_downgrades_when_centred_spec_disagrees():
    def res(paper, centred):
        rows = [dict(model=m, term="femininity_mean", estimate=e, conf_low=lo, conf_high=hi, divergences=0)
                for m, (e, lo, hi) in (("elicited_bayes", paper), ("elicited_bayes_centred", centred),
                                       ("elicited_ols", centred))]
        return {"models_elicited": pd.DataFrame(rows)}

    ev = study2._elicited_claim("femininity_mean", +1)
    assert ev(res((2.4, 0.5, 4.0), (2.0, 0.4, 3.9))).verdict == "reproduced"
    e = ev(res((2.4, 0.5, 4.0), (0.2, -2.0, 2.5)))
    assert e.verdict == "inconclusive" and "does not survive centring" in e.source
    assert ev(res((-2.4, -4.0, -0.5), (-2.0, -3.9, -0.4))).verdict == "not reproduced"
    assert ev({}) is None
