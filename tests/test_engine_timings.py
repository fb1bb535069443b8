"""The engine's timings: one row per step in timings.csv (wall, CPU, last real run), and the table
`make report` prints at its end."""

import time

import pandas as pd

from discbias.engine import TIMING_COLUMNS, Engine, Step, TableStore, read_timings


def _engine(tmp_path, sleep=0.3):
    def slow(ctx):
        time.sleep(sleep)
        ctx.write_value("a", 1)

    def spin(ctx):  # CPU time, not sleep
        t0 = time.process_time()
        while time.process_time() - t0 < 0.05:
            pass
        ctx.write_value("b", ctx.read_value("a") + 1)

    steps = [Step("one", slow, writes=["a"], group="measure", version="1"),
             Step("two", spin, reads=["a"], writes=["b"], group="fit", version="1")]
    return Engine(steps, TableStore(tmp_path / "store"), manifests=tmp_path / "engine" / "manifests")


def test_timings_file_rows_and_rerun(tmp_path):
    e = _engine(tmp_path)
    e.run("measure")
    e.run("fit")
    path = tmp_path / "engine" / "timings.csv"
    assert e.timings_path == path and path.exists()
    t = read_timings(path)
    assert list(t.columns) == TIMING_COLUMNS and t["step"].tolist() == ["one", "two"]
    assert t["stage"].tolist() == ["measure", "fit"] and (t["status"] == "ran").all()
    # sleeping uses no CPU: the step's CPU time is its bookkeeping only (a few hundredths of a second,
    # more on a busy machine), far below the 0.3 s it slept
    assert t.loc[0, "seconds"] >= 0.29 and t.loc[0, "cpu_seconds"] < t.loc[0, "seconds"] - 0.15
    assert t.loc[1, "cpu_seconds"] >= 0.04
    assert t.loc[0, "run_started"] != "" and t.loc[0, "last_ran_seconds"] == t.loc[0, "seconds"]
    first = float(t.loc[0, "seconds"])
    e.run("measure")  # unchanged: skipped, the last real run's time is kept
    t = e.timings()
    row = t[t["step"] == "one"].iloc[0]
    assert row["status"] == "skipped" and row["seconds"] == 0 and abs(row["last_ran_seconds"] - first) < 1e-3
    assert t[t["step"] == "two"].iloc[0]["status"] == "ran"  # the other stage's row is untouched


def test_timings_report_has_each_stage_and_step(tmp_path):
    e = _engine(tmp_path)
    e.run()
    text = e.timings_report()
    lines = text.splitlines()
    assert lines[0].startswith("time per stage and step")
    assert any(ln.split()[0] == "measure" and "1 of 1 step(s) ran" in ln for ln in lines[1:])
    assert any(ln.split()[0] == "one" for ln in lines) and any(ln.split()[0] == "two" for ln in lines)
    total = float(next(ln for ln in lines if ln.split()[0] == "total").split()[1])
    assert abs(total - float(e.timings()["seconds"].sum())) < 0.1
    assert "fit" not in e.timings_report(stages=["measure"]).split("\n", 1)[1]


def test_unreadable_timings_file_is_reported_and_rewritten(tmp_path, capsys):
    e = _engine(tmp_path)
    e.timings_path.parent.mkdir(parents=True)
    e.timings_path.write_bytes(b"\xff\xfe\x00garbage")
    e.run()
    assert "unreadable timings file" in capsys.readouterr().err
    assert e.timings()["step"].tolist() == ["one", "two"]
    e.timings_path.write_text("x,y\n1,2\n")  # another layout: ignored, then replaced
    e.run(force=True)
    assert pd.read_csv(e.timings_path).columns.tolist() == TIMING_COLUMNS
