"""Fast checks of `discbias bundle` / `verify` on a small hand-made build (no pipeline run)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from discbias.cli import main
from discbias.config import ConfigError, load_config
from discbias.reproduce import BundleError, Tolerances, read_bundle
from discbias.reproduce.verify import cell_tolerance, compare_table

CONFIG = """[study]
id = "{id}"
title = "Tiny"
[sources.a]
file = "a.csv"
sha256 = "00"
"""


def _results(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ols = pd.DataFrame(dict(model="ols", term=["Intercept", "x"], estimate=[1.5, -0.25], std_error=[0.1, 0.05],
                            p_value=[1e-8, 0.02], method="OLS", converged=True, warnings=""))
    bayes = pd.DataFrame(dict(model="bayes", term=["Intercept", "x"], estimate=[1.5, -0.25] + rng.normal(0, 0.001, 2),
                              std_error=[0.1, 0.05], conf_low=[1.3, -0.35], conf_high=[1.7, -0.15],
                              method=f"Bayesian regression (posterior mean, 95% HDI); NUTS (nutpie), seed {seed}",
                              r_hat=1.0 + rng.uniform(0, 0.01, 2), mcse_mean=0.002, mcse_sd=0.002, mcse_conf_low=0.004,
                              mcse_conf_high=0.004, prob_positive=[1.0, 0.0]))
    boot = pd.DataFrame(dict(model="vc", term=["share(cell)"], estimate=[0.3], std_error=[0.05],
                             conf_low=[0.2 + rng.normal(0, 0.002)], conf_high=[0.4], conf_level=0.95,
                             method="parametric bootstrap percentile CI, 100 replicates", n_boot=100))
    claims = pd.DataFrame(dict(claim_id=["C1", "C2"], description=["x matters", "y matters"],
                               estimate=[bayes.loc[1, "estimate"], 0.5], verdict=["reproduced", "inconclusive"]))
    prov = pd.DataFrame(dict(source=["a"], file=["a.csv"], sha256=["00"]))
    return dict(models_ols=ols, models_bayes=bayes, models_vc=boot, claims=claims, provenance=prov)


def _build(root: Path, study: str = "tiny", seed: int = 0) -> Path:
    cfg = root / "analysis" / "tiny.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(CONFIG.format(id=study))
    res = root / "build" / "results"
    res.mkdir(parents=True, exist_ok=True)
    tables = _results(seed)
    for name, df in tables.items():
        df.to_csv(res / f"{name}.csv", index=False)
    values = {"meta": {"study_id": study, "fit_seconds": {"a": float(seed) + 1.0}},
              "bayes_x": float(tables["models_bayes"].loc[1, "estimate"]), "n": 10}
    (root / "build" / "values.json").write_text(json.dumps(values))
    (root / "build" / "report").mkdir(exist_ok=True)
    (root / "build" / "report" / "paper.html").write_text("<html>paper</html>")
    (root / "build" / "report" / "paper.pdf").write_bytes(b"%PDF-1.7 paper")
    (root / "report").mkdir(exist_ok=True)
    (root / "report" / "paper.qmd.j2").write_text("template")
    return cfg


def _edited_build(root: Path, table: str, column: str, row: int, value) -> Path:
    """A second build of the tiny study with one cell of one results table changed; returns build/."""
    _build(root)
    path = root / "build" / "results" / f"{table}.csv"
    t = pd.read_csv(path)
    t.loc[row, column] = value
    t.to_csv(path, index=False)
    return root / "build"


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCBIAS_TEMPLATES", str(tmp_path / "report"))
    cfg = _build(tmp_path)
    out = tmp_path / "tiny.zip"
    assert main(["bundle", "--config", str(cfg), "--root", str(tmp_path), "--out", str(out)]) == 0
    return tmp_path, cfg, out


def _verify(root, cfg, zp, build=None):
    return main(["verify", str(zp), "--config", str(cfg), "--root", str(root),
                 *(["--build", str(build)] if build else [])])


def test_bundle_verifies_against_itself_and_a_reseeded_build(tiny, tmp_path):
    root, cfg, zp = tiny
    assert _verify(root, cfg, zp) == 0
    md = (root / "build" / "verify" / "report.md").read_text()
    assert "**MATCH**" in md
    # another seed: posterior rows and the claim that copies one move within tolerance; still a match
    other = tmp_path / "other"
    _build(other, seed=1)
    assert _verify(root, cfg, zp, other / "build") == 0
    summary = pd.read_csv(root / "build" / "verify" / "tables.csv").set_index("table")
    assert summary.loc["models_bayes", "posterior"] == 2 and summary.loc["models_vc", "bootstrap"] == 1
    assert summary.loc["models_ols", "deterministic"] == 2


def test_changed_number_is_exit_1_with_the_row_named(tiny, tmp_path, capsys):
    root, cfg, zp = tiny
    assert _verify(root, cfg, zp, _edited_build(tmp_path / "other", "models_ols", "estimate", 1, -0.2500001)) == 1
    assert "models_ols [ols / x] estimate" in capsys.readouterr().err
    d = pd.read_csv(root / "build" / "verify" / "differences.csv")
    assert d[["table", "key", "column"]].values.tolist() == [["models_ols", "ols / x", "estimate"]]
    assert d.loc[0, "tolerance"] == pytest.approx(0.25e-9)


def test_flipped_verdict_is_reported_first(tiny, tmp_path):
    root, cfg, zp = tiny
    assert _verify(root, cfg, zp, _edited_build(tmp_path / "other", "claims", "verdict", 1, "reproduced")) == 1
    md = (root / "build" / "verify" / "report.md").read_text()
    assert md.index("## Claims whose verdict changed") < md.index("| C2 |") < md.index("## Environment") < md.index("## Tables")


def test_missing_and_extra_rows_and_tables(tiny, tmp_path):
    root, cfg, zp = tiny
    other = _edited_build(tmp_path / "other", "models_ols", "term", 1, "z")
    (other / "results" / "models_vc.csv").unlink()
    assert _verify(root, cfg, zp, other) == 1
    s = pd.read_csv(root / "build" / "verify" / "tables.csv").set_index("table")
    assert (s.loc["models_ols", ["matched", "missing", "extra"]] == [1, 1, 1]).all()
    assert s.loc["models_vc", "missing"] == 1 and "missing from the rebuild" in s.loc["models_vc", "notes"]


def test_tampered_unlisted_foreign_and_unreadable_bundles(tiny, tmp_path, capsys):
    root, cfg, zp = tiny
    for change, expect in (("modify", "results/models_ols.csv was modified"),
                           ("add", "extra.txt is not in the manifest"),
                           ("drop", "results/claims.csv is listed in the manifest but missing")):
        bad = tmp_path / f"{change}.zip"
        with zipfile.ZipFile(zp) as src, zipfile.ZipFile(bad, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if change == "modify" and info.filename == "results/models_ols.csv":
                    data = data.replace(b"1.5", b"1.6")
                if change == "drop" and info.filename == "results/claims.csv":
                    continue
                dst.writestr(info, data)
            if change == "add":
                dst.writestr("extra.txt", "x")
        with pytest.raises(BundleError, match=expect):
            read_bundle(bad)
        assert _verify(root, cfg, bad) == 2
        err = capsys.readouterr().err
        assert expect in err and len(err.strip().splitlines()) == 1
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    assert _verify(root, cfg, tmp_path / "junk.zip") == 2
    foreign = tmp_path / "foreign.toml"
    foreign.write_text(CONFIG.format(id="other-study"))
    assert _verify(root, foreign, zp) == 2
    assert "from study 'tiny'" in capsys.readouterr().err


def test_bundle_refuses_an_incomplete_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCBIAS_TEMPLATES", str(tmp_path / "report"))
    cfg = _build(tmp_path)
    (tmp_path / "build" / "report" / "paper.pdf").unlink()
    assert main(["bundle", "--config", str(cfg), "--root", str(tmp_path)]) == 2
    assert "paper.pdf is missing: run `discbias report --config" in capsys.readouterr().err


def test_tolerance_rules():
    tol = Tolerances()
    row = pd.Series(dict(estimate=0.3, std_error=0.05, conf_low=0.2, conf_level=0.95, n_boot=100))
    atol, rule = cell_tolerance("bootstrap", "conf_low", row, row, tol)
    # 5 * sqrt(2) * 0.05 * sqrt(.025 * .975 / 100) / phi(1.96)
    assert atol == pytest.approx(5 * 2 ** 0.5 * 0.05 * (0.025 * 0.975 / 100) ** 0.5 / 0.05844, rel=1e-3)
    assert cell_tolerance("bootstrap", "estimate", row, row, tol) == (None, "deterministic")
    post = pd.Series(dict(estimate=1.0, mcse_mean=0.01, r_hat=1.02))
    assert cell_tolerance("posterior", "r_hat", post, post, tol) is None
    a = pd.DataFrame(dict(model="m", term=["x"], estimate=[1.0], mcse_mean=[0.01], method="posterior mean"))
    s, d = compare_table("t", a, a.assign(estimate=1.0 + 0.06), tol)   # 0.06 < 5 * 0.01 * sqrt 2
    assert s["matched"] == 1
    s, d = compare_table("t", a, a.assign(estimate=1.0 + 0.08), tol)
    assert s["differing"] == 1 and d[0]["rule"] == "5 x MCSE (mcse_mean)"
    # text describing posterior summaries is compared with its printed numbers masked; other text exactly
    c = pd.DataFrame(dict(claim_id=["C1"], source=["posterior mean +1.23 [0.50, 2.00]"]))
    assert compare_table("claims", c, c.assign(source="posterior mean +1.25 [0.41, 2.10]; 1 divergent transitions"),
                         tol)[0]["matched"] == 1
    c = pd.DataFrame(dict(claim_id=["C1"], source=["OLS +1.23 [0.50, 2.00]"]))
    assert compare_table("claims", c, c.assign(source="OLS +1.25 [0.50, 2.00]"), tol)[0]["differing"] == 1
    # timings are never compared; any other column is
    m = pd.DataFrame(dict(model=["m"], method="OLS", n_obs=[10], sampling_seconds=[1.5]))
    assert compare_table("models", m, m.assign(sampling_seconds=9.0), tol)[0]["matched"] == 1
    assert compare_table("models", m, m.assign(n_obs=11), tol)[0]["differing"] == 1


def test_iterative_fits_and_p_values_get_tolerances_from_their_numerics():
    """Another BLAS kernel moves a REML fit within its optimiser's tolerance (5e-9 to 1.5e-5 relative was seen):
    iterative rows are compared at rtol_iterative, closed-form rows still at rtol; p-values on the
    log scale, so a tail p-value moves with its statistic."""
    tol = Tolerances()
    mixed = pd.DataFrame(dict(model="mx", term=["x"], estimate=[-0.16593733125876076], conf_low=[-0.2],
                              p_value=[1e-150], method="linear mixed model, random intercept for cell (REML; Satterthwaite df)"))
    moved = mixed.assign(estimate=-0.16593733204565692, p_value=1.0000004e-150)  # 5e-9 and 4e-7 relative
    s, d = compare_table("models", mixed, moved, tol)
    assert s["iterative"] == 1 and s["matched"] == 1, d
    s, d = compare_table("models", mixed, mixed.assign(estimate=-0.1670), tol)  # 6e-3 relative: a real change
    assert s["differing"] == 1 and d[0]["kind"] == "iterative" and "rtol_iterative" in d[0]["rule"]
    ols = mixed.assign(method="OLS (lm)")
    assert compare_table("models", ols, moved.assign(method="OLS (lm)"), tol)[0]["differing"] == 1
    # a deterministic tail p-value: log-scale bound 2 * 1e-9 * |log p| + 1e-9 (7e-7 relative at 1e-150)
    p = pd.DataFrame(dict(model="m", term=["x"], p_value=[1e-150], method="OLS"))
    assert compare_table("t", p, p.assign(p_value=1.0000001e-150), tol)[0]["matched"] == 1
    assert compare_table("t", p, p.assign(p_value=1.00001e-150), tol)[0]["differing"] == 1
    # a posterior number that moved is reported with the number of combined MCSEs it moved by
    post = pd.DataFrame(dict(model="m", term=["x"], estimate=[1.0], mcse_mean=[0.01], method="posterior mean"))
    s, d = compare_table("t", post, post.assign(estimate=1.0 + 0.1, mcse_mean=0.01), tol)
    assert d[0]["mcse_multiple"] == pytest.approx(0.1 / (0.01 * 2 ** 0.5))


def test_iterative_tolerance_is_on_the_fits_scale_and_df_and_copies_get_theirs():
    """Found by rebuilding under another BLAS kernel: a variance component at its boundary (1e-11 vs
    1e-13) moves by the optimiser's tolerance on the fit's scale, not its own; Satterthwaite df from
    numerical derivatives move 1.8e-6 relative; a bootstrap row's REML estimate is an iterative
    result; values.json copies inherit the cell's tolerance and its MCSEs are not compared."""
    from discbias.reproduce.verify import compare_values, _inherited_index

    tol = Tolerances()
    method = "REML nested variance components; parametric bootstrap percentile CI, 30 replicates"
    vc = pd.DataFrame(dict(model="vc", term=["var(cell)", "var(residual)"], estimate=[1.4e-11, 3.8276919],
                           std_error=[0.01, 0.2], n_boot=30, method=method))
    moved = vc.assign(estimate=[9.4e-14, 3.8276920])
    s, d = compare_table("models_variance_components", vc, moved, tol)
    assert s["matched"] == 2, d
    # a real change of the boundary variance (1e-2, above 1e-4 x 3.83) is still found
    s, d = compare_table("models_variance_components", vc, vc.assign(estimate=[1e-2, 3.8276919]), tol)
    assert s["differing"] == 1 and "fit's scale" in d[0]["rule"], d
    # degrees of freedom from numerical derivatives: 1.1e-4 relative passes, 1e-2 does not
    df = pd.DataFrame(dict(model="mx", term=["x"], estimate=[1.0], df=[14.632724], method="linear mixed model (REML; Satterthwaite df)"))
    assert compare_table("m", df, df.assign(df=14.631044), tol)[0]["matched"] == 1
    s, d = compare_table("m", df, df.assign(df=14.78), tol)
    assert s["differing"] == 1 and "rtol_derived" in d[0]["rule"]
    # values.json: a copy of the boundary variance inherits the fit's tolerance; MCSEs are diagnostics
    inherited = _inherited_index({"models_variance_components": vc}, {"models_variance_components": moved}, tol)
    a = {"models": {"vc": {"cell": 1.4e-11}}, "claims": {"c": {"mcse_low": 0.149}}}
    b = {"models": {"vc": {"cell": 9.4e-14}}, "claims": {"c": {"mcse_low": 0.239}}}
    s, d = compare_values(a, b, tol, inherited)
    assert s["differing"] == 0 and s["compared"] == 1, d


