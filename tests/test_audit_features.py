"""Audit user features: early validation, long ratings through the command line, labels, init's conditioning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from discbias.cli import main

BASE = '''[audit]
name = "demo"
[data]
manifest = "m.csv"
groups = ["region"]
[scoring]
weights = "D.pt"
'''


def _write(tmp_path, extra=""):
    rng = np.random.default_rng(0)
    pd.DataFrame({"image": [f"{i}.png" for i in range(8)], "region": ["north", "south"] * 4,
                  "cls": rng.integers(0, 3, 8)}).to_csv(tmp_path / "m.csv", index=False)
    pd.DataFrame({"image": ["0.png", "1.png"], "who": ["ann", "bob"], "item": ["skin", "skin"],
                  "value": [3, 4]}).to_csv(tmp_path / "ratings.csv", index=False)
    p = tmp_path / "a.toml"
    p.write_text(BASE + extra)
    return p


def test_missing_ratings_column_fails_before_scoring_naming_file_column_and_columns(tmp_path, monkeypatch, capsys):
    import discbias.scoring.scorer as scorer
    import discbias.measures.io as mio

    def boom(*a, **k):  # any scoring or measuring would call these
        raise AssertionError("an expensive step ran before validation")

    monkeypatch.setattr(scorer, "Scorer", boom)
    monkeypatch.setattr(mio, "measure_file", boom)
    cfg = _write(tmp_path, '[ratings.skin]\nfile = "ratings.csv"\nitem_column = "item"\nscale = [1, 7]\n'
                           '[[models]]\nid = "m"\nformula = "score ~ regoin + luma_709"\n'
                           '[[models]]\nid = "r"\nlevel = "image"\nformula = "skin ~ rater"\n'
                           'compare = ["cluster:country"]\n'
                           '[[claims]]\nid = "c"\ndescription = "d"\nmodel = "m"\nterm = "regio[south]"\n')
    assert main(["audit", "run", "--config", str(cfg), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "5 problems" in err
    assert "claim 'c': the term 'regio[south]' names 'regio', which model 'm' does not use (its variables: score, " \
           "regoin, luma_709" in err
    assert f"the ratings file {tmp_path / 'ratings.csv'} has no column 'rater' (its columns: image, who, item, value)" \
           in err
    assert "[ratings.skin] rater_column" in err
    assert "model 'm' uses ['regoin'], which is not a column at the image level" in err
    assert "rater exist(s) at the other level: set level = \"rating\"" in err
    assert "'cluster:country' clusters by 'country'" in err
    assert not (tmp_path / "build" / "demo" / "engine" / "store" / "results" / "scores.parquet").exists()


def test_preflight_names_manifest_problems_together(tmp_path):
    from discbias.audit.config import load_audit_config
    from discbias.audit.validate import preflight
    from discbias.errors import ConfigError

    cfg = _write(tmp_path, 'label_column = "klass"\n[ratings.skin]\ncolumns = ["s1", "s2"]\nscale = [1, 7]\n'
                           '[measures]\nimage = ["luma", "lab_l"]\n')
    cfg.write_text(cfg.read_text().replace('groups = ["region"]', 'groups = ["region", "age"]'))
    with pytest.raises(ConfigError) as e:
        preflight(load_audit_config(cfg))
    msgs = [(p.table, p.key) for p in e.value.problems]
    assert msgs == [("data", "groups"), ("scoring", "label_column"), ("ratings.skin", "columns"),
                    ("ratings.skin", "columns"), ("measures", "image")]
    assert "(its columns: image, region, cls)" in e.value.problems[0].message


def _e2e_helpers():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_audit_e2e", Path(__file__).parent / "test_audit_e2e.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _labelled_study(root, n=24):
    """Images, a manifest (4-level region, binary wears_glasses), a LONG ratings file with an item column:
    five raters each rating 60% of the images, two items (skin_tone, hair_length), bad values mixed in."""
    from PIL import Image

    rng = np.random.default_rng(7)
    (root / "data" / "images").mkdir(parents=True)
    regions = ["north", "south", "east", "west"]
    rows, ratings = [], []
    for i in range(n):
        region = regions[i % 4]
        base = 60 + 40 * (i % 4)
        px = np.clip(rng.normal(base, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(px).save(root / "data" / "images" / f"{i:03d}.png")
        rows.append(dict(image=f"images/{i:03d}.png", region=region, wears_glasses=["yes", "no"][i % 2]))
    for r in ["ann", "bob", "cat", "dan", "eve"]:
        for i in sorted(rng.choice(n, int(0.6 * n), replace=False)):
            tone = float(np.clip(round(2 + (i % 4) + rng.normal(0, 0.6)), 1, 7))
            ratings.append(dict(image=f"images/{i:03d}.png", rater=r, item="skin_tone", value=tone))
            ratings.append(dict(image=f"images/{i:03d}.png", rater=r, item="hair_length",
                                value=float(rng.integers(1, 6))))
    ratings += [dict(image="images/000.png", rater="fay", item="skin_tone", value=None),   # missing
                dict(image="images/001.png", rater="fay", item="skin_tone", value=9.0),    # out of range
                dict(image="images/002.png", rater="fay", item="hair_length", value=0.0),  # out of range
                dict(image="images/999.png", rater="fay", item="hair_length", value=3.0)]  # unknown image
    pd.DataFrame(rows).to_csv(root / "data" / "faces.csv", index=False)
    pd.DataFrame(ratings).to_csv(root / "data" / "ratings.csv", index=False)


STUDY = '''[audit]
name = "labelled"
stand_in_weights = true
[data]
manifest = "../data/faces.csv"
groups = ["region", "wears_glasses"]
[scoring]
weights = "../data/D-cond.pkl"
label_column = "cls"
min_side = 16
[measures]
image = ["luma_709", "lab_b"]
[ratings.skin_tone]
file = "../data/ratings.csv"
item_column = "item"
scale = [1, 7]
[ratings.hair_length]
file = "../data/ratings.csv"
item_column = "item"
scale = [1, 5]
[[models]]
id = "main"
formula = "score ~ region + wears_glasses + luma_709"
standardize = ["luma_709"]
compare = ["ols_hc3", "cluster:region"]
[[models]]
id = "tone"
level = "rating"
formula = "skin_tone ~ region + score + (1|rater) + (1|image)"
compare = ["cluster:image"]
[[models]]
id = "hair"
formula = "hair_length ~ wears_glasses + score"
[[claims]]
id = "south_higher"
description = "Southern images score higher than northern ones"
model = "main"
term = "region[south]"
[labels]
region = "Region"
wears_glasses = "Wears glasses"
skin_tone = "Skin tone"
hair_length = "Hair length"
cls = "Class"
'''


@pytest.mark.slow
def test_long_ratings_and_user_labels_render_clean(tmp_path, monkeypatch, capsys):
    """A LONG ratings file with an item column, an incomplete design and bad values; an item called
    hair_length; user labels: the report renders with every render check passing, the bad values
    are listed, and no column id of the study is left in the PDF's body text (code aside)."""
    import pdfplumber

    e2e = _e2e_helpers()
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache"))
    _labelled_study(tmp_path)
    m = pd.read_csv(tmp_path / "data" / "faces.csv")
    m["cls"] = np.arange(len(m)) % 3
    m.to_csv(tmp_path / "data" / "faces.csv", index=False)
    e2e._nvidia_pickle(tmp_path / "data" / "D-cond.pkl", 3, seed=2)
    cfg = tmp_path / "analysis" / "labelled.toml"
    cfg.parent.mkdir()
    cfg.write_text(STUDY)
    assert main(["audit", "run", "--config", str(cfg), "--on-invalid", "error", "--to", "html"]) == 2
    err = capsys.readouterr().err
    assert "4 invalid rating value(s)" in err and "ratings.csv line" in err
    assert not (tmp_path / "build" / "labelled" / "engine" / "store" / "results" / "scores.parquet").exists()  # stopped before scoring
    assert main(["audit", "run", "--config", str(cfg)]) == 0
    build = tmp_path / "build" / "labelled"
    assert (build / "report" / "render_checks.txt").read_text().startswith("all render checks passed\n")
    issues = pd.read_csv(build / "results" / "data_issues.csv")
    assert sorted(issues["problem"]) == ["image not in the manifest", "missing rating (empty, NA or not a number)",
                                         "rating outside 1.0-5.0", "rating outside 1.0-7.0"]
    long = pd.read_parquet(build / "engine" / "store" / "results" / "ratings_long.parquet")
    assert long.groupby("item")["rater"].nunique().to_dict() == {"hair_length": 5, "skin_tone": 5}
    models = pd.read_parquet(build / "engine" / "store" / "results" / "models.parquet")
    tone = models[(models["model"] == "tone") & (models["specification"] == "main")].set_index("term")
    assert tone.loc["sd(rater)", "n_groups"] == 5 and tone.loc["region[west]", "estimate"] > 0
    html = (build / "report" / "labelled.html").read_text()
    assert "Region: south" in html and "Hair length" in html and "Wears glasses" in html
    assert "Luma (Rec. 709)" in html and 'id="tbl-data-issues"' in html
    tex = (build / "tables" / "model_tone.tex").read_text()  # the LaTeX tables carry the labels too
    assert "Region: south" in tex and "Skin tone" in (build / "tables" / "reliability.tex").read_text()
    assert "skin\\_tone" not in tex.replace(r"\texttt{skin\_tone", "")  # only in the formula, as code
    # the PDF's text, code (monospace) aside, holds none of the study's column ids
    from discbias.audit.report import own_ids

    ids = [i for i in own_ids(SimpleCfg(), {"images": pd.read_parquet(build / "engine" / "store" / "results" / "images.parquet")})
           if "_" in i]
    assert {"skin_tone", "hair_length", "wears_glasses", "luma_709"} <= set(ids)
    words = []
    with pdfplumber.open(build / "report" / "labelled.pdf") as pdf:
        for page in pdf.pages:
            words += [w["text"] for w in page.extract_words(extra_attrs=["fontname"])
                      if "mono" not in w["fontname"].lower()]
    text = " ".join(words)
    assert "Skin tone" in text
    raw = sorted({i for i in ids if __import__("re").search(rf"(?<![\w/.-]){i}(?![\w-])", text)})
    assert raw == []


