"""Audit pieces without the full run: configuration errors, ratings, models, claims, plot, conditioning."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from discbias.audit.config import load_audit_config
from discbias.audit.run import (AuditError, _model_data, audit_claims, fit_model, fit_reliability, measure_ratings,
                                read_manifest)
from discbias.stages import FitContext, MeasureContext
from discbias.cli import main
from discbias.errors import ConfigError
from recovery import assert_recovers

BASE = '''[audit]
name = "demo"
[data]
manifest = "m.csv"
groups = ["group"]
[scoring]
weights = "D.pt"
'''


def _cfg(tmp_path, extra="", base=BASE):
    p = tmp_path / "a.toml"
    p.write_text(base + extra)
    return p


class Ctx(SimpleNamespace):
    """The tables an audit's steps pass on, by their short names."""


def step_ratings(ctx):
    """The ratings measure step's function, as its factory calls it: ``ratings_long`` and its issues."""
    tables, issues = measure_ratings(MeasureContext(ctx.config, None), {"measures/inputs": ctx.tables["inputs"]})
    ctx.tables.update(tables, data_issues=issues)


def step_reliability(ctx):
    """The reliability fit step's function, as its factory calls it."""
    fctx = FitContext(ctx.config, None, {}, {"ratings_long": ctx.tables["ratings_long"]})
    fit_reliability(fctx)
    ctx.tables.update(fctx.results)


def _manifest(tmp_path, n=12):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"image": [f"{i}.png" for i in range(n)], "group": ["a", "b"] * (n // 2),
                       "hair": rng.uniform(0, 5, n), "s1": rng.integers(1, 6, n), "s2": rng.integers(1, 6, n),
                       "s3": rng.integers(1, 6, n)})
    df.to_csv(tmp_path / "m.csv", index=False)
    return df


def test_unknown_key_names_table_key_and_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"\[scoring\] unknown key 'devise'; did you mean 'device'\?"):
        load_audit_config(_cfg(tmp_path, 'devise = "cpu"\n'))


def test_claim_naming_an_undefined_model_is_an_error(tmp_path):
    extra = '[[models]]\nid = "m1"\nformula = "score ~ group"\n[[claims]]\nid = "c"\ndescription = "d"\nmodel = "m2"\nterm = "x"\n'
    with pytest.raises(ConfigError, match=r"claim 'c' names model 'm2', which no \[\[models\]\] entry defines \(models: m1\)"):
        load_audit_config(_cfg(tmp_path, extra))


def test_conditioning_options_are_exclusive_and_ratings_need_one_layout(tmp_path):
    with pytest.raises(ConfigError, match="at most one of label_column, class and average_classes"):
        load_audit_config(_cfg(tmp_path, 'class = 1\naverage_classes = true\n'))
    with pytest.raises(ConfigError, match="exactly one of columns"):
        load_audit_config(_cfg(tmp_path, '[ratings.skin]\nscale = [1, 5]\n'))


def test_manifest_without_the_image_column_names_it(tmp_path):
    pd.DataFrame({"file": ["a.png"], "group": ["x"]}).to_csv(tmp_path / "m.csv", index=False)
    cfg = load_audit_config(_cfg(tmp_path))
    with pytest.raises(ConfigError, match=r"no image column 'image' \(its columns: file, group\); set image_column"):
        read_manifest(cfg)


