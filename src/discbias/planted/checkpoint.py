"""Save a discriminator trained here in NVIDIA's network-pickle layout, so that the ordinary
``score`` / audit path (:func:`discbias.nets.load_discriminator`) reads it unchanged.

NVIDIA's StyleGAN2-ADA / StyleGAN3 training loop saves ``pickle.dump({"G", "D", "G_ema",
"augment_pipe", "training_set_kwargs"})`` where every network is a ``torch_utils.persistence``
object: its reduce tuple is ``(torch_utils.persistence._reconstruct_persistent_obj, (meta,))`` with
``meta = {type, version, module_src, class_name, state}`` and ``state`` the module's ``__dict__``
(``_parameters``, ``_buffers``, ``_modules``, ``_init_args``, ``_init_kwargs``, plain attributes);
keyword arguments are ``dnnlib.util.EasyDict``. This writer produces the same globals without
NVIDIA's code: while pickling it registers two stand-in modules under those names (and restores
whatever was there afterwards). ``module_src`` is a comment saying where the file came from; it is
never run by discbias's reader (which only hashes it). Only ``D`` is stored: the studies that use
this writer train no generator (``G``, ``G_ema`` and ``augment_pipe`` are ``None``).

The file's bytes depend only on the network: torch pickles each tensor's storage as
``torch.storage._load_from_bytes(<a legacy torch.save of the storage>)``, whose bytes name the
storage by its memory address; this writer names it ``"0"`` instead (:class:`_StablePickler`), so
training the same network twice gives the same file and the same sha256.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_nvidia_pickle", "MODULE_SRC"]

#: The ``module_src`` stored with every network object (text; never executed by discbias).
MODULE_SRC = ("# Written by discbias.planted.checkpoint: a discriminator trained by discbias on synthetic images.\n"
              "# The architecture is discbias.nets.Discriminator (clean-room StyleGAN2 discriminator).\n")
# Attributes of our modules that have no counterpart in NVIDIA's and do not pickle.
_SKIP_ATTRS = {"_act", "_fir_separable", "init_kwargs"}
_FAKE = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")


class _Persistent:
    def __init__(self, reconstruct, class_name: str, state: dict):
        self._reconstruct = reconstruct
        self.meta = dict(type="class", version=4, module_src=MODULE_SRC, class_name=class_name, state=state)

    def __reduce__(self):
        return (self._reconstruct, (self.meta,), None)


class _StablePickler(pickle.Pickler):
    """A pickler whose bytes do not depend on where the tensors' storages are in memory.

    Storages pickle as ``torch.storage._load_from_bytes(b)`` with ``b`` a legacy ``torch.save``
    of the one storage, which keys it by ``str(storage._cdata)`` (an address) in two places of a
    protocol-2 pickle (``BINUNICODE``: ``X``, 4-byte length, UTF-8). The key is replaced by ``"0"``;
    ``torch.load`` reads any key, so the reader is unchanged.
    """

    def reducer_override(self, obj):
        if isinstance(obj, (torch.UntypedStorage, torch.storage.TypedStorage)):
            import io
            import struct

            buf = io.BytesIO()
            torch.save(obj, buf, _use_new_zipfile_serialization=False)
            key = str(obj._cdata).encode()
            old, new = b"X" + struct.pack("<I", len(key)) + key, b"X" + struct.pack("<I", 1) + b"0"
            data = buf.getvalue()
            if data.count(old) != 2:
                raise RuntimeError(f"unexpected torch storage serialization (the storage key appears "
                                   f"{data.count(old)} times, not 2): cannot write a stable checkpoint")
            return torch.storage._load_from_bytes, (data.replace(old, new),)
        return NotImplemented


@contextlib.contextmanager
def _stand_in_modules():
    """``torch_utils.persistence._reconstruct_persistent_obj`` and ``dnnlib.util.EasyDict`` as pickle
    looks them up, registered only while the ``with`` block runs."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is pickled
        raise RuntimeError("stand-in: discbias never reconstructs NVIDIA objects")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    tu = types.ModuleType("torch_utils")
    tu.persistence = persistence
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    dn = types.ModuleType("dnnlib")
    dn.util = util
    saved = {k: sys.modules.get(k) for k in _FAKE}
    sys.modules.update({"torch_utils": tu, "torch_utils.persistence": persistence, "dnnlib": dn, "dnnlib.util": util})
    try:
        yield _reconstruct_persistent_obj, EasyDict
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _easy(obj: Any, EasyDict) -> Any:
    if isinstance(obj, dict):
        return EasyDict({k: _easy(v, EasyDict) for k, v in obj.items()})
    return obj


def _mirror(module: torch.nn.Module, reconstruct, EasyDict, init_kwargs: dict | None = None) -> _Persistent:
    state: dict[str, Any] = {}
    for key, value in module.__dict__.items():
        if key in _SKIP_ATTRS:
            continue
        if key == "_modules":
            value = collections.OrderedDict((name, None if child is None else _mirror(child, reconstruct, EasyDict))
                                            for name, child in value.items())
        elif key == "_parameters":
            value = collections.OrderedDict((k, None if v is None else torch.nn.Parameter(v.detach().cpu().clone(),
                                                                                           requires_grad=v.requires_grad))
                                            for k, v in value.items())
        elif key == "_buffers":  # NVIDIA's modules have only persistent buffers
            value = collections.OrderedDict((k, v.detach().cpu().clone()) for k, v in value.items()
                                            if k not in module._non_persistent_buffers_set)
        elif key == "_non_persistent_buffers_set":
            value = set()
        elif isinstance(value, float):
            value = np.float64(value)  # NVIDIA computes gains with numpy
        state[key] = value
    state["_init_args"] = ()
    state["_init_kwargs"] = _easy(dict(init_kwargs or {}), EasyDict)
    name = getattr(type(module), "nvidia_class_name", type(module).__name__)
    return _Persistent(reconstruct, name, state)


def save_nvidia_pickle(D: torch.nn.Module, path: str | os.PathLike, *, training_set_kwargs: dict | None = None) -> Path:
    """Write ``D`` (a :class:`discbias.nets.Discriminator`) as an NVIDIA network pickle.

    Parameters
    ----------
    D : discbias.nets.Discriminator
    path : path
        The ``.pkl`` to write (written to a temporary file and renamed into place).
    training_set_kwargs : dict, optional
        Stored under ``training_set_kwargs`` (plain values), as NVIDIA records its dataset.

    Examples
    --------
    >>> import tempfile, torch
    >>> from discbias.nets import Discriminator, load_discriminator
    >>> D = Discriminator(0, 16, 3, channel_base=128, channel_max=16)
    >>> p = save_nvidia_pickle(D, tempfile.mkdtemp() + "/D.pkl")
    >>> x = torch.rand(2, 3, 16, 16) * 2 - 1
    >>> bool(torch.equal(load_discriminator(p)(x), D.eval()(x)))
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _stand_in_modules() as (reconstruct, EasyDict):
        data = dict(G=None, D=_mirror(D, reconstruct, EasyDict, init_kwargs=dict(D.init_kwargs)), G_ema=None,
                    augment_pipe=None, training_set_kwargs=_easy(dict(training_set_kwargs or {}), EasyDict))
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            _StablePickler(fh, protocol=4).dump(data)
    os.replace(tmp, path)
    return path
