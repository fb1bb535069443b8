"""The engine's refactoring leaves the replication's results as they were (issue 21).

The synthetic study (released schema, generated at run time) is built twice, each in its own
temporary project: by the code of a baseline revision (``git archive`` of its ``src/``; by default
``main``, or ``$DISCBIAS_BASELINE_REF``) and by this working tree's code, each in a child process
with its own ``PYTHONPATH``. Every ``results/*.csv`` cell and every ``values.json`` entry must
agree at the numbers' precision, as ``discbias verify`` compares a rebuild with a bundle
(:mod:`discbias.reproduce.verify`, the study's ``[verify]`` tolerances): deterministic numbers to
``rtol`` (1e-9), iterative fits to ``rtol_iterative``, posterior summaries within their Monte
Carlo error (the sampler's draws are not bit-reproducible from one process to another: a
non-converging model's chains differ between two runs of the same code), bootstrap results
within their resampling error; text exactly; the set of tables the same. On the released data
the same check runs with ``DISCBIAS_DATA_MIRROR`` set and ``DISCBIAS_EXPENSIVE_TESTS=1`` (the
second test). ``python -m discbias.reproduce.compare A B`` is the bit-for-bit comparison.

Run it on a branch before merging it (the baseline is then the branch's base); on ``main`` itself
it compares ``main`` with its own working tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import io
from pathlib import Path

import pytest

import json

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
STAGES = ("fetch", "measure", "fit")  # results/*.csv and values.json are complete after fit


def _baseline_ref() -> str | None:
    ref = os.environ.get("DISCBIAS_BASELINE_REF", "main")
    for candidate in (ref, f"origin/{ref}"):
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.strip()
    return None


def _export_src(commit: str, dest: Path) -> Path:
    """The baseline's ``src/`` (no checkout, no worktree: ``git archive``)."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        tf.extractall(dest, filter="data")
    return dest / "src"


def differences(a: Path, b: Path, config: Path) -> list[dict]:
    """Every cell of build ``b``'s results and values that differs from build ``a``'s beyond the
    numbers' precision (:func:`discbias.reproduce.verify.compare_table`, as ``discbias verify``)."""
    from discbias.config import load_config
    from discbias.reproduce.verify import Tolerances, _inherited_index, compare_table, compare_values

    tol = Tolerances.from_config(load_config(config))
    ta = {p.stem: pd.read_csv(p) for p in sorted((a / "results").glob("*.csv"))}
    tb = {p.stem: pd.read_csv(p) for p in sorted((b / "results").glob("*.csv"))}
    inherited = _inherited_index(ta, tb, tol)
    out = [dict(table=n, rule="table in one build only") for n in sorted(set(ta) ^ set(tb))]
    for name in sorted(set(ta) & set(tb)):
        out += compare_table(name, ta[name], tb[name], tol, inherited)[1]
    out += compare_values(json.loads((a / "values.json").read_text()), json.loads((b / "values.json").read_text()),
                          tol, inherited)[1]
    return out


def _build(src: Path, root: Path, config: Path, mirror: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=str(src), DISCBIAS_DATA_MIRROR=str(mirror), DISCBIAS_NO_QUARTO="1",
               DISCBIAS_CACHE_DIR=str(root / "score-cache"), XDG_CACHE_HOME=str(root / "xdg-cache"))
    env.pop("DISCBIAS_ROOT", None)
    for stage in STAGES:
        code = ("import sys; from discbias.cli import main; "
                f"sys.exit(main([{stage!r}, '--config', {str(config)!r}, '--root', {str(root)!r}]))")
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"{src}: discbias {stage} failed:\n{r.stderr[-3000:]}"
    return root / "build"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DISCBIAS_EXPENSIVE_TESTS") != "1",
                    reason="builds the synthetic study twice (several minutes; a check for refactors that must not "
                           "change results, against DISCBIAS_BASELINE_REF or main): `make test-all` or "
                           "DISCBIAS_EXPENSIVE_TESTS=1 runs it")
def test_synthetic_results_equal_the_baseline_revisions(tmp_path):
    from discbias.studies.synthetic import make_synthetic_study

    commit = _baseline_ref()
    if commit is None:
        pytest.skip("no baseline revision (set DISCBIAS_BASELINE_REF to a commit of this repository)")
    study = tmp_path / "study"
    config = make_synthetic_study(study, n_ffhq=300, n_per_cell=3)
    mirror = study / "mirror"
    base_src = _export_src(commit, tmp_path / "baseline")
    a = _build(base_src, tmp_path / "a", config, mirror)
    b = _build(REPO / "src", tmp_path / "b", config, mirror)
    diffs = differences(a, b, config)
    assert not diffs, f"{len(diffs)} difference(s) from {commit[:10]}:\n" + "\n".join(map(str, diffs[:20]))


@pytest.mark.slow
@pytest.mark.skipif(not (os.environ.get("DISCBIAS_DATA_MIRROR") and os.environ.get("DISCBIAS_EXPENSIVE_TESTS") == "1"),
                    reason="needs the released data (DISCBIAS_DATA_MIRROR) and DISCBIAS_EXPENSIVE_TESTS=1")
def test_released_results_equal_the_baseline_revisions(tmp_path):
    commit = _baseline_ref()
    if commit is None:
        pytest.skip("no baseline revision (set DISCBIAS_BASELINE_REF to a commit of this repository)")
    mirror = Path(os.environ["DISCBIAS_DATA_MIRROR"])
    config = REPO / "analysis" / "grissom2024.toml"
    base_src = _export_src(commit, tmp_path / "baseline")
    a = _build(base_src, tmp_path / "a", config, mirror)
    b = _build(REPO / "src", tmp_path / "b", config, mirror)
    diffs = differences(a, b, config)
    assert not diffs, f"{len(diffs)} difference(s) from {commit[:10]}:\n" + "\n".join(map(str, diffs[:20]))