def test_ratings_wide_and_long_and_bad_values(tmp_path):
    m = _manifest(tmp_path)
    cfg = load_audit_config(_cfg(tmp_path, '[ratings.skin]\ncolumns = ["s1", "s2", "s3"]\nscale = [1, 5]\n'))
    inputs, _ = read_manifest(cfg)
    ctx = Ctx(config=cfg, tables={"inputs": inputs})
    step_ratings(ctx)
    long = ctx.tables["ratings_long"]
    assert len(long) == 36 and set(long["rater"]) == {"s1", "s2", "s3"}
    assert long.query("image == '3.png' and rater == 's2'")["value"].item() == m.loc[3, "s2"]
    assert len(ctx.tables["data_issues"]) == 0
    # a long file with a value outside the scale and an unknown image: listed in data_issues, left out
    pd.DataFrame({"img": ["0.png", "1.png", "zz.png"], "who": ["ann", "bob", "ann"], "v": [3, 9, 2]}).to_csv(
        tmp_path / "r.csv", index=False)
    text = ('[ratings.skin]\nfile = "r.csv"\nimage_column = "img"\nrater_column = "who"\n'
            'value_column = "v"\nscale = [1, 5]\n')
    cfg = load_audit_config(_cfg(tmp_path, text))
    ctx = Ctx(config=cfg, tables={"inputs": inputs})
    step_ratings(ctx)
    assert ctx.tables["ratings_long"]["image"].tolist() == ["0.png"]
    issues = ctx.tables["data_issues"]
    assert issues[["line", "column", "value", "problem"]].values.tolist() == [  # in the file's order
        [3, "v", "9", "rating outside 1.0-5.0"], [4, "img", "zz.png", "image not in the manifest"]]
    # on_invalid = "error": one error listing every issue, with file and line
    cfg = load_audit_config(_cfg(tmp_path, text, base=BASE.replace('name = "demo"', 'name = "demo"\non_invalid = "error"')))
    with pytest.raises(AuditError, match=r"(?s)2 invalid rating value\(s\):\n- r.csv line 3, column 'v': rating "
                                         r"outside.*r.csv line 4, column 'img': image not in the manifest"):
        step_ratings(Ctx(config=cfg, tables={"inputs": inputs}))
    cfg = load_audit_config(_cfg(tmp_path, '[ratings.skin]\nfile = "r.csv"\nscale = [1, 5]\n'))
    with pytest.raises(ConfigError, match=r"lacks the column\(s\) image \(image_column\), rater \(rater_column\)"):
        step_ratings(Ctx(config=cfg, tables={"inputs": inputs}))


def test_long_ratings_file_with_item_column_incomplete_design(tmp_path):
    """One file, one row per image x rater x item; raters rate about 60% of the images; bad values listed."""
    _manifest(tmp_path, n=40)
    rng = np.random.default_rng(4)
    truth = rng.normal(4, 1.2, 40)
    rows = []
    for r in ["ann", "bob", "cat", "dan", "eve"]:
        for i in sorted(rng.choice(40, 24, replace=False)):  # 60% of the images
            rows.append(dict(image=f"{i}.png", rater=r, item="skin_tone", value=float(np.clip(round(truth[i] + rng.normal(0, .5), 1), 1, 7))))
            rows.append(dict(image=f"{i}.png", rater=r, item="hair_length", value=int(rng.integers(1, 6))))
    df = pd.DataFrame(rows)
    n_valid = len(df)
    bad = pd.DataFrame([dict(image="0.png", rater="zed", item="skin_tone", value=None),       # missing value
                        dict(image="1.png", rater="zed", item="skin_tone", value=12),         # out of range
                        dict(image="nope.png", rater="zed", item="skin_tone", value=3),       # unknown image
                        dict(image="2.png", rater="zed", item="hair_length", value="long"),   # not a number
                        dict(image="3.png", rater="zed", item="mood", value=3)])              # undeclared item
    dup = df.iloc[[0]].assign(value=1.0)                                                     # a second rating
    pd.concat([df, bad, dup], ignore_index=True).to_csv(tmp_path / "ratings.csv", index=False)
    extra = ('[ratings.skin]\nfile = "ratings.csv"\nitem_column = "item"\nitem = "skin_tone"\nscale = [1, 7]\n'
             '[ratings.hair_length]\nfile = "ratings.csv"\nitem_column = "item"\nscale = [1, 5]\n')
    cfg = load_audit_config(_cfg(tmp_path, extra))
    inputs, _ = read_manifest(cfg)
    ctx = Ctx(config=cfg, tables={"inputs": inputs})
    step_ratings(ctx)
    long, issues = ctx.tables["ratings_long"], ctx.tables["data_issues"]
    assert len(long) == n_valid and set(long["item"]) == {"skin", "hair_length"}
    assert long.groupby("item")["rater"].nunique().tolist() == [5, 5]
    line = {p: int(issues.loc[issues["problem"].str.startswith(p), "line"].iloc[0]) for p in
            ("missing rating", "rating outside", "image not in", "non-numeric", "item not declared", "second rating")}
    first_bad = n_valid + 2
    assert line == {"missing rating": first_bad, "rating outside": first_bad + 1, "image not in": first_bad + 2,
                    "non-numeric": first_bad + 3, "item not declared": first_bad + 4, "second rating": first_bad + 5}
    assert len(issues) == 6 and issues.set_index("problem").filter(like="outside", axis=0)["item"].item() == "skin"
    # reliability works on the incomplete design (ICCs on images with the median number of ratings)
    step_reliability(ctx)
    rel = ctx.tables["reliability"].set_index(["item", "coefficient"])
    assert rel.loc[("skin", "Krippendorff alpha (interval)"), "estimate"] > 0.5
    assert rel.loc[("skin", "ICC(2,k)"), "n_images"] >= 10 and np.isfinite(rel.loc[("skin", "ICC(2,k)"), "estimate"])
    # the CLI flag's configuration key: error lists all six
    cfg = load_audit_config(_cfg(tmp_path, extra, base=BASE.replace('name = "demo"', 'name = "demo"\non_invalid = "error"')))
    with pytest.raises(AuditError, match=r"6 invalid rating value\(s\)"):
        step_ratings(Ctx(config=cfg, tables={"inputs": inputs}))


