"""Caches, weights files, data files and file names from data (issue 24): tampering is detected,
resources are bounded, bad input is one line naming it, and nothing is written outside the build."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest


# ------------------------------------------------------------------------------ fit cache
def _mean_fit(df, y, *, model):
    return pd.DataFrame({"model": [model], "term": ["mean"], "estimate": [float(df[y].mean())], "warnings": [""]})


def _entry(tmp_path):
    from discbias.stats.fitcache import FitCache

    cache = FitCache(tmp_path / "fits")
    d = pd.DataFrame({"red_mean": [1.0, 2.0, 3.0]})
    first = cache.fit(_mean_fit, d, "red_mean", model="m", columns=["red_mean"])
    key, _ = cache.key(_mean_fit, d, ("red_mean",), dict(model="m"), ["red_mean"])
    return cache, d, first, cache.entry(key)


def _rewrite_meta(entry: Path, change) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    change(meta)
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("attack", ["rewritten part with its sha256", "file outside the entry", "kind none",
                                    "mac removed"])
def test_a_tampered_fit_cache_entry_is_refitted_not_served(tmp_path, attack):
    from discbias.stats.fitcache import FitCache

    cache, d, first, entry = _entry(tmp_path)
    outside = tmp_path / "outside.parquet"
    pd.DataFrame({"model": ["m"], "term": ["mean"], "estimate": [123.456], "warnings": [""]}).to_parquet(outside)
    if attack == "rewritten part with its sha256":
        part = entry / "part0.parquet"
        part.write_bytes(outside.read_bytes())
        _rewrite_meta(entry, lambda m: m["parts"][0].update(sha256=hashlib.sha256(part.read_bytes()).hexdigest()))
    elif attack == "file outside the entry":
        rel = os.path.relpath(outside, entry)
        _rewrite_meta(entry, lambda m: m["parts"][0].update(file=rel, sha256=hashlib.sha256(outside.read_bytes())
                                                            .hexdigest()))
    elif attack == "kind none":
        _rewrite_meta(entry, lambda m: m["parts"][0].update(kind="none", file=None, sha256=None))
    else:
        _rewrite_meta(entry, lambda m: m.pop("mac"))
    again = FitCache(tmp_path / "fits").fit(_mean_fit, d, "red_mean", model="m", columns=["red_mean"])
    assert again["estimate"].item() == 2.0  # refitted, never 123.456 and never None
    assert "was unreadable" in again["warnings"].item() and "refitted" in again["warnings"].item()
    assert outside.exists()  # the file named by the entry was not touched


def test_an_entry_from_another_key_is_refitted(tmp_path, monkeypatch):
    from discbias import integrity
    from discbias.stats.fitcache import FitCache

    cache, d, first, entry = _entry(tmp_path)
    monkeypatch.setenv(integrity.KEY_ENV, str(tmp_path / "another.key"))  # a build folder copied from elsewhere
    again = FitCache(tmp_path / "fits").fit(_mean_fit, d, "red_mean", model="m", columns=["red_mean"])
    assert "keyed MAC does not verify" in again["warnings"].item()


def test_the_key_lives_outside_the_cache_and_is_private(tmp_path, monkeypatch):
    from discbias import integrity

    monkeypatch.delenv(integrity.KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert integrity.key_file() == tmp_path / "xdg" / "discbias" / "integrity.key"
    integrity.mac(b"x", purpose="t")
    k = integrity.key_file()
    assert len(k.read_bytes()) == 32 and (k.stat().st_mode & 0o077) == 0


# ------------------------------------------------------------------------------ score cache
def _score_cache(tmp_path):
    from discbias.scoring.cache import ScoreCache

    c = ScoreCache(tmp_path / "cache")
    c.import_released("demo", pd.DataFrame({"image_id": ["1", "2"], "score": [0.5, 0.7]}), source="x.csv")
    return c


def test_a_score_row_with_a_recomputed_sha256_is_detected(tmp_path):
    from discbias.scoring.cache import CacheError, ScoreCache, SCORE_COLUMNS, _plain_row_checksum

    c = _score_cache(tmp_path)
    path = c.path
    c.close()
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    r = dict(con.execute("SELECT * FROM scores WHERE image_id = '1'").fetchone())
    r["score"] = 123.456
    con.execute("UPDATE scores SET score = ?, checksum = ? WHERE key = ?",
                (123.456, _plain_row_checksum(tuple(r[k] for k in SCORE_COLUMNS)), r["key"]))
    con.commit()
    con.close()
    c = ScoreCache(tmp_path / "cache")
    with pytest.raises(CacheError, match="released:demo:1"):
        c.released("demo")
    assert any("checksum mismatch" in p for p in c.verify())
    assert c.drop_damaged() == 1 and c.released("demo")["image_id"].tolist() == ["2"]


def test_image_stats_and_file_hashes_rows_are_covered(tmp_path):
    from discbias.scoring.cache import ScoreCache

    c = _score_cache(tmp_path)
    c.remember_hashes([("/data/a.png", 10, 20, "ab" * 32)])
    with c.transaction() as con:
        con.execute("INSERT INTO image_stats VALUES ('cd', 1, 2, 3, 2, 64, 64, NULL)")
    from discbias.scoring.cache import aux_checksum

    with c.transaction() as con:
        con.execute("UPDATE image_stats SET checksum = ? WHERE image_sha256 = 'cd'",
                    (aux_checksum("image_stats", ("cd", 1, 2, 3, 2, 64, 64)),))
    assert len(c.image_stats()) == 1 and c.known_hashes(["/data/a.png"])
    with c.transaction() as con:  # one changed value (height), checksum left alone
        con.execute("UPDATE image_stats SET height = 65")
        con.execute("UPDATE file_hashes SET sha256 = ?", ("ef" * 32,))
    assert len(c.image_stats()) == 0 and c.known_hashes(["/data/a.png"]) == {}
    problems = c.verify()
    assert any("image_stats" in p for p in problems) and any("file_hashes" in p for p in problems)


# ------------------------------------------------------------------------------ weights files
def _tiny_kwargs():
    from discbias.nets import Discriminator

    return dict(Discriminator(0, 32, 3, channel_base=512, channel_max=32).init_kwargs)


def test_a_stride_zero_tensor_is_refused_before_building(tmp_path):
    import torch

    from discbias.nets import load_discriminator
    from discbias.nets.errors import UnsafePickleError

    kw = _tiny_kwargs()
    kw.update(channel_base=1 << 20, channel_max=4096, img_resolution=1024)  # a huge network
    state = {"b1024.fromrgb.weight": torch.zeros(1).expand(4096, 3, 1, 1)}  # stride 0: 1 stored value
    p = tmp_path / "d.pt"
    torch.save({"format": "discbias-discriminator/1", "init_kwargs": kw, "state_dict": state}, p)
    assert p.stat().st_size < 4000
    with pytest.raises(UnsafePickleError, match="zero or overlapping strides"):
        load_discriminator(p)


def _png(folder: Path) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (120, 80, 40)).save(folder / "a.png")
    return folder


@pytest.mark.parametrize("kind", ["fifo", "stride-0 .pt"] + [pytest.param(k, marks=pytest.mark.slow) for k in
                                                            ("broken safetensors", "bad metadata", "folder", "loop")])
def test_a_bad_weights_file_is_one_line(sandbox, kind):
    import struct

    w = sandbox.root / "w.safetensors"
    if kind == "stride-0 .pt":  # the 1.8 KB file that declared a 8.7e9-parameter network, end to end under the cap
        import torch

        kw = _tiny_kwargs()
        kw.update(channel_base=1 << 20, channel_max=4096, img_resolution=1024)
        w = sandbox.root / "w.pt"
        torch.save({"format": "discbias-discriminator/1", "init_kwargs": kw,
                    "state_dict": {"b1024.fromrgb.weight": torch.zeros(1).expand(4096, 3, 1, 1)}}, w)
    elif kind == "broken safetensors":
        w.write_bytes(struct.pack("<Q", 10) + b'{"x": 1}  ' + b"\0" * 8)
    elif kind == "bad metadata":
        from safetensors.torch import save_file
        import torch

        save_file({"x": torch.zeros(2)}, str(w), metadata={"init_kwargs": "{not json"})
    elif kind == "folder":
        w.mkdir()
    elif kind == "fifo":
        os.mkfifo(w)
    else:
        os.symlink(w, w)
    run = sandbox.cli("score", _png(sandbox.root / "imgs"), "--weights", w, "--device", "cpu", timeout=90)
    sandbox.assert_refused(run, str(w))


# ------------------------------------------------------------------------------ files named after data
def test_a_group_column_cannot_name_a_file_outside_the_build(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from discbias.audit.figures import score_by_group
    from discbias.report.tables import write_publication_table
    from discbias.safeio import confined, safe_name

    figures = tmp_path / "build" / "figures"
    evil = "x/../../../../outside/OUTSIDE_g"
    write_publication_table(pd.DataFrame({"n": [1]}), tmp_path / "build" / "tables", f"scores_{evil}", caption="c.")
    score_by_group(pd.DataFrame({"score": [1.0, 2.0], evil: ["a", "b"]}), evil,
                   figures / f"{safe_name(f'score_by_{evil}')}.svg")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(str(p).startswith(str(tmp_path / "build")) for p in written)
    assert not (tmp_path / "outside").exists()
    assert confined(figures, evil).parent == figures


def test_an_error_never_echoes_a_data_file(tmp_path):
    from discbias.audit.config import load_audit_config
    from discbias.audit.run import read_manifest
    from discbias.errors import ConfigError

    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    cfg = tmp_path / "a.toml"
    cfg.write_text(f'[audit]\nname = "demo"\n[data]\nmanifest = "{secret.name}.csv"\n[scoring]\nweights = "D.pkl"\n')
    (tmp_path / "shadow.csv").write_bytes(secret.read_bytes())
    with pytest.raises(ConfigError) as exc:
        read_manifest(load_audit_config(cfg))
    assert "SECRETHASH" not in str(exc.value) and "not shown" in str(exc.value)


def test_the_cli_never_echoes_a_data_file(sandbox):
    """The same through `discbias audit run` under the cap: exit 2, one line naming the file, nothing of it."""
    secret = sandbox.root / "shadow.csv"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    cfg = sandbox.root / "a.toml"
    cfg.write_text('[audit]\nname = "demo"\n[data]\nmanifest = "shadow.csv"\n[scoring]\nweights = "D.pkl"\n')
    run = sandbox.cli("audit", "run", "--config", cfg)
    sandbox.assert_refused(run, "shadow.csv")
    assert "SECRETHASH" not in run.stderr + run.stdout


def test_a_mirror_archive_member_is_read_within_a_limit(tmp_path, monkeypatch, capped):
    """A tar member larger than the limit (declared honestly: 200 MiB of zeros, 200 KB compressed) is
    refused before it is read, within 128 MiB of address space."""
    import tarfile

    import discbias.fetch as fetch

    class Zeros:
        def __init__(self, n):
            self.left = n

        def read(self, k=-1):
            k = self.left if k < 0 else min(k, self.left)
            self.left -= k
            return b"\0" * k

    p = tmp_path / "a.tar.gz"
    with tarfile.open(p, "w:gz") as tf:
        info = tarfile.TarInfo("json/00000.json")
        info.size = 200 * 1024 ** 2
        tf.addfile(info, Zeros(info.size))
    assert p.stat().st_size < 2_000_000
    out = capped(lambda: list(fetch.iter_tree_files(p)), budget=128 * 1024 ** 2)
    assert out is not None and out[0] == "FetchError" and "declares 209,715,200 bytes" in out[1], out
    monkeypatch.setattr(fetch, "MAX_TREE_MEMBER_BYTES", 1000)  # and a small one against the limit
    small = tmp_path / "b.tar.gz"
    with tarfile.open(small, "w:gz") as tf:
        info = tarfile.TarInfo("json/00000.json")
        info.size = 5002
        tf.addfile(info, Zeros(5002))
    with pytest.raises(fetch.FetchError, match="declares 5,002 bytes"):
        list(fetch.iter_tree_files(small))


def test_a_header_only_study2_file_is_a_data_issue_naming_it(tmp_path):
    """A header without rows is a data problem named in one line (line 2 of the file), never a
    ValueError inside a fit later (the fit's welch_ttest raised one before issue 24)."""
    from discbias.studies.grissom2024 import read_study2
    from discbias.studies.validation import CsvFormatError, EmptyInputError

    p = tmp_path / "study2.csv"
    p.write_text("stim.race,stim.gen,hairlength,fullstimname,red_mean,green_mean,blue_mean,luminance\n")
    with pytest.raises(EmptyInputError, match="study2.csv line 2: the file has a header but no data rows") as exc:
        read_study2(p)
    assert isinstance(exc.value, CsvFormatError) and "\n" not in str(exc.value)


def _toy_engine(tmp_path, files: dict):
    """Two measure steps (each reading one CSV through ``require_columns``) and three fit steps: one per
    table, one needing both; the pipeline's data-issues step."""
    def M(t): return f"measures/{t}"  # store names of measures, results and values sections
    def R(t): return f"results/{t}"
    def V(t): return f"values/{t}"
    from discbias.engine import Engine, Step, TableStore
    from discbias.stages import CONFIG_INPUT, OPTIONS_INPUT, RAW_INPUT, _issues_step, fit_step, measure_step
    from discbias.studies.validation import read_released_csv, require_columns

    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text)

    def reader(name):
        def measure(ctx):
            df, _ = read_released_csv(tmp_path / f"{name}.csv", name=f"{name}.csv")
            require_columns(df, ["x"], f"{name}.csv")
            if "valid" in df:  # as the released-schema adapters mark each row
                df["valid"] = df["valid"] == "True"
            issues = pd.DataFrame([dict(file=f"{name}.csv", line=i + 2, column="x", value="", problem="invalid",
                                        action="row flagged invalid") for i in range(len(df))
                                   if "valid" in df and not df["valid"].iloc[i]],
                                  columns=["file", "line", "column", "value", "problem", "action"])
            return {name: df.assign(x=df["x"].astype(float))}, issues
        measure.__module__ = __name__
        return measure

    def fitter(section, tables):
        def fit(ctx):
            ctx.values[section] = dict(available=True, mean=float(sum(ctx.measures[t]["x"].mean() for t in tables)))
            ctx.results[f"{section}_table"] = pd.DataFrame({"mean": [ctx.values[section]["mean"]]})
        return fit

    steps = [measure_step(f"{n}:adapt", reader(n), writes=[n]) for n in files]
    issues = [t for st in steps for t in st.writes if t.startswith("issues/")]
    steps.append(Step("measure:data_issues", _issues_step(issues), reads=issues, writes=["results/data_issues"],
                      group="measure"))
    for n in files:
        steps.append(fit_step(f"fit_{n}", fitter(f"fit_{n}", [n]), measures=[n], writes=[f"fit_{n}_table"]))
    steps.append(fit_step("fit_both", fitter("fit_both", list(files)), measures=list(files), writes=["fit_both_table"]))
    store = TableStore(tmp_path / "store")
    store.put_value(CONFIG_INPUT, {"c": 1})
    store.put_value(RAW_INPUT, {"r": 1})
    store.put_value(OPTIONS_INPUT, {"on_invalid": "report"})
    engine = Engine(steps, store, external=[CONFIG_INPUT, RAW_INPUT, OPTIONS_INPUT])
    return engine, store, (M, R, V)


