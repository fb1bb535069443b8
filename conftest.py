"""Repository-wide pytest hooks (the docstring examples in ``src/discbias`` are collected too)."""

import importlib.util

import pytest

#: Docstring examples that need an optional extra: module -> the distribution it imports.
OPTIONAL_EXTRAS = {"discbias.scoring.ray_engine": "ray"}


def pytest_collection_modifyitems(config, items):
    """Skip, with the reason, the examples of modules whose optional extra is not installed
    (``make setup`` installs no extra; ``.ci/run`` installs ``discbias[ray]`` so they run in CI)."""
    for item in items:
        for module, dist in OPTIONAL_EXTRAS.items():
            if item.nodeid.startswith("src/") and module in item.name and importlib.util.find_spec(dist) is None:
                item.add_marker(pytest.mark.skip(reason=f"{module}'s example needs the optional extra: "
                                                        f"pip install 'discbias[{dist}]'"))