class SimpleCfg:
    """What own_ids reads of the STUDY configuration."""

    def __init__(self):
        from types import SimpleNamespace as NS

        self.ratings = {"skin_tone": NS(columns=None), "hair_length": NS(columns=None)}
        self.scoring = NS(label_column="cls")
        self.data = NS(groups=["region", "wears_glasses"])


MULTI = '''[audit]
name = "multi"
stand_in_weights = true
[data]
manifest = "../data/faces.csv"
groups = ["group"]
[scoring]
min_side = 16
[[scoring.networks]]
id = "uncond"
weights = "../data/D-uncond.pkl"
[[scoring.networks]]
id = "cond"
weights = "../data/D-cond.pkl"
label_column = "cls"
[measures]
image = ["luma_709"]
[[models]]
id = "side_by_side"
formula = "score_cond ~ group + score_uncond"
'''


@pytest.mark.slow
def test_several_networks_side_by_side_measures_once_and_ray_engine(tmp_path, monkeypatch, capsys):
    e2e = _e2e_helpers()
    monkeypatch.setenv("DISCBIAS_CACHE_DIR", str(tmp_path / "cache"))
    e2e._project(tmp_path, n=12)
    e2e._nvidia_pickle(tmp_path / "data" / "D-uncond.pkl", 0, seed=1)
    e2e._nvidia_pickle(tmp_path / "data" / "D-cond.pkl", 3, seed=2)
    cfg = tmp_path / "analysis" / "multi.toml"
    cfg.parent.mkdir()
    cfg.write_text(MULTI)
    assert main(["audit", "run", "--config", str(cfg), "--to", "html"]) == 0
    err = capsys.readouterr().err
    # progress before the long steps: one line per network and one for the measures
    assert "score: 13 images, network uncond, protocol nvidia (local engine)" in err
    assert "score: 13 images, network cond, protocol nvidia" in err and "measure: 13 images" in err
    # (the bar itself, discbias.progress, appears only for loops longer than its delay: tests/test_progress.py)
    build = tmp_path / "build" / "multi"
    images = pd.read_parquet(build / "engine" / "store" / "results" / "images.parquet")
    assert {"score", "score_uncond", "score_cond"} <= set(images.columns)
    assert images["score"].equals(images["score_uncond"]) and not np.allclose(images["score_uncond"],
                                                                              images["score_cond"])
    scores = pd.read_parquet(build / "engine" / "store" / "results" / "scores.parquet")
    cond = scores[scores["network"] == "cond"]
    assert cond["condition"].tolist() == [f"class:{i % 3}" for i in range(12)]
    assert set(scores.loc[scores["network"] == "uncond", "condition"].fillna("")) == {""}
    models = pd.read_parquet(build / "engine" / "store" / "results" / "models.parquet")
    assert "score_uncond" in set(models["term"])
    html = (build / "report" / "multi.html").read_text()
    assert "2 discriminators side by side" in html and "Network cond: class conditioning" in html
    nets = pd.read_csv(build / "tables" / "networks.csv")
    assert nets.iloc[:, 0].tolist() == ["uncond", "cond"] and nets.iloc[0, 4] == pytest.approx(1.0)

    # one network's conditioning changes: the measures are not recomputed, the other network comes from the cache
    from discbias.audit import audit

    cfg.write_text(MULTI.replace('label_column = "cls"', "average_classes = true"))
    out = audit(cfg, formats=("html",))
    steps = out["steps"].set_index("step")["status"]
    assert steps["audit:measure"] == "skipped" and steps["audit:score"] == "ran"
    runs = {p["network"]: p for p in out_provenance(out)["protocols"]}
    assert runs["uncond"]["from_cache"] == 12 and runs["uncond"]["scored"] == 0

    # [scoring] engine = "ray": the Ray scorer is used for every network (per class for a label column)
    import discbias.scoring.ray_engine as ray_engine
    from discbias.scoring.scorer import Scorer

    calls = []

    class FakeRay(Scorer):
        def __init__(self, weights, protocol, *, device, batch_size, min_side, address, actors):
            calls.append((Path(weights).name, protocol.condition, address, actors))
            super().__init__(weights, protocol, device=device, batch_size=batch_size, min_side=min_side)

    monkeypatch.setattr(ray_engine, "RayScorer", FakeRay)
    cfg.write_text(MULTI.replace("min_side = 16", 'min_side = 16\nengine = "ray"\naddress = "auto"\nactors = 2'))
    out = audit(cfg, formats=("html",))
    assert sorted(calls) == [("D-cond.pkl", "class:0", "auto", 2), ("D-cond.pkl", "class:1", "auto", 2),
                             ("D-cond.pkl", "class:2", "auto", 2), ("D-uncond.pkl", "", "auto", 2)]
    again = pd.read_parquet(build / "engine" / "store" / "results" / "scores.parquet")
    assert again.sort_values(["network", "image"])["score"].tolist() == pytest.approx(
        scores.sort_values(["network", "image"])["score"].tolist())
    # without the Ray extra, the error says how to install it
    monkeypatch.undo()
    if not ray_engine.ray_available():
        capsys.readouterr()
        assert main(["audit", "run", "--config", str(cfg), "--to", "html", "--force"]) == 2
        assert "pip install 'discbias[ray]'" in capsys.readouterr().err


def out_provenance(out):
    from discbias.engine import TableStore

    return TableStore(out["tables"]).get_value("measures/score_provenance")


def test_init_with_a_long_ratings_file_writes_one_table_per_item(tmp_path):
    from discbias.audit.config import load_audit_config
    from discbias.audit.validate import preflight

    _labelled_study(tmp_path, n=8)
    cfg = tmp_path / "analysis" / "faces.toml"
    assert main(["audit", "init", str(tmp_path / "data" / "faces.csv"), "--out", str(cfg), "--weights",
                 "../data/D.pkl", "--ratings", str(tmp_path / "data" / "ratings.csv")]) == 0
    text = cfg.read_text()
    assert "[ratings.skin_tone]" in text and "[ratings.hair_length]" in text and 'item_column = "item"' in text
    c = load_audit_config(cfg)
    assert c.ratings["skin_tone"].file == "../data/ratings.csv" and c.ratings["skin_tone"].scale == [1, 9]
    assert c.ratings["hair_length"].scale == [0, 5]  # the observed range, bad values included: the user sets it
    assert [m.id for m in c.models] == ["score_main", "hair_length_rating"]  # items in sorted order
    preflight(c)  # every column it names exists