def test_a_header_only_file_removes_only_the_analyses_that_need_it(tmp_path):
    """Issue 24: a header-only input is a data issue recorded in results/data_issues; the measure and
    fit steps that need its table are removed, each with the reason; everything else runs."""
    from discbias.stages import removed_reason

    engine, store, (M, R, V) = _toy_engine(tmp_path, {"good": "x\n1\n2\n", "empty": "x\n"})
    ctx = dict(config=None, paths=None, on_invalid="report")
    ran = engine.run("measure", context=ctx)
    assert set(ran["status"]) == {"ran"}  # measure is not stopped
    assert removed_reason(store.get(M("empty"))) and removed_reason(store.get(M("good"))) is None
    issues = store.get(R("data_issues"))
    assert len(issues) == 1 and issues["file"].item() == "empty.csv" and issues["line"].item() == 2
    assert "header but no data rows" in issues["problem"].item() and "removed" in issues["action"].item()
    engine.run("fit", context=ctx)
    assert store.get_value(V("fit_good")) == dict(available=True, mean=1.5)
    for gone in ("fit_empty", "fit_both"):  # not run, with the reason naming the file
        v = store.get_value(V(gone))
        assert v["available"] is False and "empty.csv" in v["removed"]
        assert removed_reason(store.get(R(f"{gone}_table")))
        assert store.get_value(f"fitinfo/{gone}")["models"] == []


