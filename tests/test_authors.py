"""The authors' analyses ledger: R-ordered lm/ANOVA helpers, the adapter of the authors' scraped-faces
files, the analysis on synthetic files, and (with the released data) the R reference values.

R reference: ``tests/reference/authors_lm.R`` (run with ``Rscript tests/reference/authors_lm.R
$DISCBIAS_DATA_MIRROR > tests/reference/authors_lm_output.csv``); the tests do not need R.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from discbias.stats.anova import lm_anova, r_terms
from discbias.studies.grissom2024 import read_authors_faces
from discbias.studies.validation import CsvFormatError, DataValidationError

REF = Path(__file__).parent / "reference" / "authors_lm_output.csv"


def _unbalanced(seed=0, n=90):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"race": rng.choice(["asian", "black", "white"], n, p=[0.2, 0.3, 0.5]),
                      "hair": rng.choice(["long", "short"], n, p=[0.3, 0.7]), "lum": rng.uniform(0, 1, n)})
    d["y"] = 100 + 10 * (d.race == "black") + 5 * (d.hair == "short") + 40 * d.lum + rng.normal(0, 5, n)
    return d


# ---------------------------------------------------------------- helpers


def test_r_terms_orders_main_effects_before_interactions():
    assert r_terms("race * hair + lum") == ["race", "hair", "lum", "race:hair"]
    assert r_terms("lum + race:hair + race") == ["lum", "race", "race:hair"]
    with pytest.raises(ValueError, match="unsupported term"):
        r_terms("log(x) + y")


def test_type1_follows_r_order_not_patsy_order():
    d = _unbalanced()
    _, an = lm_anova("y ~ race * hair + lum", d, model="m")
    t1 = an[an.anova_type == 1].set_index("term")
    assert list(t1.index) == ["race", "hair", "lum", "race:hair", "Residual"]
    # patsy puts race:hair before lum: statsmodels' sequential SS for lum then differ from R's
    sm_tab = sm.stats.anova_lm(smf.ols("y ~ C(race) * C(hair) + lum", d).fit(), typ=1)
    assert list(sm_tab.index) == ["C(race)", "C(hair)", "C(race):C(hair)", "lum", "Residual"]
    assert not np.isclose(t1.loc["lum", "sum_sq"], sm_tab.loc["lum", "sum_sq"])
    # fitting the terms in R's order by hand (additive model first) gives the same sequential SS
    add = sm.stats.anova_lm(smf.ols("y ~ C(race) + C(hair) + lum", d).fit(), typ=1)
    np.testing.assert_allclose(t1.loc[["race", "hair", "lum"], "sum_sq"], add.loc[["C(race)", "C(hair)", "lum"], "sum_sq"],
                               rtol=1e-10)
    # type I sums of squares add up to the centred total sum of squares
    tss = float(((d.y - d.y.mean()) ** 2).sum())
    assert t1["sum_sq"].sum() == pytest.approx(tss, rel=1e-10)


def test_type2_matches_statsmodels_and_type1_for_the_last_term():
    d = _unbalanced(1)
    coef, an = lm_anova("y ~ race * hair + lum", d, model="m")
    t1, t2 = (an[an.anova_type == k].set_index("term") for k in (1, 2))
    ref = sm.stats.anova_lm(smf.ols("y ~ C(race) * C(hair) + lum", d).fit(), typ=2)
    ref = ref.rename(index={"C(race)": "race", "C(hair)": "hair", "C(race):C(hair)": "race:hair"})
    for term in ("race", "hair", "lum", "race:hair", "Residual"):
        assert t2.loc[term, "sum_sq"] == pytest.approx(ref.loc[term, "sum_sq"], rel=1e-8)
        assert t2.loc[term, "df"] == ref.loc[term, "df"]
    assert t2.loc["race", "statistic"] == pytest.approx(ref.loc["race", "F"], rel=1e-8)
    # the highest-order term is adjusted for everything in both types
    assert t1.loc["race:hair", "sum_sq"] == pytest.approx(t2.loc["race:hair", "sum_sq"], rel=1e-10)
    # unbalanced: type I and II differ for a main effect
    assert not np.isclose(t1.loc["race", "sum_sq"], t2.loc["race", "sum_sq"])
    # R's coefficient names
    assert coef["r_term"].tolist() == ["(Intercept)", "raceblack", "racewhite", "hairshort", "lum",
                                       "raceblack:hairshort", "racewhite:hairshort"]
    assert coef.set_index("r_term").loc["raceblack:hairshort", "term"] == "race[black]:hair[short]"


def test_balanced_design_without_covariate_gives_equal_types():
    d = pd.DataFrame({"a": np.repeat(["p", "q", "r"], 8), "b": np.tile(np.repeat(["u", "v"], 4), 3)})
    d["y"] = np.arange(24) % 7 + (d.a == "q") * 3.0
    _, an = lm_anova("y ~ a * b", d, model="bal")
    t1, t2 = (an[an.anova_type == k].set_index("term") for k in (1, 2))
    np.testing.assert_allclose(t1["sum_sq"], t2["sum_sq"], rtol=1e-10)


def test_rank_deficient_design_is_reported_and_aliased_term_has_no_df():
    d = _unbalanced(2)
    d["lum2"] = 2 * d["lum"]
    _, an = lm_anova("y ~ race + lum + lum2", d, model="rd")
    t1 = an[an.anova_type == 1].set_index("term")
    assert t1.loc["lum2", "df"] == 0 and np.isnan(t1.loc["lum2", "statistic"])
    assert "rank-deficient" in t1.loc["race", "warnings"]


def test_missing_column_and_missing_values_are_explicit():
    d = _unbalanced(3)
    with pytest.raises(KeyError, match="nope"):
        lm_anova("y ~ nope", d, model="x")
    d.loc[0, "lum"] = np.nan
    coef, _ = lm_anova("y ~ race + lum", d, model="x")
    assert coef["n_obs"].iloc[0] == len(d) - 1
    assert "1 row dropped" in coef["warnings"].iloc[0]


# ---------------------------------------------------------------- adapter

HEADER = ",discriminator_score,image,race,hair_length,red_mean,green_mean,blue_mean,luminance\n"


def test_adapter_reports_bad_values_with_line_and_keeps_rows():
    csv = HEADER + ("0,150,a/AsianMenLongHair/1.png,asian,long,100,100,100,0.4\n"
                    "1,abc,a/BlackMenShortHair/2.png,black,short,100,100,100,0.4\n"
                    "2,140,a/WhiteMenShortHair/3.png,purple,short,300,100,100,1.4\n"
                    "3,141,a/WhiteMenShortHair/3.png,white,long,100,100,100,0.4\n")
    r = read_authors_faces(io.StringIO(csv), on_invalid="report", expected_rows=5)
    t, iss = r.tables["authors_faces"], r.issues
    assert len(t) == 4 and t["valid"].tolist() == [True, False, False, False]
    problems = set(zip(iss["line"], iss["column"]))
    assert {(3, "discriminator_score"), (4, "race"), (4, "red_mean"), (4, "luminance"), (4, "image"), (5, "image"),
            (0, "<file>")} <= problems
    assert any("folder says white/short" in p for p in iss["problem"])  # line 5: folder vs hair_length column
    with pytest.raises(DataValidationError, match="line 3"):
        read_authors_faces(io.StringIO(csv), on_invalid="error")


def test_adapter_names_missing_columns():
    with pytest.raises(CsvFormatError, match="luminance"):
        read_authors_faces(io.StringIO(",discriminator_score,image,race,hair_length,red_mean,green_mean,blue_mean\n"))


# ---------------------------------------------------------------- analysis on synthetic files


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from discbias.analyses import authors, study2
    from discbias.config import load_config
    from discbias.paths import ProjectPaths
    from discbias.pipeline import FitContext, MeasureContext
    from discbias.studies.synthetic import make_synthetic_study

    root = tmp_path_factory.mktemp("authors")
    cfg_path = make_synthetic_study(root, n_ffhq=300, n_per_cell=12)
    cfg = load_config(cfg_path)
    paths = ProjectPaths(root)
    paths.raw.mkdir(parents=True)
    for src in cfg.sources.values():
        if (root / "mirror" / src.file).exists():
            shutil.copy(root / "mirror" / src.file, paths.raw / src.file)
    m = MeasureContext(cfg, paths, "report")
    meas, issues = {}, []
    for a in (study2, authors):
        t, i = a.measure(m)
        meas.update(t)
        issues.append(i)
    ctx = FitContext(cfg, paths, meas)
    study2.fit(ctx)
    authors.fit(ctx)
    return ctx, pd.concat(issues)


def test_analysis_writes_paper_anovas_models_and_ledger(fitted):
    ctx, issues = fitted
    assert issues.empty
    an = ctx.results["authors_anova"]
    for g in ("men", "women"):
        a = an[an.model == f"{g}_anova_paper"]
        assert a["term"].tolist() == ["race", "hair_length", "luminance", "race:hair_length", "Residual"]
        assert (a["anova_type"] == 1).all() and a["statistic"].iloc[:4].gt(0).all()
        assert (an.model == f"{g}_anova_paper_type2").sum() == 5
    ids = {m["model"] for m in ctx.models}
    for g in ("men", "women"):
        assert {f"{g}_lm_race", f"{g}_lm_race_lum", f"{g}_lm_race_hair", f"{g}_lm_race_hair_lum",
                f"{g}_anova_paper", f"{g}_lm_race_hair_lum_hc3"} <= ids
    led = ctx.results["authors_ledger"]
    need = {"script", "model_authors", "data_file", "n", "status", "our_model", "matched", "differs"}
    assert need <= set(led.columns)
    assert {"re-estimated", "mapped", "approximated", "not re-runnable"} <= set(led["status"])
    assert led.loc[led.script == "robust_linreg.R", "status"].item() == "not re-runnable"
    men = led[led.script == "AtypicalFacePlotCode.R"]
    assert len(men) == 4 and (men["n"] == ctx.values["authors"]["files"]["men"]["n"]).all()
    # synthetic files are not the bytes the R reference was computed on: said, not compared
    assert ctx.values["authors"]["reference"]["n_values"] == 0
    assert "other file bytes" in ctx.values["authors"]["reference"]["note"] or "no R reference" in \
        ctx.values["authors"]["reference"]["note"]
    # the tree script re-run as written
    tr = ctx.results["authors_python"]
    assert "authors_tree_unshuffled" in set(tr["model"])
    # women's pooled prompts are counted per folder
    assert "black_locs" in ctx.values["authors"]["files"]["women"]["prompts"]


# ---------------------------------------------------------------- real data vs R


def test_authors_models_match_r_reference_to_4_digits(real_mirror, real_config):
    from discbias.analyses.authors import LM_VARIANTS, Y, reference_differences
    from discbias.fetch import sha256_file

    ref = pd.read_csv(REF, dtype={"term": str})
    coefs, anovas = [], []
    for g, f in (("men", "AtypicalFaceData.csv"), ("women", "WomenFaceData.csv")):
        assert ref.loc[ref.file == f, "data_sha256"].eq(sha256_file(real_mirror / f)).all()
        t = read_authors_faces(real_mirror / f, expected_rows=real_config.sources[
            "atypical_men" if g == "men" else "women"].rows).tables["authors_faces"]
        d = t[t.valid].rename(columns={"score": Y})
        specs = [(f"{g}_{v}", f"{Y} ~ {rhs}") for v, rhs in LM_VARIANTS]
        if g == "men":
            specs.append(("men_lm_rgb_race_hair", f"{Y} ~ red_mean + green_mean + blue_mean + race + hair_length"))
        for mid, formula in specs:
            c, a = lm_anova(formula, d, model=mid)
            a["lm_model"] = mid
            coefs.append(c)
            anovas.append(a)
    diffs = reference_differences(pd.concat(coefs), pd.concat(anovas), ref)
    assert len(diffs) == ref[["estimate", "std_error", "statistic", "p_value", "df", "sum_sq"]].notna().sum().sum()
    assert diffs["ours"].notna().all()
    worst = diffs.sort_values("rel_diff").iloc[-1]
    assert worst["rel_diff"] < 5e-5, f"{worst.to_dict()}"
    # the paper's ANOVAs: n and residual df as R prints them
    men = ref[(ref.model == "men_lm_race_hair_lum") & (ref.table == "anova_type1")].set_index("term")
    assert men.loc["Residuals", "df"] == 593 and ref.loc[ref.model == "women_lm_race", "n_obs"].iloc[0] == 3295


def test_without_the_authors_files_the_ledger_says_so(fitted, tmp_path):
    from discbias.analyses import authors
    from discbias.config import load_config
    from discbias.pipeline import FitContext

    ctx, _ = fitted
    text = "\n".join(line for line in ctx.config.path.read_text().splitlines() if not line.startswith("authors_"))
    (tmp_path / "no_authors.toml").write_text(text)
    cfg = load_config(tmp_path / "no_authors.toml")
    measures = {k: v for k, v in ctx.measures.items() if not k.startswith("authors_")}
    c2 = FitContext(cfg, ctx.paths, measures, results={k: v for k, v in ctx.results.items()
                                                       if not k.startswith("authors_")})
    authors.fit(c2)
    led = c2.results["authors_ledger"]
    rows = led[led.script.isin(["AtypicalFacePlotCode.R", "woman_atypical_dist_plot.R"])]
    assert len(rows) == 2 and (rows["status"] == "not re-runnable").all() and not rows["data_available"].any()
    assert rows["differs"].str.contains("role authors_").all()
    assert "authors_anova" not in c2.results and c2.values["authors"]["files"] == {}
