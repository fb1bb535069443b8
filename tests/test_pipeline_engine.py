"""The replication as declared steps on the engine: one writer per table, order, reruns, strict contexts."""

from __future__ import annotations

import pandas as pd
import pytest

from discbias.config import load_config
from discbias.engine import Engine, StepError, TableStore
from discbias.paths import project_paths
from discbias.pipeline import analysis_claims, build_engine, run_fetch, run_measure
from discbias.stages import CONFIG_INPUT, fit_step


def test_every_table_has_one_writer_and_the_stages_are_groups(synthetic_study):
    cfg = load_config(synthetic_study)
    e = build_engine(cfg, project_paths(synthetic_study.parent.parent))
    assert e.groups() == ["fetch", "measure", "fit", "figures", "render"]
    decl = e.declarations()
    writers = decl[decl["role"].isin(["writes", "optional_writes"])].groupby("table")["step"].nunique()
    assert (writers == 1).all()
    # the adapters' tables and the score-cache tables the analyses fit are different tables
    assert e.writer("released/ffhq_scores") == "study1:adapt"
    assert e.writer("measures/ffhq_scores") == "rescoring:import"
    assert e.writer("released/study2_images") == "study2:adapt"
    assert e.writer("measures/study2_images") == "rescoring:import"
    assert e.writer("values") == "fit:values" and e.writer("results/claims") == "fit:claims"
    order = e.order()
    assert order.index("rescoring:import") < order.index("study1") < order.index("fit:claims")
    assert order.index("study2") < order.index("models") < order.index("authors")  # models read study2's OLS
    assert [c.claim_id for c in e.claims()] == [c.claim_id for c in analysis_claims()]
    # every analysis's figures are a step of the figures group
    assert {"study1:figures", "models:figures", "figures:common"} <= set(e.order("figures"))


def test_measure_reruns_only_what_changed(tmp_path):
    from discbias.studies.synthetic import make_synthetic_study

    cfg_path = make_synthetic_study(tmp_path, n_ffhq=300, n_per_cell=3)
    cfg, paths = load_config(cfg_path), project_paths(tmp_path)
    import os

    os.environ["DISCBIAS_DATA_MIRROR"] = str(tmp_path / "mirror")
    try:
        run_fetch(cfg, paths, allow_download=False)
    finally:
        os.environ.pop("DISCBIAS_DATA_MIRROR")
    tables = run_measure(cfg, paths)
    assert "score_provenance" in tables["ffhq_scores"]  # the score-cache table, not the adapter's
    released = pd.read_parquet(paths.engine / "store" / "released" / "ffhq_scores.parquet")
    assert "score_provenance" not in released and len(released) == len(tables["ffhq_scores"])
    e = build_engine(cfg, paths)
    status = e.status("measure")
    assert status["reason"].isna().all(), status
    # an output removed behind the engine's back: only its writer and the steps reading it rerun
    (paths.measures / "top_bottom.parquet").unlink()
    assert e.status("measure").set_index("step").loc["study1:adapt", "reason"] == "output measures/top_bottom missing"
    run_measure(cfg, paths)
    m = {s: e.manifest(s) for s in e.order("measure")}
    assert (paths.measures / "top_bottom.parquet").exists()
    assert e.status("measure")["reason"].isna().all()
    # another invalid-value policy is an input of every adapter: they all rerun
    run_measure(cfg, paths, on_invalid="error")
    m2 = {s: e.manifest(s) for s in e.order("measure")}
    adapters = [s for s in m if "inputs/measure_options" in m[s]["inputs"]]
    assert {"study1:adapt", "study2:adapt", "rescoring:import"} <= set(adapters)
    assert all(m2[s]["inputs"]["inputs/measure_options"] != m[s]["inputs"]["inputs/measure_options"] for s in adapters)
    assert m2["measure:provenance"] == m["measure:provenance"]  # reads neither: not rerun