def test_a_file_whose_every_row_is_invalid_is_removed_the_same_way(tmp_path):
    from discbias.stages import removed_reason

    engine, store, (M, R, V) = _toy_engine(tmp_path, {"good": "x\n1\n", "bad": "x,valid\n1,False\n2,False\n"})
    ctx = dict(config=None, paths=None, on_invalid="report")
    engine.run("measure", context=ctx)
    engine.run("fit", context=ctx)
    assert "bad.csv has no usable data rows (every row of 2 is invalid)" == removed_reason(store.get(M("bad")))
    issues = store.get(R("data_issues"))
    assert len(issues) == 3 and (issues["problem"] == "every data row is invalid").sum() == 1
    assert store.get_value(V("fit_bad"))["available"] is False and store.get_value(V("fit_good"))["available"]


def test_a_removed_analysis_reads_not_available_in_the_paper(tmp_path):
    """The paper says where each number of a removed analysis would be; its tables and figures are
    placeholders; references to them read "(not available)"; nothing raises."""
    import sys

    import discbias.report.render  # noqa: F401

    r = sys.modules["discbias.report.render"]
    reason = "women.csv has no usable data rows (the file has a header but no data rows)"
    build = tmp_path / "build"
    paths = type("P", (), dict(values=build / "values.json", cache=build / "cache", report=build / "report",
                               tables=build / "tables", figures=build / "figures", results=build / "results",
                               build=build))()
    for d in (paths.cache, paths.report, paths.tables, paths.figures):
        d.mkdir(parents=True)
    paths.values.write_text(json.dumps({"authors": {"available": False, "removed": reason},
                                        "meta": {"removed": [{"section": "authors", "reason": reason}]}}))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "paper.qmd.j2").write_text(
        "---\ntitle: t\n---\n\n<% set a = values.authors %>"
        "n = << a.files.women.n | int >>; F = << a.anova.F | num(2) >>; sum << a.cells.values() | sum >>; "
        "<% if a.files %>never<% endif %><% for x in a.rows %>never<% endfor %> (@tbl-authors-ledger).\n\n"
        "<< table(\"authors_ledger\") >>\n\n![Cap](<< figure(\"authors_fig\") >>){#fig-a}\n")
    qmd = r.render_qmd(paths, tmp_path / "t")
    text = qmd.read_text()
    assert "never" not in text and text.count("not available") == 4  # n, F, the sum, the table
    html = r.render_html(qmd).read_text()
    assert "(not available)" in html and "[not available: analysis not run]" in html
