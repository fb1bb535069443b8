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


@pytest.fixture(scope="session")
def synthetic_study(tmp_path_factory) -> Path:
    """A synthetic study in the released schema: returns its configuration path (root = parent.parent)."""
    from discbias.studies.synthetic import make_synthetic_study

    return make_synthetic_study(tmp_path_factory.mktemp("synthetic"), n_ffhq=1500, n_per_cell=15)


@pytest.fixture(scope="session")
def synthetic_build(synthetic_study) -> Path:
    """The synthetic study built once for the session, fetch to rendered paper; returns the project
    root (``build/`` under it). The mirror, templates and pandoc renderer are set while it builds."""
    from discbias.cli import main

    root = synthetic_study.parent.parent
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
    return root


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``--dist loadgroup``), the tests that share the synthetic build run on one
    worker, so the session builds it once."""
    for item in items:
        if "synthetic_build" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("synthetic_build"))
