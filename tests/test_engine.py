"""The engine of declared steps (discbias.engine) on toy steps."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from discbias.engine import (DeclarationError, Engine, MissingInputError, Step, StepError, TableStore,
                             code_version)


def _src(ctx):
    ctx.write("a", ctx.read("raw").assign(x=lambda d: d["x"] + 1))


def _twice(ctx):
    ctx.write("b", ctx.read("a").assign(x=lambda d: d["x"] * 2))


def _sum(ctx):
    ctx.write_value("s", {"sum": float(ctx.read("b")["x"].sum())})


def _other(ctx):
    ctx.write("c", ctx.read("raw").assign(y=1))


@pytest.fixture
def store(tmp_path):
    s = TableStore(tmp_path / "store")
    s.put("raw", pd.DataFrame({"x": [1.0, 2.0]}))
    return s


def _engine(store, steps=None, **kw):
    steps = steps or [Step("sum", _sum, reads=["b"], writes=["s"], version="1"),
                      Step("twice", _twice, reads=["a"], writes=["b"], version="1"),
                      Step("other", _other, reads=["raw"], writes=["c"], version="1"),
                      Step("src", _src, reads=["raw"], writes=["a"], version="1")]
    return Engine(steps, store, external=["raw"], **kw)


def test_one_writer_per_table(store):
    with pytest.raises(DeclarationError, match=r"table 'a' has two writers: step 'src' and step 'dup'"):
        Engine([Step("src", _src, reads=["raw"], writes=["a"]), Step("dup", _other, writes=["x", "a"])],
               store, external=["raw"])
    # an optional output counts as a writer too
    with pytest.raises(DeclarationError, match="two writers"):
        Engine([Step("p", _src, writes=["a"]), Step("q", _src, optional_writes=["a"])], store)
    # an external table cannot also be written
    with pytest.raises(DeclarationError, match="declared external but step 'src' writes it"):
        Engine([Step("src", _src, writes=["raw"])], store, external=["raw"])


def test_unwritten_input_is_a_declaration_error(store):
    with pytest.raises(DeclarationError, match=r"step 'twice' reads table 'a', which no step writes"):
        Engine([Step("twice", _twice, reads=["a"], writes=["b"])], store)
    with pytest.raises(DeclarationError, match=r"reads table 'zz'"):
        Engine([Step("o", _other, optional_reads=["zz"], writes=["c"])], store)


def test_cycle_and_duplicates_refused(store):
    with pytest.raises(DeclarationError, match=r"cycle: 'p' -> 'q' -> 'p'"):
        Engine([Step("p", _src, reads=["b"], writes=["a"]), Step("q", _twice, reads=["a"], writes=["b"])], store)
    with pytest.raises(DeclarationError, match="two steps are named 'p'"):
        Engine([Step("p", _src, writes=["a"]), Step("p", _twice, writes=["b"])], store)
    with pytest.raises(DeclarationError, match="both reads and writes"):
        Step("p", _src, reads=["a"], writes=["a"])


def test_order_is_derived_and_stable(store):
    e = _engine(store)
    assert e.order() == ["src", "twice", "sum", "other"]
    # the same declarations in another order give a valid order; ties keep declaration order
    steps = list(reversed(e.steps))
    e2 = Engine(steps, store, external=["raw"])
    order = e2.order()
    assert order.index("src") < order.index("twice") < order.index("sum")
    assert order == ["src", "other", "twice", "sum"]
    assert Engine(steps, store, external=["raw"]).order() == order  # deterministic


def test_rerun_only_what_changed(store):
    e = _engine(store)
    first = e.run()
    assert first["status"].tolist() == ["ran"] * 4
    assert store.get_value("s") == {"sum": (2 + 3) * 2.0}
    assert e.run()["status"].tolist() == ["skipped"] * 4
    # a new engine (a new process) reads the manifests from disk: still nothing to do
    again = _engine(TableStore(store.root))
    assert again.run()["status"].tolist() == ["skipped"] * 4

    # code version of one step changes: it reruns; its output is byte-identical so the next does not
    steps = [Step(s.name, s.run, reads=s.reads, writes=s.writes, version="2" if s.name == "twice" else "1")
             for s in e.steps]
    r = Engine(steps, store, external=["raw"]).run().set_index("step")
    assert r.loc["twice", "status"] == "ran" and r.loc["twice", "reason"] == "code changed"
    assert r.loc["sum", "status"] == "skipped" and r.loc["src", "status"] == "skipped"

    # an output is deleted: its writer reruns
    store.path("a").unlink()
    r = Engine(steps, TableStore(store.root), external=["raw"]).run().set_index("step")
    assert r.loc["src", "reason"] == "output a missing"
    assert r.loc["twice", "status"] == "skipped"  # a was rewritten with the same bytes

    # input content changes: exactly the steps downstream of it rerun
    store.put("raw", pd.DataFrame({"x": [10.0, 2.0]}))
    r = Engine(steps, store, external=["raw"]).run().set_index("step")
    assert r["status"].to_dict() == {"src": "ran", "twice": "ran", "sum": "ran", "other": "ran"}
    assert r.loc["twice", "reason"] == "input a changed"
    assert store.get_value("s") == {"sum": (11 + 3) * 2.0}


def test_group_run_and_missing_input(store, tmp_path):
    steps = [Step("src", _src, reads=["raw"], writes=["a"], version="1", group="measure"),
             Step("twice", _twice, reads=["a"], writes=["b"], version="1", group="fit")]
    e = Engine(steps, store, external=["raw"])
    with pytest.raises(MissingInputError, match=r"step 'twice' needs table 'a'.*run step 'src' \(group 'measure'\)"):
        e.run("fit")
    assert e.run("measure")["step"].tolist() == ["src"]
    assert e.run("fit")["status"].tolist() == ["ran"]
    empty = TableStore(tmp_path / "empty")
    with pytest.raises(MissingInputError, match="external input"):
        Engine(steps, empty, external=["raw"]).run()


def test_undeclared_read_write_and_unwritten_output(store):
    def sneaky_read(ctx):
        ctx.read("raw")

    def sneaky_write(ctx):
        ctx.write("a", ctx.read("raw"))
        ctx.write("zz", ctx.read("raw"))

    with pytest.raises(StepError, match="read 'raw', which it does not declare"):
        Engine([Step("s", sneaky_read, writes=[])], store, external=["raw"]).run()
    with pytest.raises(StepError, match="wrote 'zz', which it does not declare"):
        Engine([Step("s", sneaky_write, reads=["raw"], writes=["a"])], store, external=["raw"]).run()
    with pytest.raises(StepError, match=r"did not write 'b'"):
        Engine([Step("s", _src, reads=["raw"], writes=["a", "b"])], store, external=["raw"]).run()


def test_optional_outputs_and_params(store):
    calls = []

    def maybe(ctx):
        calls.append(1)
        if ctx.extra.get("make"):
            ctx.write("opt", ctx.read("raw"))
        ctx.write("a", ctx.read("raw"))

    def mk(make):
        return Engine([Step("m", maybe, reads=["raw"], writes=["a"], optional_writes=["opt"], version="1",
                            params={"make": make})], store, external=["raw"])

    mk(True).run(context={"make": True})
    assert store.exists("opt")
    assert mk(True).run(context={"make": True})["status"].tolist() == ["skipped"]
    r = mk(False).run(context={"make": False})
    assert r["reason"].tolist() == ["parameters changed"]
    assert not store.exists("opt")  # an optional output not made this time is removed, not left stale
    assert len(calls) == 2


def test_manifest_records_digests(store):
    e = _engine(store)
    e.run()
    m = json.loads(e.manifest_path("twice").read_text())
    assert m["inputs"] == {"a": store.digest("a")} and m["outputs"] == {"b": store.digest("b")}
    assert m["version"] == "1"
    assert set(e.declarations()["role"]) == {"reads", "writes"}
    e.invalidate(["twice"])
    assert e.status().set_index("step").loc["twice", "reason"] == "never ran"


def test_claims_are_collected_in_run_order(store):
    e = Engine([Step("b", _twice, reads=["a"], writes=["b"], claims=["C2"]),
                Step("a", _src, reads=["raw"], writes=["a"], claims=["C1"])], store, external=["raw"])
    assert e.claims() == ["C1", "C2"]


def test_store_layout_and_code_version(tmp_path):
    s = TableStore(tmp_path, layout=lambda n, k: f"t/{n}.parquet" if k == "table" else f"{n}.json")
    df = pd.DataFrame({"x": [0.1, 0.2]})
    s.put("r", df)
    assert (tmp_path / "t" / "r.parquet").exists()
    assert TableStore(tmp_path, layout=s.layout).get("r").equals(df)
    with pytest.raises(ValueError, match="exact Parquet"):
        TableStore(tmp_path, layout=lambda n, k: f"{n}.csv").put("r", df)
    with pytest.raises(MissingInputError, match="nope"):
        s.get("nope")
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        s.put("r", [1, 2])
    # the default version follows the module's source
    assert Step("x", _src).version == code_version(_src) == code_version(__import__(__name__))


def test_a_later_process_reads_the_frame_the_step_wrote_without_pickles(tmp_path):
    from discbias.frames import identical

    df = pd.DataFrame({"note": pd.Series(["", None, float("nan")], dtype=object), "flag": [True, False, True],
                       "n": [1, 2, 3], "c": pd.Categorical(["a", "b", "a"])})
    TableStore(tmp_path).put("r", df)
    # a new process (a new store) reads the exact frame back from Parquet: '' stays '', None is not NaN
    back = TableStore(tmp_path).get("r")
    assert identical(back, df) and back.loc[0, "note"] == "" and back.loc[1, "note"] is None
    assert not list(tmp_path.rglob("*.pkl"))


def test_recorded_files_rerun_their_step_when_missing_or_changed(tmp_path):
    import os

    store = TableStore(tmp_path / "store")
    out = tmp_path / "store" / "fig.svg"
    out.parent.mkdir()

    def draw(ctx):
        out.write_text("<svg/>")
        ctx.wrote_file(out)
        ctx.write_value("figures/x", {"saved": ["fig"]})

    e = Engine([Step("draw", draw, writes=["figures/x"])], store)
    assert e.run()["status"].tolist() == ["ran"]
    assert e.run()["status"].tolist() == ["skipped"]
    out.unlink()
    assert e.status()["reason"].tolist() == ["file fig.svg missing"]
    assert e.run()["status"].tolist() == ["ran"]
    out.write_text("<svg>edited</svg>")
    assert e.status()["reason"].tolist() == ["file fig.svg changed outside the step"]
    e.run()
    os.utime(out, ns=(1, 1))  # touched, same bytes: no rerun
    assert e.status()["reason"].tolist() == [None]
