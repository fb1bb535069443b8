"""The planted study's training and audit steps are versioned by the modules that run when a network
is trained (planted.runs.TRAINING_MODULES) or audited (planted.auditing.AUDIT_MODULES), not by their
import closure: each list must cover every discbias module whose functions run, or an edit to that
module would not rerun the step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from discbias.engine import code_version, modules_version
from discbias.planted.auditing import AUDIT_MODULES, audit_step, audit_version
from discbias.planted.runs import TRAINING_MODULES, train_step, training_version

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter (nothing of discbias imported before the profiler starts). Records the
# module of every discbias function that runs, except code run while a module is being imported
# (module and class bodies, dataclass machinery): a module only imported defines names, the modules
# whose functions run compute the results. "train": a training and save; "audit": the audit of the
# trained network (trained first, outside the profile).
PROBE = textwrap.dedent("""
    import inspect, json, sys, tempfile
    ran = set()
    def prof(frame, event, arg):
        if event != "call":
            return
        name = frame.f_globals.get("__name__", "")
        if not name.startswith("discbias") or not frame.f_code.co_flags & inspect.CO_OPTIMIZED:
            return
        f = frame.f_back
        while f is not None:  # code run by an import statement (a module body) does not count
            if f.f_code.co_name == "<module>" and f.f_globals.get("__name__") != "__main__":
                return
            f = f.f_back
        ran.add(name)
    mode = sys.argv[1]
    settings = dict(resolution=16, n_train=32, steps=4, batch_size=8, lr=0.0025, r1_gamma=0.1, r1_interval=2,
                    exposure_sd=0.5, red_sd=0.25, threads=1, n_heldout=20, heldout_exposure_sd=0.6,
                    heldout_red_sd=0.3, n_probe_bases=3, exposure_levels=[-1.0, 1.0], red_levels=[-0.5, 0.5],
                    sesoi=0.2, network=dict(architecture="resnet", channel_base=64, channel_max=8))
    cond = dict(id="c", luminance_shift=0.5, redness_shift=0.25, minority_share=0.3, fake_share=0.5)
    d = tempfile.mkdtemp()
    if mode == "audit":
        from discbias.planted.runs import train_one
        train_one(cond, settings, 0, d + "/s0.pkl", "c/s0.pkl")
    sys.setprofile(prof)
    try:
        if mode == "train":
            from discbias.planted.runs import train_one
            train_one(cond, settings, 0, d + "/s0.pkl", "c/s0.pkl")
        else:
            from discbias.planted.auditing import audit_one
            audit_one(cond, settings, 0, d + "/s0.pkl", d + "/audit")
    finally:
        sys.setprofile(None)
    print(json.dumps(sorted(ran)))
""")


def _ran(mode: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_training_version_covers_every_module_that_runs_during_training():
    ran = _ran("train")
    # the probe saw the training (not vacuous) ...
    assert {"discbias.planted.train", "discbias.planted.data", "discbias.planted.checkpoint",
            "discbias.nets.layers", "discbias.nets.discriminator"} <= ran
    # ... and every module whose code ran is in the declared version
    missing = sorted(ran - set(TRAINING_MODULES))
    assert not missing, (f"discbias modules ran during a training but are not in planted.runs.TRAINING_MODULES: "
                         f"{missing}; add them (an edit to them must retrain)")


@pytest.mark.slow  # audits a tiny network in a fresh interpreter under a profiler (about 15-30 s)
def test_the_audit_version_covers_every_module_that_runs_during_an_audit():
    ran = _ran("audit")
    assert {"discbias.planted.auditing", "discbias.audit.run", "discbias.scoring.scorer", "discbias.claims",
            "discbias.nets.layers", "discbias.probes.model", "discbias.stats.regression"} <= ran
    missing = sorted(ran - set(AUDIT_MODULES))
    assert not missing, (f"discbias modules ran during an audit but are not in planted.auditing.AUDIT_MODULES: "
                         f"{missing}; add them (an edit to them must re-audit)")


def test_the_steps_use_the_declared_versions_and_they_are_narrower():
    from discbias.planted.config import load_planted_config
    from discbias.planted.study import PlantedPaths, planted_engine

    cfg = load_planted_config(REPO / "analysis" / "planted-quick.toml")
    eng = planted_engine(cfg, PlantedPaths(tempfile.mkdtemp(), cfg.id))
    train = [s for s in eng.steps if s.name.startswith("planted:train:")]
    assert train and all(s.version == training_version() for s in train)
    audit = [s for s in eng.steps if s.name.startswith("planted:audit:")]
    assert audit and all(s.version == audit_version() for s in audit)
    # the default (the import closure) would include the study configuration and the downloader
    assert code_version(train_step) != training_version() and code_version(audit_step) != audit_version()
    assert not {"discbias.config", "discbias.fetch", "discbias.planted.study"} & set(TRAINING_MODULES)
    assert not {"discbias.config", "discbias.report.render", "discbias.stats.bayes"} & set(AUDIT_MODULES)


def test_modules_version_changes_with_a_listed_module_only(tmp_path, monkeypatch):
    pkg = tmp_path / "vpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("X = 1\n")
    (pkg / "b.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    v = modules_version(["vpkg.a"])
    (pkg / "b.py").write_text("Y = 2\n")
    assert modules_version(["vpkg.a"]) == v
    (pkg / "a.py").write_text("X = 2\n")
    assert modules_version(["vpkg.a"]) != v
