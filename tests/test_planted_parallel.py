"""The planted-bias study's seeds in worker processes ([planted] workers): the same checkpoints and
tables as one after another, rows in seed order, a failing seed named with the finished ones kept."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from discbias.planted.config import load_planted_config
from discbias.planted.parallel import SeedError, map_seeds, shutdown_pool
from discbias.planted.study import PlantedPaths, planted_engine

TINY = """
[planted]
id = "tiny"
resolution = 16
seeds = 3
n_train = 64
steps = 8
batch_size = 8
n_heldout = 20
n_probe_bases = 3
threads = 1
workers = {workers}

[planted.network]
channel_base = 64
channel_max = 8

[[planted.conditions]]
id = "unplanted"
"""


def _run(root: Path, workers: int, logs: list[str] | None = None, groups=("train", "audit")):
    cfg_path = root / "analysis" / "tiny.toml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(textwrap.dedent(TINY.format(workers=workers)))
    cfg = load_planted_config(cfg_path)
    paths = PlantedPaths(root, cfg.id).ensure()
    eng = planted_engine(cfg, paths, formats=())
    steps = eng.run(list(groups), context=dict(config=cfg, paths=paths, formats=(),
                                                     log=(logs.append if logs is not None else None)))
    return eng, paths, steps


def _tables(eng):
    # wall time: the one column that may differ
    return {t: eng.store.get(t).drop(columns=["seconds", "cpu_seconds", "load_average"], errors="ignore") for t in
            ("planted/runs/unplanted", "planted/train_log/unplanted", "planted/detections/unplanted",
             "planted/training_comparison/unplanted")}


@pytest.mark.slow  # trains and audits 2 x 3 tiny discriminators (about 30-60 s on 2 cores)
def test_workers_give_the_results_of_the_serial_run(tmp_path):
    logs: list[str] = []
    e1, p1, s1 = _run(tmp_path / "serial", 1)
    e2, p2, s2 = _run(tmp_path / "parallel", 2, logs)
    try:
        assert (s1["status"] == "ran").all() and (s2["status"] == "ran").all()
        t1, t2 = _tables(e1), _tables(e2)
        for name in t1:
            pd.testing.assert_frame_equal(t1[name], t2[name], check_exact=True, obj=name)
        runs = t2["planted/runs/unplanted"]
        assert runs["seed"].tolist() == [0, 1, 2]  # seed order, whatever order the workers finished in
        assert t2["planted/detections/unplanted"]["seed"].tolist() == [0] * 5 + [1] * 5 + [2] * 5
        for r in runs.to_dict("records"):  # byte-identical checkpoints, recorded in the step's manifest
            a, b = p1.build / r["checkpoint"], p2.build / r["checkpoint"]
            assert a.read_bytes() == b.read_bytes()
        manifest = json.loads((p2.manifests / "planted:train:unplanted.json").read_text())
        assert sorted(Path(f).name for f in json.dumps(manifest).split('"') if f.endswith(".pkl")) \
            == ["s0.pkl", "s1.pkl", "s2.pkl"]
        assert sum(s.startswith("trained unplanted seed") for s in logs) == 3
        assert sum(s.startswith("audited unplanted seed") for s in logs) == 3
        assert not list((p2.build / "checkpoints" / "unplanted").glob("*.done.json"))  # removed on success
    finally:
        shutdown_pool()


@pytest.mark.slow  # trains 3 + 1 tiny discriminators (about 10-20 s)
def test_a_failing_seed_is_named_and_the_finished_ones_are_kept(tmp_path):
    root = tmp_path / "p"
    folder = root / "build" / "tiny" / "checkpoints" / "unplanted"
    (folder / "s1.pkl").mkdir(parents=True)  # seed 1 cannot save its checkpoint (a folder is in the way)
    logs: list[str] = []
    try:
        with pytest.raises(SeedError, match=r"planted:train:unplanted: seed 1 failed \(2 of 3 finished: "
                                            r"seeds \[0, 2\]\); seed 1: IsADirectoryError") as err:
            _run(root, 2, groups=["train"])
        assert err.value.finished == [0, 2] and list(err.value.failed) == [1]
        assert {p.name for p in folder.glob("*.done.json")} == {"s0.done.json", "s2.done.json"}
        (folder / "s1.pkl").rmdir()
        eng, paths, steps = _run(root, 2, logs, groups=["train"])  # the rerun trains seed 1 only
        assert sorted(s.split(" seed ")[1].split(":")[0] for s in logs if s.startswith("reusing")) == ["0", "2"]
        assert [s for s in logs if s.startswith("trained")] and all("seed 1 " in s for s in logs
                                                                    if s.startswith("trained"))
        assert eng.store.get("planted/runs/unplanted")["seed"].tolist() == [0, 1, 2]
        assert not list(folder.glob("*.done.json"))
    finally:
        shutdown_pool()


def _fail_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x * 10


def test_map_seeds_keeps_order_and_names_every_failed_seed():
    assert map_seeds(_fail_on_odd, [(s, (2 * s,)) for s in range(4)], workers=1, label="t") == [0, 20, 40, 60]
    with pytest.raises(SeedError, match=r"t: seeds 1, 3 failed \(2 of 4 finished: seeds \[0, 2\]\); seed 1: "
                                        r"ValueError: odd 1") as err:
        map_seeds(_fail_on_odd, [(s, (s,)) for s in range(4)], workers=1, label="t")
    assert sorted(err.value.failed) == [1, 3]