def test_models_comparisons_and_claims(tmp_path):
    rng = np.random.default_rng(1)
    n = 80
    images = pd.DataFrame({"image": [f"{i}.png" for i in range(n)], "group": np.repeat(["a", "b"], n // 2),
                           "luma_709": rng.uniform(0, 1, n)})
    images["score"] = 0.8 * (images["group"] == "b") + 0.3 * images["luma_709"] + rng.normal(0, 0.3, n)
    extra = ('[[models]]\nid = "m1"\nformula = "score ~ group + luma_709"\nstandardize = ["luma_709"]\n'
             'compare = ["ols_hc3", "cluster:group"]\n'
             '[[claims]]\nid = "c1"\ndescription = "b higher"\nmodel = "m1"\nterm = "group[b]"\n'
             '[[claims]]\nid = "c2"\ndescription = "b lower"\nmodel = "m1"\nterm = "group[b]"\ndirection = -1\n')
    cfg = load_audit_config(_cfg(tmp_path, extra))
    m = cfg.models[0]
    data = _model_data(cfg, m, images, pd.DataFrame())
    assert abs(data["luma_709"].std() - 1) < 1e-9 and abs(data["luma_709"].mean()) < 1e-9
    models = fit_model(cfg, m, data)
    assert set(models["specification"]) == {"main", "ols_hc3", "cluster:group"}
    hc3 = models[(models["specification"] == "ols_hc3") & (models["term"] == "group[b]")]
    assert hc3["method"].item() == "OLS (HC3 standard errors)"
    from discbias.claims import evaluate_claims

    table, specs = evaluate_claims({"models": models}, audit_claims(cfg, models))
    v = table.set_index("claim_id")["verdict"]
    assert v["c2"] == "contradicted" and v["c1"] in ("robust", "fragile")
    assert (table["reproduction"] == "not applicable").all() and (table["kind"] == "hypothesis").all()
    assert len(specs) == 6
    # a formula naming a column that exists only at the other level says so
    bad = load_audit_config(_cfg(tmp_path, '[[models]]\nid = "m2"\nformula = "score ~ rater"\n'))
    with pytest.raises(ConfigError, match=r"uses \['rater'\], which is not a column at the image level \(rater exist"):
        _model_data(bad, bad.models[0], images, pd.DataFrame({"rater": ["x"]}))
    # a claim on a term the model does not have lists the terms
    wrong = load_audit_config(_cfg(tmp_path, extra.replace('term = "group[b]"\n[[claims]]', 'term = "groupb"\n[[claims]]')))
    with pytest.raises(ConfigError, match=r"model 'm1' has no term 'groupb'; its terms are Intercept, group\[b\], luma_709"):
        audit_claims(wrong, models)


def test_plot_cli_writes_png_and_summary(tmp_path, capsys):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"score": rng.normal(size=40), "luma_709": rng.uniform(size=40), "group": ["a", "b"] * 20})
    df.loc[df["group"] == "b", "score"] += 5 * df["luma_709"]
    df.to_csv(tmp_path / "s.csv", index=False)
    assert main(["plot", str(tmp_path / "s.csv"), "--x", "luma_709", "--by", "group"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (tmp_path / "s.luma_709.png").stat().st_size > 1000
    rows = {line.split()[0]: line.split() for line in out[2:4]}
    assert rows["a"][1] == "20" and float(rows["b"][4]) > 0.8  # n, and r of the dependent group
    assert main(["plot", str(tmp_path / "s.csv"), "--x", "lum"]) == 2
    assert "has no column 'lum' (given as --x)" in capsys.readouterr().err


def test_conditional_scoring_average_is_mean_of_classes(tmp_path):
    from PIL import Image

    from discbias.nets import Discriminator, save_discriminator
    from discbias.scoring import ProtocolError, ScoreCache, Scorer, ScoringProtocol, discover

    torch.manual_seed(0)
    save_discriminator(Discriminator(3, 16, 3, channel_base=128, channel_max=16), tmp_path / "D.pt")
    for k in range(4):
        Image.new("RGB", (16, 16), (60 * k, 20, 200 - 40 * k)).save(tmp_path / f"{k}.png")
    items = [it for it in discover(tmp_path) if it.image.endswith(".png")]
    cache = ScoreCache(tmp_path / "cache")
    with pytest.raises(ProtocolError, match=r"conditional \(c_dim=3\); say which label"):
        Scorer(tmp_path / "D.pt", ScoringProtocol(), min_side=8)
    with pytest.raises(ProtocolError, match="class 5 is out of range for c_dim=3"):
        Scorer(tmp_path / "D.pt", ScoringProtocol(condition="class:5"), min_side=8)
    per = [Scorer(tmp_path / "D.pt", ScoringProtocol(condition=f"class:{k}"), min_side=8).score_items(
        items, cache, progress=False).table["score"].to_numpy() for k in range(3)]
    avg = Scorer(tmp_path / "D.pt", ScoringProtocol(condition="average"), min_side=8).score_items(
        items, cache, progress=False).table
    assert not np.allclose(per[0], per[1])  # the label changes the score
    np.testing.assert_allclose(avg["score"].to_numpy(), np.mean(per, axis=0), rtol=1e-5, atol=1e-6)
    assert set(avg["condition"]) == {"average"} and avg["label"].str.endswith("/average").all()
    # the cache keeps the classes apart and unconditional keys unchanged
    assert ScoringProtocol().key() == '{"filter":"lanczos","flip":false,"grouping":"single","input":"nvidia",' \
                                      '"precision":"fp32","resize":"stretch"}'
    assert len(cache.summary()) >= 4


def test_readme_example_configuration_is_valid(tmp_path):
    """The configuration printed in the README's "Audit your own discriminator" section validates."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Audit your own discriminator", 1)[1].split("\n## ", 1)[0]
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = load_audit_config(_cfg(tmp_path, base=toml))
    assert [m.id for m in cfg.models] == ["score_main", "skin_rating"] and cfg.models[1].level == "rating"
    assert cfg.ratings["skin"].columns == ["skin_r1", "skin_r2", "skin_r3"] and cfg.claims[0].model == "score_main"


@pytest.mark.parametrize("package", ["discbias.audit", "discbias.stats", "discbias.scoring", "discbias.measures",
                                     "discbias.report", "discbias.engine", "discbias.errors"])
def test_api_page_lists_every_public_name(package):
    import importlib

    page = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    section = page.split(f"## `{package}`", 1)[1].split("\n## ", 1)[0]
    missing = [n for n in importlib.import_module(package).__all__ if f"`{n}`" not in section]
    assert not missing, f"docs/api.md lacks {missing} under {package}"


def test_score_cli_conditional_options(tmp_path, capsys):
    from PIL import Image

    from discbias.nets import Discriminator, save_discriminator

    torch.manual_seed(0)
    save_discriminator(Discriminator(3, 16, 3, channel_base=128, channel_max=16), tmp_path / "D.pt")
    for k in range(4):
        Image.new("RGB", (16, 16), (60 * k, 20, 90)).save(tmp_path / f"{k}.png")
    pd.DataFrame({"image": [f"{k}.png" for k in range(4)], "cls": [2, 0, 1, 2]}).to_csv(tmp_path / "m.csv", index=False)
    base = ["score", str(tmp_path / "m.csv"), "--weights", str(tmp_path / "D.pt"), "--min-side", "8",
            "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--workers", "0"]
    assert main(base + ["--label-column", "cls", "--out", str(tmp_path / "s.csv")]) == 0
    out = pd.read_csv(tmp_path / "s.csv")
    assert out["condition"].tolist() == ["class:2", "class:0", "class:1", "class:2"]
    assert main(base + ["--class", "1", "--out", str(tmp_path / "c1.csv")]) == 0
    c1 = pd.read_csv(tmp_path / "c1.csv").set_index("image")["score"]
    assert c1["2.png"] == pytest.approx(out.set_index("image").loc["2.png", "score"])  # the same class, the same score
    capsys.readouterr()
    assert main(base) == 2
    assert "conditional (c_dim=3); say which label" in capsys.readouterr().err
    assert main(base + ["--class", "1", "--average-classes"]) == 2


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").environ.get("DISCBIAS_EXPENSIVE_TESTS"),
                    reason="samples a Bambi model (about a minute on 2 cores): `make test-all` or "
                           "DISCBIAS_EXPENSIVE_TESTS=1 runs it; tests/test_crossed.py covers crossed_mixed's Bambi path")
def test_rating_level_model_with_bambi_engine(tmp_path):
    rng = np.random.default_rng(3)
    n_img, raters = 40, ["ann", "bob", "cat", "dan"]
    img = np.repeat(np.arange(n_img), len(raters))
    group = np.where(np.arange(n_img) % 2, "b", "a")
    rows = pd.DataFrame({"image": [f"{i}.png" for i in img], "rater": np.tile(raters, n_img), "group": group[img]})
    rows["skin"] = (3 + 1.5 * (rows["group"] == "b") + rng.normal(0, 1, n_img)[img]
                    + np.tile([-0.5, 0, 0.3, 0.6], n_img) + rng.normal(0, 0.4, len(rows)))
    extra = ('[ratings.skin]\ncolumns = ["a", "b"]\nscale = [1, 10]\n[[models]]\nid = "m"\nlevel = "rating"\n'
             'formula = "skin ~ group + (1|rater) + (1|image)"\nengine = "bambi"\ndraws = 300\ntune = 300\nchains = 2\n'
             'compare = ["cluster:image"]\n')
    cfg = load_audit_config(_cfg(tmp_path, extra))
    out = fit_model(cfg, cfg.models[0], _model_data(cfg, cfg.models[0], pd.DataFrame(), rows)).set_index(
        ["specification", "term"])
    main = out.loc["main"]
    r = main.loc["group[b]"]  # within K posterior SDs + K MCSEs of the truth (tests/recovery.py)
    assert_recovers(r["estimate"], 1.5, r["std_error"], r["mcse_mean"], what="group[b]")
    assert main.loc["sd(rater)", "n_groups"] == 4 and main["r_hat"].notna().all()
    assert "Bambi" in main.loc["group[b]", "method"] and out.loc[("cluster:image", "group[b]"), "method"].startswith("OLS")


def test_folder_and_parquet_manifest_sources(tmp_path):
    from PIL import Image

    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.jpg"):
        Image.new("RGB", (32, 32)).save(tmp_path / "imgs" / name)
    cfg = load_audit_config(_cfg(tmp_path, base=BASE.replace('manifest = "m.csv"\ngroups = ["group"]',
                                                             'folder = "imgs"')))
    df, _ = read_manifest(cfg)
    assert df["image"].tolist() == ["a.png", "sub/b.jpg"] and Path(df["_path"].iloc[1]).is_file()
    pd.DataFrame({"file": ["imgs/a.png", "imgs/a.png"], "group": ["x", "y"]}).to_parquet(tmp_path / "m.parquet")
    cfg = load_audit_config(_cfg(tmp_path, base=BASE.replace('"m.csv"', '"m.parquet"\nimage_column = "file"')))
    with pytest.raises(AuditError, match=r"image 'imgs/a.png' is listed twice"):
        read_manifest(cfg)
    cfg = load_audit_config(_cfg(tmp_path, base=BASE.replace('groups = ["group"]', 'groups = ["race"]')))
    pd.DataFrame({"image": ["imgs/a.png"], "group": ["x"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ConfigError, match=r"groups names 'race', which is not a column of m.csv \(columns: image, group\)"):
        read_manifest(cfg)
