"""Safe reader for NVIDIA StyleGAN2-ADA/StyleGAN3 network pickles.

NVIDIA's network pickles embed the *source code* of every network module
(``torch_utils.persistence``) and re-execute it when loaded with
``pickle.load``. This module never does that. It unpickles with a restricted
:class:`pickle.Unpickler` whose ``find_class`` hands out only the handful of
globals a network pickle legitimately needs:

* ``torch_utils.persistence._reconstruct_persistent_obj``, mapped to a
  function that records the object's class name, persistence version, the
  sha256 of the embedded source and its state (a module ``__dict__`` with
  ``_parameters``, ``_buffers``, ``_modules`` and ``_init_kwargs``) as a
  :class:`PersistentRecord` -- the source is hashed, never compiled;
* ``dnnlib.util.EasyDict`` (mapped to our own dict subclass),
  ``collections.OrderedDict``, a few inert builtins (``set``, ``frozenset``,
  ``bytearray``, ``complex``, ``slice``) and ``_codecs.encode``;
* tensor/parameter rebuilders from ``torch._utils`` (mapped to our own
  functions that drop hooks) and ``torch.storage._load_from_bytes``, whose
  payload is read with ``torch.load(weights_only=True)``;
* torch dtypes, ``torch.Size``, ``torch.device`` and numpy's array, dtype
  and scalar reconstructors.

Any other global raises :class:`~discbias.nets.errors.UnsafePickleError`
before it is imported, so nothing from the file runs.

The discriminator is then rebuilt as ``Discriminator(**init_kwargs)`` from
the ``D`` record and its flattened state is loaded strictly.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from .discriminator import Discriminator
from .errors import (
    MissingNetworkError,
    NotAPickleError,
    StateDictMismatchError,
    TensorFlowPickleError,
    TruncatedFileError,
    UnsafePickleError,
    UnsupportedNetworkError,
)

__all__ = [
    "EasyDict",
    "PersistentRecord",
    "SafeNetworkUnpickler",
    "read_network_pickle",
    "flatten_record_state",
    "load_discriminator",
    "save_discriminator",
    "NETWORK_KEYS",
]

#: Top-level entries of an NVIDIA training snapshot / released network pickle.
NETWORK_KEYS = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")

#: Discriminator classes whose pickled state we can load (NVIDIA class name -> note).
SUPPORTED_D_CLASSES = ("Discriminator",)

_OUR_FORMAT = "discbias.nets.Discriminator"
_D_ARG_ORDER = (
    "c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
    "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs",
)


class EasyDict(dict):
    """Dict with attribute access; stands in for ``dnnlib.util.EasyDict`` when unpickling.

    Examples
    --------
    >>> d = EasyDict(a=1)
    >>> d.a, d["a"]
    (1, 1)
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]


