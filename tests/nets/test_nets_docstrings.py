"""The runnable examples in the nets docstrings must stay correct."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["discbias.nets", "discbias.nets.fir", "discbias.nets.layers", "discbias.nets.discriminator",
           "discbias.nets.pickle_reader", "discbias.nets.registry"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert res.attempted > 0, f"{name} has no examples"
    assert res.failed == 0