def test_decisions_at_a_boundary_are_listed_not_counted():
    """Seen on the released data under another BLAS kernel: a specification whose interval bound sits
    within its Monte Carlo error of 0 changes its outcome (and its claim's tally), and a psens
    diagnosis flips at its 0.05 threshold. Two correct builds can decide either way: verify lists
    them as at a decision boundary and still exits 0; the same flip far from the threshold counts."""
    from discbias.reproduce.verify import VerifyResult, boundary_reason, _inherited_index

    tol = Tolerances()
    spec = pd.DataFrame(dict(claim_id=["C1"], specification=["paper"], estimate=[-1.9], conf_low=[-3.8],
                             conf_high=[0.02], mcse_conf_high=[0.03], outcome=["includes 0"], supports=[False],
                             method="Bayesian model (posterior mean, 95% HDI)"))
    spec_b = spec.assign(conf_high=-0.01, outcome="supports", supports=True)
    ta, tb = {"claims_specifications": spec}, {"claims_specifications": spec_b}
    inh = _inherited_index(ta, tb, tol)
    d = dict(table="claims_specifications", key="C1 / paper", column="outcome")
    assert "conf_high" in boundary_reason(d, ta, tb, tol, inh)
    claims = dict(table="values.json", key="claims.C1.n_supporting", column="value")
    assert boundary_reason(claims, ta, tb, tol, inh)
    far = {"claims_specifications": spec.assign(conf_high=2.0, mcse_conf_high=0.03)}
    far_b = {"claims_specifications": spec_b.assign(conf_high=-2.0, mcse_conf_high=0.03)}
    assert boundary_reason(d, far, far_b, tol, _inherited_index(far, far_b, tol)) == ""
    ps = pd.DataFrame(dict(model="m", term=["x"], prior_sensitivity=[0.08], likelihood_sensitivity=[0.049],
                           mcse_prior_sensitivity=[0.004], mcse_likelihood_sensitivity=[0.003],
                           diagnosis=["strong prior / weak likelihood"], method="ArviZ psens"))
    pb = ps.assign(likelihood_sensitivity=0.052, diagnosis="prior-data conflict")
    dp = dict(table="models_psens", key="m / x", column="diagnosis")
    assert "likelihood_sensitivity" in boundary_reason(dp, {"models_psens": ps}, {"models_psens": pb}, tol, {})
    empty = pd.DataFrame()
    r = VerifyResult(tables=empty, differences=empty, environment=empty, info={},
                     verdicts=pd.DataFrame(dict(claim_id=["C1"], at_boundary=["paper: conf_high ..."])))
    assert r.exit_code == 0
    r = VerifyResult(tables=empty, differences=empty, environment=empty, info={},
                     verdicts=pd.DataFrame(dict(claim_id=["C1"], at_boundary=[""])))
    assert r.exit_code == 1