@dataclass
class PersistentRecord:
    """What the pickle said about one persistent network object; nothing was executed.

    Attributes
    ----------
    class_name : str
        Class name inside the embedded module (e.g. ``"Discriminator"``).
    version : int
        ``torch_utils.persistence`` format version.
    source_sha256 : str
        sha256 (hex) of the embedded module source, which is never executed.
    state : dict
        The object's pickled ``__dict__`` (``_parameters``, ``_buffers``,
        ``_modules``, ``_init_kwargs``, ...); sub-modules are records too.
    kind : str
        The persistence object type (``"class"``).

    Examples
    --------
    >>> r = PersistentRecord("Discriminator", 4, "0" * 64, {"_init_kwargs": {"c_dim": 0}})
    >>> r.init_kwargs
    {'c_dim': 0}
    """

    class_name: str
    version: int
    source_sha256: str
    state: dict = field(repr=False)
    kind: str = "class"

    @property
    def init_kwargs(self) -> dict:
        """Constructor keyword arguments recorded by ``persistent_class`` (plain dicts)."""
        return _plain(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple:
        """Constructor positional arguments recorded by ``persistent_class``."""
        return tuple(_plain(self.state.get("_init_args") or ()))

    def children(self) -> dict[str, "PersistentRecord | None"]:
        """Sub-module records by attribute name."""
        return dict(self.state.get("_modules") or {})


def _plain(obj: Any) -> Any:
    """Convert EasyDicts/OrderedDicts/tuples to plain dicts/lists for constructors and JSON."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- rebuilders


def _record_persistent(meta: Any) -> PersistentRecord:
    if not isinstance(meta, Mapping) or not {"class_name", "state"} <= set(meta):
        raise UnsafePickleError(
            "malformed persistent-object record (expected a dict with 'class_name' and 'state')"
        )
    src = meta.get("module_src") or ""
    if isinstance(src, str):
        src = src.encode("utf-8", errors="surrogatepass")
    state = meta["state"]
    if state is None:
        state = {}
    if not isinstance(state, Mapping):
        raise UnsafePickleError(f"persistent object {meta['class_name']!r} has a non-dict state")
    return PersistentRecord(
        class_name=str(meta["class_name"]),
        version=int(meta.get("version", -1)),
        source_sha256=hashlib.sha256(bytes(src)).hexdigest(),
        state=dict(state),
        kind=str(meta.get("type", "class")),
    )


def _load_storage_bytes(data: bytes) -> Any:
    """Read a tensor storage serialised by ``torch.save`` with torch's weights-only unpickler."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("torch.storage._load_from_bytes called with a non-bytes payload")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafePickleError(f"an embedded tensor storage was refused by torch's weights-only loader: {exc}") from exc
    except (EOFError, RuntimeError) as exc:
        raise TruncatedFileError(f"an embedded tensor storage is incomplete or corrupt: {exc}") from exc


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any, *_ignored: Any) -> torch.Tensor:
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"tensor rebuilt from a {type(storage).__name__}, expected a torch storage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(storage, torch.storage.TypedStorage):
            dtype, untyped = storage.dtype, storage.untyped()
        else:
            dtype, untyped = torch.uint8, storage
        t = torch.empty((0,), dtype=dtype, device=untyped.device)
        return t.set_(untyped, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, *_ignored: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError(f"parameter rebuilt from a {type(data).__name__}, expected a tensor")
    return data


def _torch_globals() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }
    for name in dir(torch):
        obj = getattr(torch, name, None)
        if isinstance(obj, torch.dtype):
            out[("torch", name)] = obj
    return out


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return {}
    try:
        from numpy._core import multiarray as ma  # numpy >= 2
    except ImportError:  # pragma: no cover
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
    out: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = ma._reconstruct
        out[(mod, "scalar")] = ma.scalar
    out[("numpy", "ndarray")] = np.ndarray
    out[("numpy", "dtype")] = np.dtype
    for name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_"):
        out[("numpy", name)] = getattr(np, name)
    return out


def _safe_globals() -> dict[tuple[str, str], Any]:
    import _codecs

    allowed: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _record_persistent,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("dnnlib", "EasyDict"): EasyDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
        ("_codecs", "encode"): _codecs.encode,
    }
    allowed.update(_torch_globals())
    allowed.update(_numpy_globals())
    return allowed


_ALLOWED: dict[tuple[str, str], Any] | None = None


def _allowed_globals() -> dict[tuple[str, str], Any]:
    global _ALLOWED
    if _ALLOWED is None:
        _ALLOWED = _safe_globals()
    return _ALLOWED


class SafeNetworkUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a network pickle needs.

    Persistent network objects become :class:`PersistentRecord` instances;
    anything else raises :class:`UnsafePickleError` naming the global.

    Examples
    --------
    >>> import io, pickle, collections
    >>> dict(SafeNetworkUnpickler(io.BytesIO(pickle.dumps(collections.OrderedDict(a=1)))).load())
    {'a': 1}
    >>> SafeNetworkUnpickler(io.BytesIO(pickle.dumps(print))).load()
    Traceback (most recent call last):
    ...
    discbias.nets.errors.UnsafePickleError: refused global 'builtins.print': ...
    """

    def find_class(self, module: str, name: str) -> Any:
        obj = _allowed_globals().get((module, name))
        if obj is not None:
            return obj
        if module.startswith("dnnlib.tflib") or module.startswith("tensorflow"):
            raise TensorFlowPickleError(
                f"refused global '{module}.{name}': this is a TensorFlow-era network pickle "
                "(StyleGAN/StyleGAN2/StyleGAN2-ADA TensorFlow release), which discbias does not read. "
                "Use the PyTorch release of the same network (see discbias.nets.list_weights()), or convert "
                "it once with NVIDIA's stylegan2-ada-pytorch `legacy.py --source=OLD.pkl --dest=NEW.pkl` "
                "in a separate environment that has TensorFlow-free NVIDIA code"
            )
        raise UnsafePickleError(
            f"refused global '{module}.{name}': network pickles never need it, so the file is either "
            "not a StyleGAN2-ADA/StyleGAN3 PyTorch network pickle or deliberately malicious; "
            "nothing from the file was executed"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"refused persistent id {str(pid)[:80]!r}: plain network pickles do not use persistent ids "
            "(is this a torch.save file? pass it to load_discriminator, which reads those safely)"
        )


# --------------------------------------------------------------------------- file sniffing


def _sniff(path: Path) -> str:
    """Return 'pickle', 'torch_zip', 'safetensors' or raise a specific error."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"network file not found: {path}") from None
    if size == 0:
        raise TruncatedFileError(f"{path} is empty (0 bytes); the download was probably interrupted -- delete it and download again")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:1] == b"\x80":
        return "pickle"
    if head[:4] == b"PK\x03\x04":
        return "torch_zip"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n < size and head[8:9] == b"{":
            return "safetensors"
    hint = ""
    lowered = head.lower()
    if lowered.startswith(b"<!doctype") or lowered.startswith(b"<html") or lowered.startswith(b"<?xml"):
        hint = " It looks like an HTML/XML page: the download probably returned an error or login page instead of the file."
    elif head[:2] == b"\x1f\x8b":
        hint = " It is gzip-compressed: decompress it first."
    raise NotAPickleError(
        f"{path} is not a network pickle or a discbias state-dict file (starts with {head[:8]!r}).{hint} "
        "Expected an NVIDIA StyleGAN2-ADA/StyleGAN3 .pkl, or a .pt/.safetensors written by save_discriminator()."
    )