def test_fit_steps_see_only_their_declared_tables(tmp_path):
    store = TableStore(tmp_path)
    store.put("measures/a", pd.DataFrame({"x": [1.0]}))
    store.put("measures/b", pd.DataFrame({"x": [2.0]}))
    store.put_value(CONFIG_INPUT, {"config": "c"})

    def sneaky(ctx):
        ctx.values["toy"] = {"n": len(ctx.measures["a"])}
        ctx.measures["b"]  # not declared

    def honest(ctx):
        ctx.values["toy"] = {"n": len(ctx.measures["a"]), "has_b": "b" in ctx.measures}
        ctx.results["toy_table"] = ctx.measures["a"]
        ctx.add_model("m", "toy", "x ~ 1")

    ctx = dict(config=None, paths=None)
    with pytest.raises(StepError, match=r"step 'toy' used measures/b, which it does not declare"):
        Engine([fit_step("toy", sneaky, measures=["a"])], store, external=["measures/a", "measures/b", CONFIG_INPUT]
               ).run(context=ctx)
    e = Engine([fit_step("toy", honest, measures=["a"], optional_measures=["b"], writes=["toy_table"])], store,
               external=["measures/a", "measures/b", CONFIG_INPUT])
    e.run(context=ctx)
    assert store.get_value("values/toy") == {"n": 1, "has_b": True}
    assert store.get("results/toy_table")["x"].tolist() == [1.0]
    assert dict(store.get_value("fitinfo/toy")["models"][0])["model"] == "m"

    def writes_undeclared(ctx):
        ctx.values["toy"] = {}
        ctx.results["other"] = ctx.measures["a"]

    with pytest.raises(StepError, match="wrote results/other, which it does not declare"):
        Engine([fit_step("toy", writes_undeclared, measures=["a"])], store,
               external=["measures/a", CONFIG_INPUT]).run(context=ctx)


def test_the_synthetic_build_is_up_to_date_for_the_engine(synthetic_build, synthetic_study):
    """After fetch -> render, nothing needs a rerun: measure, fit, the published CSVs, the figures and
    the paper (whose files the figure and render steps recorded) are all up to date."""
    e = build_engine(load_config(synthetic_study), project_paths(synthetic_build))
    status = e.status(["measure", "fit", "figures", "render"]).set_index("step")["reason"]
    assert status.isna().all(), status.dropna().to_dict()
    assert {"publish:results", "render"} <= set(status.index)
    assert not list((synthetic_build / "build").rglob("*.pkl"))  # no pickled copies of any table


def test_steps_command_lists_the_declarations(synthetic_study, capsys):
    import json

    from discbias.cli import main

    root = synthetic_study.parent.parent
    assert main(["steps", "--config", str(synthetic_study), "--root", str(root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    writes = {(r["step"], r["table"]) for r in rows if r["role"] in ("writes", "optional_writes")}
    assert ("rescoring:import", "measures/ffhq_scores") in writes and ("study1:adapt", "released/ffhq_scores") in writes
    assert main(["steps", "--config", str(synthetic_study), "--root", str(root)]) == 0
    assert "fit:claims" in capsys.readouterr().out


def test_figure_steps_rerun_only_when_a_saved_file_is_missing(tmp_path):
    """A figure step records the files it saved (figure:x -> x.svg/.pdf/.png, table:t -> t.*) in its
    manifest: deleting or editing one reruns that step and no other; an unchanged build skips both."""
    from discbias.stages import figure_step

    paths = project_paths(tmp_path)
    paths.ensure()

    def fig_a(fctx):
        for ext in ("svg", "pdf", "png"):
            (fctx.paths.figures / f"f1.{ext}").write_text(ext)
        (fctx.paths.tables / "t1.csv").write_text("x\n1\n")
        (fctx.paths.tables / "t1.md").write_text("| x |")
        fctx.saved += ["figure:f1", "table:t1"]

    def fig_b(fctx):
        (fctx.paths.figures / "f2.svg").write_text("svg")
        fctx.saved.append("figure:f2")

    store = TableStore(paths.build)
    store.put_value(CONFIG_INPUT, {"c": 1})
    store.put_value("values", {"v": 1})
    engine = Engine([figure_step("a:figures", fig_a), figure_step("b:figures", fig_b)], store,
                    external=[CONFIG_INPUT, "values"])
    ctx = dict(config=None, paths=paths)
    assert engine.run(context=ctx)["status"].tolist() == ["ran", "ran"]
    assert engine.run(context=ctx)["status"].tolist() == ["skipped", "skipped"]
    (paths.tables / "t1.md").unlink()
    ran = engine.run(context=ctx).set_index("step")
    assert ran["status"].to_dict() == {"a:figures": "ran", "b:figures": "skipped"}
    assert ran.loc["a:figures", "reason"] == "file tables/t1.md missing"
    (paths.figures / "f2.svg").write_text("edited")
    ran = engine.run(context=ctx).set_index("step")
    assert ran["status"].to_dict() == {"a:figures": "skipped", "b:figures": "ran"}
