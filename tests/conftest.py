"""Shared fixtures: the real data mirror (integration tests) and synthetic studies (unit tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from discbias.fetch import MIRROR_ENV

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Test networks are tiny: one intra-op thread is faster than several contending for the
    2 cores of a CI machine (measured up to 30x on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def real_mirror() -> Path:
    """The released data through DISCBIAS_DATA_MIRROR; skips with the reason when unavailable."""
    value = os.environ.get(MIRROR_ENV)
    if not value:
        pytest.skip(f"{MIRROR_ENV} is not set: integration tests need the released data "
                    f"(set it to ../shared/paper-data or another folder holding the files)")
    path = Path(value)
    if not (path / "RGB_format_images_data.csv").exists():
        pytest.skip(f"{MIRROR_ENV}={value} does not hold the released files")
    return path


@pytest.fixture(scope="session")
def real_config():
    from discbias.config import load_config

    return load_config(REPO / "analysis" / "grissom2024.toml")


def _shared_dir(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this run sees (the run's base temp folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def synthetic_study(tmp_path_factory) -> Path:
    """A synthetic study in the released schema: returns its configuration path (root = parent.parent).

    Made once per run: under pytest-xdist the workers share it (a file lock), so the synthetic
    build below is also made once."""
    from filelock import FileLock

    from discbias.studies.synthetic import make_synthetic_study

    shared = _shared_dir(tmp_path_factory)
    with FileLock(str(shared / "synthetic-study.lock")):
        cfg = shared / "synthetic" / "analysis" / "synthetic.toml"
        if not cfg.exists():
            cfg = make_synthetic_study(shared / "synthetic", n_ffhq=1500, n_per_cell=15)
    return cfg


@pytest.fixture(scope="session")
def synthetic_build(synthetic_study) -> Path:
    """The synthetic study built once for the session, fetch to rendered paper; returns the project
    root (``build/`` under it). The mirror, templates and pandoc renderer are set while it builds."""
    from discbias.cli import main

    from filelock import FileLock

    root = synthetic_study.parent.parent
    done = root / "build" / ".synthetic-build-done"
    with FileLock(str(root.parent / "synthetic-build.lock")):  # one build per run, shared by the xdist workers
        if not done.exists():
            mp = pytest.MonkeyPatch()
            mp.setenv("DISCBIAS_DATA_MIRROR", str(root / "mirror"))
            mp.setenv("DISCBIAS_TEMPLATES", str(REPO / "report"))
            mp.setenv("DISCBIAS_NO_QUARTO", "1")
            try:
                args = ["--config", str(synthetic_study), "--root", str(root)]
                for stage in ("fetch", "measure", "fit", "figures", "render"):
                    assert main([stage, *args]) == 0, stage
            finally:
                mp.undo()
            done.touch()
    return root

