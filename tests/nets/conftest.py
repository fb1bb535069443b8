"""Shared fixtures: build NVIDIA-format network pickles without NVIDIA's code.

A released StyleGAN3 pickle is ``pickle.dump({"G", "D", "G_ema",
"augment_pipe", "training_set_kwargs"})`` where every network module is a
``torch_utils.persistence`` object: its reduce tuple is
``(torch_utils.persistence._reconstruct_persistent_obj, (meta,), None)`` with
``meta = {type, version, module_src, class_name, state}`` and ``state`` the
module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``,
``_init_args``, ``_init_kwargs``, plain attributes). Parameters pickle as
``torch._utils._rebuild_parameter`` / ``_rebuild_tensor_v2`` over
``torch.storage._load_from_bytes`` payloads; kwargs are
``dnnlib.util.EasyDict``. The fixtures register fake ``torch_utils.persistence``
and ``dnnlib.util`` modules so that ``pickle`` writes exactly those globals.
"""

from __future__ import annotations

import collections
import pickle
import sys
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from discbias.nets import Discriminator

FAKE_SOURCE = "# embedded module source -- must never be executed\nraise SystemExit('executed!')\n"

# Attributes of our modules that have no counterpart in NVIDIA's and do not pickle.
_SKIP_ATTRS = {"_act", "_fir_separable", "init_kwargs"}


class _FakePersistent:
    """Pickles exactly like an NVIDIA persistent network object."""

    def __init__(self, reconstruct: Callable, class_name: str, state: dict, module_src: str = FAKE_SOURCE):
        self._reconstruct = reconstruct
        self.meta = dict(type="class", version=4, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return (self._reconstruct, (self.meta,), None)


class NvidiaPickleFactory:
    """Build NVIDIA-layout pickles from our modules (see module docstring)."""

    def __init__(self, persistence: types.ModuleType, easydict: type):
        self.persistence = persistence
        self.EasyDict = easydict

    def easy(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return self.EasyDict({k: self.easy(v) for k, v in obj.items()})
        return obj

    def persistent(self, class_name: str, state: dict, module_src: str = FAKE_SOURCE) -> _FakePersistent:
        return _FakePersistent(self.persistence._reconstruct_persistent_obj, class_name, state, module_src)

    def from_module(self, module: torch.nn.Module, init_kwargs: dict | None = None,
                    frozen: set[str] = frozenset(), prefix: str = "") -> _FakePersistent:
        """Mirror ``module`` (recursively) as fake persistent objects.

        Layers whose dotted path is in ``frozen`` store weight/bias as buffers,
        as NVIDIA's ``freeze_layers`` does.
        """
        state: dict[str, Any] = {}
        for key, value in module.__dict__.items():
            if key in _SKIP_ATTRS:
                continue
            if key == "_modules":
                value = collections.OrderedDict(
                    (name, None if child is None else self.from_module(child, prefix=f"{prefix}{name}.", frozen=frozen))
                    for name, child in value.items()
                )
            elif key == "_parameters":
                value = collections.OrderedDict(value)
            elif key == "_buffers":  # NVIDIA's modules have only persistent buffers
                value = collections.OrderedDict(
                    (k, v) for k, v in value.items() if k not in module._non_persistent_buffers_set
                )
            elif key == "_non_persistent_buffers_set":
                value = set()
            elif isinstance(value, float):
                value = np.float64(value)  # NVIDIA computes gains with numpy
            state[key] = value
        if prefix.rstrip(".") in frozen:
            for name in ("weight", "bias"):
                p = state["_parameters"].pop(name, None)
                if p is not None:
                    state["_buffers"][name] = p.detach().clone()
        state["_init_args"] = ()
        state["_init_kwargs"] = self.easy(dict(init_kwargs or {}))
        name = getattr(type(module), "nvidia_class_name", type(module).__name__)
        return self.persistent(name, state)

    def snapshot(self, D: Discriminator, *, include_d: bool = True, d_kwargs: dict | None = None,
                 frozen: set[str] = frozenset()) -> dict:
        kwargs = dict(D.init_kwargs) if d_kwargs is None else d_kwargs
        data: dict[str, Any] = {}
        g_state = {
            "_parameters": collections.OrderedDict(w=torch.nn.Parameter(torch.randn(4, 4))),
            "_buffers": collections.OrderedDict(),
            "_modules": collections.OrderedDict(),
            "img_resolution": D.img_resolution,
            "in_size": np.asarray([36, 36]),  # numpy array attributes, as in SynthesisLayer
            "sampling_rate": np.float64(16.0),
            "_init_args": (),
            "_init_kwargs": self.easy(dict(z_dim=512, w_dim=512, img_resolution=D.img_resolution)),
        }
        data["G"] = self.persistent("Generator", g_state)
        data["G_ema"] = self.persistent("Generator", dict(g_state))
        if include_d:
            data["D"] = self.from_module(D, init_kwargs=kwargs, frozen=frozen)
        data["augment_pipe"] = self.persistent("AugmentPipe", {
            "_parameters": collections.OrderedDict(),
            "_buffers": collections.OrderedDict(p=torch.zeros([])),
            "_modules": collections.OrderedDict(),
            "xflip": np.float64(1.0),
            "_init_args": (), "_init_kwargs": self.easy(dict(xflip=1)),
        })
        data["training_set_kwargs"] = self.easy(dict(
            class_name="training.dataset.ImageFolderDataset", path="~/datasets/x.zip",
            use_labels=D.c_dim > 0, max_size=70000, xflip=False, resolution=D.img_resolution, random_seed=0,
        ))
        return data

    def write(self, data: Any, path: Path) -> Path:
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=4)
        return path


@pytest.fixture
def nvidia_modules(monkeypatch):
    """Register fake ``torch_utils.persistence`` and ``dnnlib.util`` modules (only for pickling)."""
    torch_utils = types.ModuleType("torch_utils")
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - our reader must never call it
        raise AssertionError("the fake NVIDIA reconstructor was called while reading")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    torch_utils.persistence = persistence
    dnnlib = types.ModuleType("dnnlib")
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    util.EasyDict = EasyDict
    dnnlib.util = util
    for name, mod in {"torch_utils": torch_utils, "torch_utils.persistence": persistence,
                      "dnnlib": dnnlib, "dnnlib.util": util}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(persistence=persistence, EasyDict=EasyDict)


@pytest.fixture
def factory(nvidia_modules) -> NvidiaPickleFactory:
    return NvidiaPickleFactory(nvidia_modules.persistence, nvidia_modules.EasyDict)


def _randomize(D: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (including zero-initialised biases) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in D.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return D


def _small_kwargs(**over) -> dict:
    kw = dict(c_dim=0, img_resolution=32, img_channels=3, channel_base=512, channel_max=32)
    kw.update(over)
    return kw


@pytest.fixture
def helpers():
    """``randomize(D, seed)`` and ``small_kwargs(**over)`` (test files cannot import conftest by name)."""
    return types.SimpleNamespace(randomize=_randomize, small_kwargs=_small_kwargs, fake_source=FAKE_SOURCE)

