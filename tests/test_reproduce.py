"""`discbias bundle` and `discbias verify` on a synthetic-study build: self-match, a changed
estimate, a flipped verdict, a tampered bundle, another study, and a rebuild with another MCMC seed."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from discbias.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundled(synthetic_build, synthetic_study):
    """The session's synthetic-study build (conftest) and its bundle."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DISCBIAS_TEMPLATES", str(REPO / "report"))
    root = synthetic_build
    try:
        assert main(["bundle", "--config", str(synthetic_study), "--root", str(root)]) == 0
    finally:
        mp.undo()
    zips = list((root / "build" / "bundle").glob("synthetic-*.zip"))
    assert len(zips) == 1
    return root, synthetic_study, zips[0]


def _verify(bundled, build: Path, capsys, *extra) -> tuple[int, str, str]:
    root, cfg, zp = bundled
    out = build.parent / f"verify-{build.name}"
    code = main(["verify", str(zp), "--config", str(cfg), "--root", str(root), "--build", str(build),
                 "--out", str(out), *extra])
    err = capsys.readouterr().err
    md = (out / "report.md").read_text() if (out / "report.md").exists() else ""
    return code, md, err


def _copy_build(root: Path, name: str) -> Path:
    dest = root / name / "build"
    if dest.parent.exists():
        shutil.rmtree(dest.parent)
    dest.mkdir(parents=True)
    shutil.copytree(root / "build" / "results", dest / "results")
    shutil.copyfile(root / "build" / "values.json", dest / "values.json")
    return dest


@pytest.mark.slow
def test_bundle_contents(bundled):
    from packaging.requirements import Requirement

    from discbias.reproduce import read_bundle

    root, cfg, zp = bundled
    b = read_bundle(zp)
    names = set(b.files)
    results = {f"results/{p.name}" for p in (root / "build" / "results").glob("*.csv")}
    assert results <= names and "results/claims.csv" in names and "results/provenance.csv" in names
    assert {"values.json", "report/paper.html", "report/paper.pdf", "config/synthetic.toml",
            "environment/requirements.txt", "ro-crate-metadata.json", "manifest-sha256.txt", "bundle.json"} <= names
    assert b.meta["study_id"] == "synthetic" and len(b.meta["templates_sha256"]) == 64
    assert b.meta["commit"] is None or zp.name == f"synthetic-{b.meta['commit'][:7]}.zip"
    # the lock is what `pip install -r` reads: requirement lines and comments only, with pins
    lock = b.files["environment/requirements.txt"].decode().splitlines()
    reqs = [Requirement(line) for line in lock if line and not line.startswith(("#", "--extra-index-url https://"))]
    assert {r.name.lower() for r in reqs} >= {"numpy", "pandas", "pymc", "arviz"}
    assert all(str(r.specifier).startswith("==") for r in reqs)
    # RO-Crate: every file described, the paper as the main entity
    crate = json.loads(b.files["ro-crate-metadata.json"])
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert graph["./"]["mainEntity"] == {"@id": "report/paper.pdf"}
    assert {p["@id"] for p in graph["./"]["hasPart"]} >= results | {"values.json", "report/paper.html"}
    assert graph["results/claims.csv"]["encodingFormat"] == "text/csv"
    # Bayesian rows carry their MCSE, bootstrap rows their n_boot
    bayes = b.tables()["models_rgb_bayes"]
    assert (bayes["mcse_mean"] > 0).all() and (bayes["mcse_conf_low"] > 0).all()


