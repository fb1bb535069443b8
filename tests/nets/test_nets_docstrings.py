"""Every nets module carries runnable docstring examples.

The examples themselves run once, under pytest's ``--doctest-modules`` (``addopts`` in
pyproject.toml, ``testpaths`` includes ``src/discbias``); this test checks that they exist and
that the doctest run is configured, without running them a second time.
"""

from __future__ import annotations

import doctest
import importlib
import tomllib
from pathlib import Path

import pytest

MODULES = ["discbias.nets", "discbias.nets.fir", "discbias.nets.layers", "discbias.nets.discriminator",
           "discbias.nets.pickle_reader", "discbias.nets.registry"]


@pytest.mark.parametrize("name", MODULES)
def test_module_has_docstring_examples(name):
    mod = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(mod, name)
    assert sum(len(t.examples) for t in tests if t.name.startswith(name)) > 0, f"{name} has no examples"


def test_docstring_examples_run_under_pytest():
    opts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in opts["addopts"] and "src/discbias" in opts["testpaths"]