def test_tolerances_from_config(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(CONFIG.format(id="t") + "[verify]\nrtol = 1e-6\n[verify.tables.models_ols]\natol = 0.5\n")
    t = Tolerances.from_config(load_config(p))
    assert t.rtol == 1e-6 and t.for_table("models_ols").atol == 0.5 and t.for_table("x").atol == 1e-12
    p.write_text(CONFIG.format(id="t") + "[verify]\nrtoll = 1e-6\n")
    with pytest.raises(ConfigError, match="unknown key 'rtoll'"):
        Tolerances.from_config(load_config(p))
    p.write_text(CONFIG.format(id="t") + "[verify]\nposterior_k = -1\n")
    with pytest.raises(ConfigError, match=r"\[verify\] posterior_k: must be > 0"):
        Tolerances.from_config(load_config(p))


def test_citation_cff_is_valid_yaml_with_the_project_version():
    import tomllib

    import yaml

    repo = Path(__file__).resolve().parents[1]
    cff = yaml.safe_load((repo / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] and cff["authors"] and cff["message"]
    assert cff["version"] == tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]


def test_bundle_is_named_after_the_commit_that_fitted_the_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCBIAS_TEMPLATES", str(tmp_path / "report"))
    cfg = _build(tmp_path)
    values = json.loads((tmp_path / "build" / "values.json").read_text())
    values["meta"]["code_commit"] = {"commit": "f" * 40, "dirty": False}
    (tmp_path / "build" / "values.json").write_text(json.dumps(values))
    assert main(["bundle", "--config", str(cfg), "--root", str(tmp_path)]) == 0
    zp = tmp_path / "build" / "bundle" / "tiny-fffffff.zip"
    meta = read_bundle(zp).meta
    assert meta["commit"] == "f" * 40 and meta["dirty"] is False
    assert "fitted at commit fffffff" in capsys.readouterr().err  # the code (this checkout) is elsewhere