@pytest.mark.slow
def test_verify_self_match_then_a_changed_estimate_and_a_flipped_verdict(bundled, capsys):
    root, cfg, zp = bundled
    code, md, err = _verify(bundled, root / "build", capsys)
    assert code == 0, err
    assert "**MATCH**" in md and (root / "verify-build" / "report.html").exists()
    summary = pd.read_csv(root / "verify-build" / "tables.csv")
    assert (summary["matched"] == summary["compared"]).all() and summary["compared"].sum() > 100
    assert (summary[["posterior", "bootstrap", "deterministic"]].sum() > 0).all()

    # one deterministic estimate changed and one verdict flipped: exit 1, the row named, the
    # verdict reported first (the claim's row in claims.csv is the only other difference)
    b2 = _copy_build(root, "changed")
    name = "study2_rgb_ols"
    t = pd.read_csv(b2 / "results" / f"{name}.csv")
    t.loc[1, "estimate"] = t.loc[1, "estimate"] * (1 + 1e-6)
    t.to_csv(b2 / "results" / f"{name}.csv", index=False)
    claims = pd.read_csv(b2 / "results" / "claims.csv")
    cid = claims.loc[0, "claim_id"]
    claims.loc[0, "verdict"] = "not reproduced" if claims.loc[0, "verdict"] != "not reproduced" else "reproduced"
    claims.to_csv(b2 / "results" / "claims.csv", index=False)
    code, md, err = _verify(bundled, b2, capsys)
    assert code == 1
    key = f"{t.loc[1, 'model']} / {t.loc[1, 'term']}"
    diffs = pd.read_csv(b2.parent / "verify-build" / "differences.csv")
    assert diffs[["table", "key", "column"]].values.tolist() == [["claims", cid, "verdict"], [name, key, "estimate"]]
    assert key in md and key in err and f"verdict changed: {cid}" in err
    assert md.index("## Claims whose verdict changed") < md.index(f"| {cid} |") < md.index("## Tables")