def read_network_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Read an NVIDIA network pickle without executing anything in it.

    Parameters
    ----------
    path : str or path-like
        A StyleGAN2-ADA or StyleGAN3 PyTorch network pickle (a released
        ``.pkl`` or a training snapshot).

    Returns
    -------
    dict
        ``{"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}``: the
        networks as :class:`PersistentRecord` (or None when absent) and the
        training-set kwargs as a plain dict (or None).

    Raises
    ------
    NotAPickleError, TruncatedFileError, UnsafePickleError, TensorFlowPickleError, MissingNetworkError

    Examples
    --------
    >>> import pickle, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "empty.pkl")
    >>> with open(p, "wb") as f:
    ...     pickle.dump({"training_set_kwargs": {"resolution": 32}}, f)
    >>> read_network_pickle(p)["training_set_kwargs"], read_network_pickle(p)["D"]
    ({'resolution': 32}, None)
    """
    path = Path(path)
    kind = _sniff(path)
    if kind != "pickle":
        raise NotAPickleError(
            f"{path} is a {'PyTorch zip (torch.save)' if kind == 'torch_zip' else 'safetensors'} file, not a "
            "network pickle; load it with load_discriminator()"
        )
    try:
        with open(path, "rb") as fh:
            data = SafeNetworkUnpickler(fh).load()
    except UnsafePickleError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    except EOFError as exc:
        raise TruncatedFileError(
            f"{path} ends before the pickle does ({path.stat().st_size} bytes): the file is truncated, probably an "
            "interrupted download -- delete it and download it again"
        ) from exc
    except TruncatedFileError as exc:
        raise TruncatedFileError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, ValueError, struct.error, IndexError, KeyError, TypeError) as exc:
        msg = str(exc)
        if "truncated" in msg or "ran out of input" in msg.lower():
            raise TruncatedFileError(
                f"{path} is truncated ({msg}); delete it and download it again"
            ) from exc
        raise NotAPickleError(f"{path} is not a readable network pickle: {type(exc).__name__}: {msg}") from exc
    if not isinstance(data, Mapping):
        raise MissingNetworkError(
            f"{path} holds a {type(data).__name__}, not the dict of networks (G, D, G_ema, ...) that NVIDIA's "
            "StyleGAN2-ADA/StyleGAN3 pickles hold"
        )
    out: dict[str, Any] = {}
    for key in NETWORK_KEYS:
        value = data.get(key)
        out[key] = _plain(value) if key == "training_set_kwargs" and value is not None else value
    for key in ("G", "D", "G_ema", "augment_pipe"):
        if out[key] is not None and not isinstance(out[key], PersistentRecord):
            raise UnsupportedNetworkError(
                f"{path}: entry {key!r} is a {type(out[key]).__name__}, not a persistent network object"
            )
    return out


# --------------------------------------------------------------------------- state flattening


def flatten_record_state(record: PersistentRecord, prefix: str = "") -> "collections.OrderedDict[str, torch.Tensor]":
    """Flatten a record tree into a ``state_dict``-style mapping.

    Parameters
    ----------
    record : PersistentRecord
        Root record (e.g. ``read_network_pickle(p)["D"]``).
    prefix : str
        Key prefix.

    Returns
    -------
    collections.OrderedDict
        ``"b1024.conv0.weight" -> tensor`` for every parameter and persistent
        buffer (parameters of frozen layers, stored as buffers, included).

    Examples
    --------
    >>> leaf = PersistentRecord("FullyConnectedLayer", 4, "", {"_parameters": {"weight": torch.ones(2, 3)}})
    >>> root = PersistentRecord("X", 4, "", {"_modules": {"fc": leaf}})
    >>> list(flatten_record_state(root))
    ['fc.weight']
    """
    out: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    state = record.state
    non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(value, torch.Tensor):
                raise UnsupportedNetworkError(f"{prefix}{name} is a {type(value).__name__}, expected a tensor")
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise UnsupportedNetworkError(f"sub-module {prefix}{name} is a {type(child).__name__}, not a network record")
        out.update(flatten_record_state(child, prefix + name + "."))
    return out


def _iter_records(record: PersistentRecord, prefix: str = "") -> Iterator[tuple[str, PersistentRecord]]:
    yield prefix, record
    for name, child in record.children().items():
        if isinstance(child, PersistentRecord):
            yield from _iter_records(child, f"{prefix}.{name}" if prefix else name)


def _check_class_names(D: Discriminator, record: PersistentRecord, path: Path) -> None:
    records = dict(_iter_records(record))
    for name, module in D.named_modules():
        expected = getattr(module, "nvidia_class_name", None)
        if expected is None:
            continue
        rec = records.get(name)
        where = name or "D"
        if rec is None:
            raise StateDictMismatchError(
                f"{path}: the network built from D's init_kwargs has a {expected} at {where!r} but the pickle has none; "
                "the pickle's init_kwargs and its stored modules disagree"
            )
        if rec.class_name != expected:
            raise UnsupportedNetworkError(
                f"{path}: expected class {expected} at {where!r}, found {rec.class_name}; this is not the "
                "StyleGAN2/StyleGAN3 discriminator discbias implements"
            )


def _check_state(D: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    ours = D.state_dict()
    for key, value in state.items():
        if key in ours and tuple(ours[key].shape) != tuple(value.shape):
            raise StateDictMismatchError(
                f"{path}: tensor {key!r} has shape {list(value.shape)} in the file but {list(ours[key].shape)} in the "
                "network built from the stored init_kwargs; the file's config and weights disagree (or init_kwargs "
                "was given wrongly)"
            )
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    if missing or unexpected:
        raise StateDictMismatchError(
            f"{path}: the stored tensors do not match the network built from the stored init_kwargs; "
            f"missing from file: {missing[:10]}{' ...' if len(missing) > 10 else ''}; "
            f"not in network: {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )


def _build(init_kwargs: Mapping[str, Any], path: Path) -> Discriminator:
    try:
        return Discriminator(**init_kwargs)
    except (TypeError, ValueError) as exc:
        raise UnsupportedNetworkError(
            f"{path}: cannot build Discriminator from the stored init_kwargs {dict(init_kwargs)!r}: {exc}"
        ) from exc


def _finish(D: Discriminator, state: Mapping[str, torch.Tensor], path: Path, device: Any) -> Discriminator:
    _check_state(D, state, path)
    with torch.no_grad():
        D.load_state_dict(dict(state), strict=True)
    return D.to(device).eval().requires_grad_(False)


def _load_pickle(path: Path, device: Any) -> Discriminator:
    data = read_network_pickle(path)
    rec = data["D"]
    if rec is None:
        present = [k for k in NETWORK_KEYS if data[k] is not None]
        raise MissingNetworkError(
            f"{path} has no discriminator: the pickle holds {present or 'no networks'} but no 'D'. Released "
            "generator-only pickles cannot be audited; use a pickle that includes D (the official NVIDIA "
            "StyleGAN3/StyleGAN2-ADA pickles do)"
        )
    if rec.class_name not in SUPPORTED_D_CLASSES:
        raise UnsupportedNetworkError(
            f"{path}: D is a {rec.class_name!r}, but discbias implements only the StyleGAN2 discriminator "
            f"({', '.join(SUPPORTED_D_CLASSES)}) used by StyleGAN2-ADA and StyleGAN3"
        )
    kwargs = rec.init_kwargs
    args = rec.init_args
    if len(args) > len(_D_ARG_ORDER):
        raise UnsupportedNetworkError(f"{path}: D was built with {len(args)} positional arguments; at most {len(_D_ARG_ORDER)} are known")
    kwargs = {**dict(zip(_D_ARG_ORDER, args)), **kwargs}
    D = _build(kwargs, path)
    _check_class_names(D, rec, path)
    return _finish(D, flatten_record_state(rec), path, device)


def _load_ours(path: Path, kind: str, device: Any, init_kwargs: Mapping[str, Any] | None) -> Discriminator:
    if kind == "safetensors":
        try:
            from safetensors import safe_open
        except ImportError as exc:  # pragma: no cover - depends on environment
            raise ImportError(f"{path} is a safetensors file; install it with `pip install safetensors`") from exc
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
        stored = json.loads(meta["init_kwargs"]) if "init_kwargs" in meta else None
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafePickleError(f"{path}: torch's weights-only loader refused the file: {exc}") from exc
        except (RuntimeError, EOFError) as exc:
            raise TruncatedFileError(f"{path} could not be read as a torch.save file ({exc}); it may be truncated") from exc
        if isinstance(obj, Mapping) and "state_dict" in obj:
            state = obj["state_dict"]
            stored = obj.get("init_kwargs")
        elif isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            state, stored = obj, None
        else:
            raise NotAPickleError(f"{path} is a torch.save file but holds neither a state dict nor a save_discriminator() dict")
    kwargs = dict(init_kwargs) if init_kwargs is not None else stored
    if kwargs is None:
        raise UnsupportedNetworkError(
            f"{path} is a bare state dict with no stored configuration; pass init_kwargs=dict(c_dim=..., "
            "img_resolution=..., img_channels=..., ...) to load_discriminator, or save it with save_discriminator()"
        )
    return _finish(_build(kwargs, path), state, path, device)


def load_discriminator(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    init_kwargs: Mapping[str, Any] | None = None,
) -> Discriminator:
    """Load a discriminator from an NVIDIA pickle or one of our state-dict files, safely.

    Parameters
    ----------
    path : str or path-like
        An NVIDIA StyleGAN3/StyleGAN2-ADA PyTorch network pickle, a
        ``.safetensors``/``.pt`` written by :func:`save_discriminator`, a bare
        ``state_dict`` saved with ``torch.save`` (then ``init_kwargs`` is
        required), or the name of a registry entry (see
        :func:`discbias.nets.list_weights`) already present in the weights
        directory.
    device : str or torch.device
        Where to put the network.
    init_kwargs : mapping, optional
        Constructor arguments overriding the stored configuration (needed
        for bare state dicts).

    Returns
    -------
    Discriminator
        In eval mode with ``requires_grad=False``.

    Raises
    ------
    NotAPickleError, TruncatedFileError, UnsafePickleError, TensorFlowPickleError,
    MissingNetworkError, UnsupportedNetworkError, StateDictMismatchError, WeightsNotFoundError

    Examples
    --------
    >>> import tempfile, os, torch
    >>> D = Discriminator(0, 32, 3, channel_base=512, channel_max=32)
    >>> p = os.path.join(tempfile.mkdtemp(), "d.pt")
    >>> save_discriminator(D, p)
    >>> D2 = load_discriminator(p)
    >>> x = torch.rand(2, 3, 32, 32) * 2 - 1
    >>> with torch.inference_mode():
    ...     bool(torch.equal(D.eval()(x), D2(x)))
    True
    """
    p = Path(path)
    entry = None
    if not p.exists():
        from .registry import KNOWN_WEIGHTS, weights_path

        name = str(path)
        if name in KNOWN_WEIGHTS:
            entry = KNOWN_WEIGHTS[name]
            p = weights_path(name, must_exist=True)
        else:
            raise FileNotFoundError(
                f"network file not found: {p}. Give a path to a .pkl/.pt/.safetensors file or one of the registry "
                f"names: {', '.join(sorted(KNOWN_WEIGHTS))}"
            )
    kind = _sniff(p)
    if kind == "pickle":
        if init_kwargs is not None:
            raise ValueError("init_kwargs is only used for our state-dict files; network pickles carry their own")
        D = _load_pickle(p, device)
    else:
        D = _load_ours(p, kind, device, init_kwargs)
    if entry is not None and entry.d_params is not None:
        n = sum(t.numel() for t in D.parameters())
        if n != entry.d_params:
            warnings.warn(
                f"{p}: discriminator has {n} parameters, the registry expects {entry.d_params} for {entry.name}; "
                "is the file the official one?",
                stacklevel=2,
            )
    return D


def save_discriminator(D: Discriminator, path: str | os.PathLike) -> None:
    """Save a discriminator's configuration and weights (``.safetensors`` or ``torch.save``).

    Parameters
    ----------
    D : Discriminator
    path : str or path-like
        ``*.safetensors`` writes safetensors with the configuration as JSON
        metadata; any other suffix writes ``torch.save({"format", "init_kwargs",
        "state_dict"})``, loadable with ``weights_only=True``.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "d.safetensors")
    >>> save_discriminator(Discriminator(0, 32, 3, channel_base=512, channel_max=32), p)
    >>> load_discriminator(p).img_resolution
    32
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in D.state_dict().items()}
    kwargs = _plain(D.init_kwargs)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata={"format": _OUR_FORMAT, "init_kwargs": json.dumps(kwargs)})
    else:
        torch.save({"format": _OUR_FORMAT, "init_kwargs": kwargs, "state_dict": state}, path)