def test_an_invalid_device_string_is_one_line():
    from discbias.errors import UserError
    from discbias.scoring.scorer import Scorer

    with pytest.raises(UserError, match="is not a device name"):
        Scorer("unused.pkl", device="cuda; touch MARKER")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("DISCBIAS_EXPENSIVE_TESTS"),
                    reason="a whole synthetic study from fetch to render (about 70 s alone): DISCBIAS_EXPENSIVE_TESTS=1 "
                           "(make test-all) runs it; the steps and the render are covered by the tests above")
def test_a_header_only_file_in_a_study_removes_its_analyses_and_the_paper_says_so(tmp_path, monkeypatch):
    """The issue's case end to end on a synthetic study: the Study 2 file is header-only. Every stage
    exits 0; results/data_issues.csv names the file; the analyses that need Study 2 are not run, each
    with the reason; those that only use it when present run without it and say so; Study 1 runs; the
    paper renders and says which analyses were not run."""
    import re

    from discbias.cli import main
    from discbias.studies.synthetic import make_synthetic_study

    cfg = make_synthetic_study(tmp_path / "s", n_ffhq=600, n_per_cell=6)
    root = cfg.parent.parent
    f = root / "mirror" / "study2.csv"
    old = hashlib.sha256(f.read_bytes()).hexdigest()
    f.write_text(f.read_text().splitlines()[0] + "\n")
    text = cfg.read_text().replace(old, hashlib.sha256(f.read_bytes()).hexdigest())
    cfg.write_text(re.sub(r'(file = "study2.csv"\nsha256 = "[0-9a-f]+"\nrows = )\d+', r"\g<1>0", text))
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("DISCBIAS_DATA_MIRROR", str(root / "mirror"))
    monkeypatch.setenv("DISCBIAS_TEMPLATES", str(repo / "report"))
    monkeypatch.setenv("DISCBIAS_NO_QUARTO", "1")
    args = ["--config", str(cfg), "--root", str(root)]
    for stage in ("fetch", "measure", "fit", "figures"):
        assert main([stage, *args]) == 0, stage
    issues = pd.read_csv(root / "build" / "results" / "data_issues.csv")
    row = issues[issues["file"].astype(str).str.contains("study2.csv")]
    assert len(row) == 1 and "header but no data rows" in row["problem"].item() and row["line"].item() == 2
    values = json.loads((root / "build" / "values.json").read_text())
    assert values["study2"]["available"] is False and "study2.csv has no usable data rows" in values["study2"]["removed"]
    assert values["study1"].get("available", True) is not False  # Study 1 ran
    removed = {g["section"]: g for g in values["meta"]["removed"]}
    assert "study2" in removed and not removed["study2"]["partial"]
    assert all(values["claims"][c]["verdict"] in ("not yet estimated", "not tested") for c in values["claims"]
               if c.startswith("S2-"))
    assert main(["render", *args, "--draft"]) == 0
    html = (root / "build" / "report" / "paper.html").read_text()
    assert "Analyses not run for data issues" in html and "study2.csv has no usable data rows" in html
    assert "not available" in html