@pytest.mark.slow
def test_verify_tampered_or_foreign_bundle_is_exit_2(bundled, capsys, tmp_path):
    root, cfg, zp = bundled
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(zp) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "results/claims.csv":
                data = data.replace(b"reproduced", b"REPRODUCED", 1)
            dst.writestr(info, data)
    code = main(["verify", str(tampered), "--config", str(cfg), "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and "results/claims.csv was modified" in err and len(err.strip().splitlines()) == 1
    assert main(["verify", str(tmp_path / "absent.zip"), "--config", str(cfg), "--root", str(root)]) == 2
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert main(["verify", str(tmp_path / "junk.zip"), "--config", str(cfg), "--root", str(root)]) == 2
    other = tmp_path / "other.toml"
    other.write_text(cfg.read_text().replace('id = "synthetic"', 'id = "another"'))
    capsys.readouterr()
    assert main(["verify", str(zp), "--config", str(other), "--root", str(root)]) == 2
    assert "from study 'synthetic'" in capsys.readouterr().err


@pytest.mark.slow
def test_verify_rebuild_with_another_mcmc_seed(bundled, capsys):
    """The paper's RGB Bayesian model refitted with another seed (same sampler settings): its
    posterior rows differ, within their MCSE; every other row is the bundle's, compared exactly."""
    from dataclasses import replace

    from discbias.analyses.models import RGB, _settings
    from discbias.config import load_config
    from discbias.stats.bayes import rgb_bayes

    root, cfg, zp = bundled
    other = _copy_build(root, "seed")
    settings, _ = _settings(load_config(cfg))
    images = pd.read_parquet(root / "build" / "measures" / "study2_images.parquet").query("valid")
    refit, _ = rgb_bayes(images, "score", tuple(RGB), model="rgb_bayes", settings=replace(settings, seed=settings.seed + 1))
    before = pd.read_csv(root / "build" / "results" / "models_rgb_bayes.csv")
    refit.to_csv(other / "results" / "models_rgb_bayes.csv", index=False)
    after = pd.read_csv(other / "results" / "models_rgb_bayes.csv")
    assert (before["estimate"] != after["estimate"]).all()  # the seed did change the draws
    assert (before["method"] != after["method"]).all()      # it says so (the seed is in the text)
    code, md, err = _verify(bundled, other, capsys)
    assert code == 0, err
    summary = pd.read_csv(other.parent / "verify-build" / "tables.csv").set_index("table")
    assert summary.loc["models_rgb_bayes", ["posterior", "matched"]].tolist() == [len(before), len(before)]
    # a deterministic row is still compared exactly: nudge one OLS estimate by 1e-6 and it differs
    t = pd.read_csv(other / "results" / "study2_rgb_ols.csv")
    t.loc[0, "estimate"] *= 1 + 1e-6
    t.to_csv(other / "results" / "study2_rgb_ols.csv", index=False)
    code, md, err = _verify(bundled, other, capsys)
    assert code == 1
    diffs = pd.read_csv(other.parent / "verify-build" / "differences.csv")
    assert diffs[["table", "column", "kind"]].values.tolist() == [["study2_rgb_ols", "estimate", "deterministic"]]


def _other_kernel() -> str | None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(REPO / ".ci" / "kernel_settings.py"), "ci"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return next((s for s in out if s.startswith("OPENBLAS_CORETYPE=")), None)


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").environ.get("DISCBIAS_EXPENSIVE_TESTS"),
                    reason="refits the synthetic study under another BLAS kernel (about 4 minutes): `make test-all` "
                           "or DISCBIAS_EXPENSIVE_TESTS=1 runs it")
def test_verify_a_rebuild_under_another_blas_kernel(bundled, capsys, tmp_path):
    """A reviewer on another CPU: the study rebuilt (fetch -> measure -> fit, no fit cache) in a fresh
    process under another OpenBLAS kernel verifies against the bundle made under the default one.
    Posterior numbers move within their Monte Carlo error, iterative fits within their optimiser's
    tolerance, closed-form numbers within rounding; any number that moved further is listed with the
    number of MCSEs it moved, and no verdict changes except at a decision boundary."""
    import os
    import subprocess
    import sys

    setting = _other_kernel()
    if setting is None:
        pytest.skip("this CPU offers no other OpenBLAS kernel (.ci/kernel_settings.py)")
    root, cfg, zp = bundled
    other = tmp_path / "other"
    shutil.copytree(root / "analysis", other / "analysis")
    env = dict(os.environ, DISCBIAS_DATA_MIRROR=str(root / "mirror"), DISCBIAS_TEMPLATES=str(REPO / "report"),
               DISCBIAS_NO_FIT_CACHE="1", DISCBIAS_QUIET="1")
    k, v = setting.split("=", 1)
    env[k] = v
    args = ["--config", str(other / "analysis" / cfg.name), "--root", str(other)]
    for stage in ("fetch", "measure", "fit"):
        r = subprocess.run([sys.executable, "-m", "discbias.cli", stage, *args], env=env, capture_output=True,
                           text=True, timeout=1200)
        assert r.returncode == 0, (stage, r.stderr[-3000:])
    code, md, err = _verify(bundled, other / "build", capsys)
    out = other / "verify-build"
    diffs = pd.read_csv(out / "differences.csv")
    verdicts = pd.read_csv(out / "verdicts.csv", keep_default_na=False)
    with capsys.disabled():
        print(f"\nverify after a rebuild under {setting}: exit {code}; {len(diffs)} differing cell(s); "
              f"{len(verdicts)} verdict change(s)")
        for _, d in diffs.head(20).iterrows():
            print(f"  {d['table']} [{d['key']}] {d['column']}: {d['bundle']} -> {d['rebuild']} "
                  f"({d['rule']}; {d['mcse_multiple']} MCSE)")
    # every verdict change sits at a decision boundary (named), every moved posterior number says by
    # how many MCSEs; a clean rebuild exits 0
    assert (verdicts["at_boundary"].astype(str) != "").all(), verdicts
    post = diffs[diffs["kind"] == "posterior"]
    assert post["mcse_multiple"].notna().all(), post
    assert code == (0 if diffs.empty and verdicts.empty else 1)
    assert diffs.empty, diffs.to_string()
