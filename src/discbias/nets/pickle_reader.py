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

Nor can the file make the reader allocate more than it holds: the opcode stream is
checked first (every declared length must fit in the rest of the file, memo indices
must be plausible), each allowed callable is wrapped so that the sizes it would
allocate (``bytearray(n)``, numpy shapes and scalars, tensor views, embedded torch
storages) are bounded by the file's own size, containers may nest at most
:data:`MAX_NESTING` levels, and a discriminator's ``init_kwargs`` are checked against
the architecture's ranges (:func:`~discbias.nets.discriminator.check_init_kwargs`) and
against the number of values the file stores before anything is built. Directories,
FIFOs and devices are refused without being opened for reading.

The discriminator is then rebuilt as ``Discriminator(**init_kwargs)`` from
the ``D`` record and its flattened state is loaded strictly.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import mmap
import os
import pickle
import pickletools
import stat
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from ..errors import MissingInputError
from .discriminator import Discriminator, check_init_kwargs, estimate_parameters
from .errors import (
    MissingNetworkError,
    NetworkLoadError,
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

#: Deepest container nesting accepted in a pickle (NVIDIA's networks need about 15 levels).
MAX_NESTING = 100
#: Largest numpy scalar (bytes) a pickle may declare.
_MAX_SCALAR_BYTES = 1024
#: Default bound on any size a stream declares when the stream's own size is unknown.
_DEFAULT_MAX_BYTES = 1 << 30
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
    src = meta.get("module_src")
    if src is None:
        src = b""
    if isinstance(src, str):
        src = src.encode("utf-8", errors="surrogatepass")
    if not isinstance(src, (bytes, bytearray)):
        raise UnsafePickleError(f"persistent object's module_src is a {type(src).__name__}, not source text")
    if not isinstance(meta["class_name"], str) or not isinstance(meta.get("version", -1), int):
        raise UnsafePickleError("persistent object's class_name must be a string and its version an integer")
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


_TORCH_ADVICE = ("weights_only=False", "Re-running", "re-running", "WeightsUnpickler error", "Please file an issue",
                 "In PyTorch 2.6", "Check the documentation")


def _torch_message(exc: BaseException) -> str:
    """torch's refusal in one line, without its advice to retry with ``weights_only=False``."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    keep = [ln for ln in lines if not any(a in ln for a in _TORCH_ADVICE)]
    return " ".join(keep or lines[-1:])[:300]


class _StorageHeaderReader(pickle.Unpickler):
    """Reads the small pickles of a legacy ``torch.save`` storage payload; resolves nothing."""

    def __init__(self, fh, declared: list):
        super().__init__(fh)
        self.declared = declared

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name.endswith("Storage") and isinstance(getattr(torch, name, None), type):
            return ("storage-type", name)
        raise UnsafePickleError(f"refused global '{module}.{name}' in an embedded tensor storage")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError("an embedded tensor storage has a malformed storage record")
        stype, key, numel = pid[1], pid[2], pid[4]
        if not (isinstance(stype, tuple) and stype[0] == "storage-type") or not isinstance(numel, int) or numel < 0:
            raise UnsafePickleError("an embedded tensor storage has a malformed storage record")
        self.declared.append((str(key), stype[1], numel))
        return None


def _check_storage_payload(data: bytes) -> None:
    """Bound the sizes a legacy ``torch.save`` storage payload declares by the payload's length.

    The payload is: magic number, protocol version, system info, the storage record(s), the list
    of storage keys, then per storage an 8-byte element count and the raw data. torch would
    allocate the declared size before noticing the data is missing; this checks first.
    """
    fh = io.BytesIO(data)
    declared: list = []
    try:
        for _ in range(4):
            _StorageHeaderReader(fh, declared).load()
        keys = _StorageHeaderReader(fh, declared).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # any malformation of the header pickles: refuse, never allocate
        raise TruncatedFileError(f"an embedded tensor storage is incomplete or corrupt ({type(exc).__name__})") from None
    by_key = {k: (t, n) for k, t, n in declared}
    if not isinstance(keys, list) or set(map(str, keys)) != set(by_key):
        raise UnsafePickleError("an embedded tensor storage lists other storages than it declares")
    for key in keys:
        stype, numel = by_key[str(key)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy storage classes warn that TypedStorage is deprecated
            elsize = torch._utils._element_size(getattr(torch, stype).dtype)
        head = fh.read(8)
        remaining = len(data) - fh.tell()
        if len(head) != 8:
            raise TruncatedFileError("an embedded tensor storage is incomplete (no element count)")
        (count,) = struct.unpack("<q", head)
        if count != numel or count * elsize > remaining:
            raise UnsafePickleError(
                f"an embedded tensor storage declares {numel} elements of {elsize} bytes ({numel * elsize} bytes) "
                f"but holds {remaining} bytes"
            )
        fh.seek(count * elsize, io.SEEK_CUR)


def _load_storage_bytes(data: bytes) -> Any:
    """Read a tensor storage serialised by ``torch.save`` with torch's weights-only unpickler."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("torch.storage._load_from_bytes called with a non-bytes payload")
    _check_storage_payload(bytes(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafePickleError(
            f"an embedded tensor storage was refused by torch's weights-only loader: {_torch_message(exc)}"
        ) from None
    except (EOFError, RuntimeError) as exc:
        raise TruncatedFileError(f"an embedded tensor storage is incomplete or corrupt: {_torch_message(exc)}") from None


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any, *_ignored: Any) -> torch.Tensor:
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"tensor rebuilt from a {type(storage).__name__}, expected a torch storage")
    ints = lambda v: isinstance(v, (tuple, list, torch.Size)) and len(v) <= 32 and all(  # noqa: E731
        isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)
    if not (isinstance(storage_offset, int) and storage_offset >= 0 and ints(size) and ints(stride)
            and len(size) == len(stride)):
        raise UnsafePickleError("a tensor has a malformed offset, size or stride")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(storage, torch.storage.TypedStorage):
            dtype, untyped = storage.dtype, storage.untyped()
        else:
            dtype, untyped = torch.uint8, storage
        n_avail = untyped.nbytes() // max(1, torch._utils._element_size(dtype))
        if all(int(n) > 0 for n in size):
            last = int(storage_offset) + sum((int(n) - 1) * int(st) for n, st in zip(size, stride))
            if last >= n_avail:
                raise UnsafePickleError(
                    f"a tensor of shape {list(size)} reaches element {last} of a storage of {n_avail} elements"
                )
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


def _numpy_module():
    try:
        from numpy._core import multiarray as ma  # numpy >= 2
    except ImportError:  # pragma: no cover
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
    return ma


class _NdarrayToken:
    """Stands in for ``numpy.ndarray`` in a pickle: only numpy's reconstructor may receive it."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise UnsafePickleError("refused a direct numpy.ndarray(...) call: network pickles never allocate arrays that way")


def _make_safe_array_class(max_bytes: int) -> type:
    import numpy as np

    class _CheckedArray(np.ndarray):
        """An ndarray whose pickled state is checked against the file's size before numpy reads it."""

        def __setstate__(self, state: Any) -> None:
            if not (isinstance(state, tuple) and len(state) == 5):
                raise UnsafePickleError("a numpy array has a malformed pickled state")
            _version, shape, dtype, _fortran, raw = state
            if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple) or len(shape) > 32 or not all(
                    isinstance(n, int) and 0 <= n <= max_bytes for n in shape):
                raise UnsafePickleError("a numpy array has a malformed shape or dtype")
            count = 1
            for n in shape:
                count *= n
            nbytes = count * max(dtype.itemsize, 1)
            if nbytes > max_bytes or (isinstance(raw, (bytes, bytearray)) and len(raw) != count * dtype.itemsize) or (
                    isinstance(raw, list) and len(raw) != count):
                raise UnsafePickleError(
                    f"a numpy array declares shape {list(shape)} of {dtype} ({nbytes} bytes) but the file holds "
                    f"{len(raw) if hasattr(raw, '__len__') else '?'} values for it"
                )
            super().__setstate__(state)

    return _CheckedArray


def _numpy_globals(max_bytes: int) -> dict[tuple[str, str], Any]:
    import numpy as np

    ma = _numpy_module()
    checked = _make_safe_array_class(max_bytes)

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
        if subtype is not _NdarrayToken:
            raise UnsafePickleError("numpy's array reconstructor called for something other than numpy.ndarray")
        if not (isinstance(shape, tuple) and len(shape) == 1 and shape[0] == 0):
            raise UnsafePickleError(f"numpy's array reconstructor called with shape {shape!r:.60} (pickles use (0,))")
        return np.ndarray.__new__(checked, (0,), np.uint8)

    def scalar(dtype: Any, *data: Any) -> Any:
        if not isinstance(dtype, np.dtype) or dtype.itemsize > _MAX_SCALAR_BYTES or len(data) > 1:
            raise UnsafePickleError(f"a numpy scalar declares a {getattr(dtype, 'itemsize', '?')}-byte type")
        if dtype.hasobject:
            raise UnsafePickleError("a numpy object scalar: network pickles hold only numeric scalars")
        if data and (not isinstance(data[0], (bytes, bytearray)) or len(data[0]) != dtype.itemsize):
            raise UnsafePickleError("a numpy scalar's data does not match its type")
        return ma.scalar(dtype, *data)

    out: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = reconstruct
        out[(mod, "scalar")] = scalar
    out[("numpy", "ndarray")] = _NdarrayToken
    out[("numpy", "dtype")] = np.dtype
    for name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_"):
        out[("numpy", name)] = getattr(np, name)
    return out


def _bounded_globals(max_bytes: int) -> dict[tuple[str, str], Any]:
    """The allowed callables that could allocate, each bounded by ``max_bytes`` (the file's size)."""

    def safe_bytearray(*args: Any) -> bytearray:
        if not args:
            return bytearray()
        if isinstance(args[0], (bytes, bytearray)) and len(args) == 1:
            return bytearray(args[0])
        if isinstance(args[0], str) and len(args) == 2 and args[1] in ("latin1", "latin-1"):
            return bytearray(args[0], args[1])
        if isinstance(args[0], int) and len(args) == 1 and 0 <= args[0] <= max_bytes:
            return bytearray(args[0])
        raise UnsafePickleError(
            f"refused bytearray{tuple(type(a).__name__ for a in args)!r}: "
            + (f"it declares {args[0]} bytes in a file of {max_bytes} bytes" if isinstance(args[0], int)
               else "network pickles only copy bytes into a bytearray")
        )

    def safe_encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        import _codecs

        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
            raise UnsafePickleError("refused _codecs.encode other than of a string to latin1 (pickle protocol 2 bytes)")
        return _codecs.encode(obj, encoding)

    out = {("builtins", "bytearray"): safe_bytearray, ("_codecs", "encode"): safe_encode}
    out.update(_numpy_globals(max_bytes))
    return out


def _safe_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _record_persistent,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("dnnlib", "EasyDict"): EasyDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
    }
    allowed.update(_torch_globals())
    return allowed


_ALLOWED: dict[tuple[str, str], Any] | None = None


def _allowed_globals() -> dict[tuple[str, str], Any]:
    global _ALLOWED
    if _ALLOWED is None:
        _ALLOWED = _safe_globals()
    return _ALLOWED


def _stream_size(fh: Any) -> int | None:
    try:
        pos = fh.tell()
        end = fh.seek(0, io.SEEK_END)
        fh.seek(pos)
        return int(end)
    except (AttributeError, OSError, ValueError):
        return None


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

    def __init__(self, file: Any, *, max_bytes: int | None = None):
        super().__init__(file)
        if max_bytes is None:
            max_bytes = _stream_size(file) or _DEFAULT_MAX_BYTES
        #: Bound on any size the stream may declare (its own size when known).
        self.max_bytes = int(max_bytes)
        self._bounded = _bounded_globals(self.max_bytes)

    def find_class(self, module: str, name: str) -> Any:
        obj = self._bounded.get((module, name)) or _allowed_globals().get((module, name))
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


def _regular_file_size(path: Path) -> int:
    """Size of ``path`` if it is a regular file; a specific error for anything else (never opened)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MissingInputError(f"network file not found: {path}") from None
    except OSError as exc:
        raise NetworkLoadError(f"cannot read network file {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise NotAPickleError(f"{path} is a directory, not a network file; give the .pkl/.pt/.safetensors file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise NotAPickleError(
            f"{path} is not a regular file (a FIFO, socket or device); network files are read only from regular "
            "files -- copy the network to a file first"
        )
    return st.st_size


def _sniff(path: Path) -> str:
    """Return 'pickle', 'torch_zip', 'safetensors' or raise a specific error."""
    size = _regular_file_size(path)
    if size == 0:
        raise TruncatedFileError(f"{path} is empty (0 bytes); the download was probably interrupted -- delete it and download again")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise NetworkLoadError(f"cannot read network file {path}: {exc.strerror or exc}") from None
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


_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}


def _check_opcodes(stream: Any, size: int, path: Path) -> None:
    """Walk the opcode stream once before unpickling: every declared length must fit in the file.

    ``pickletools.genops`` reads each declared length from ``stream`` (an mmap, which returns at
    most what is left, so nothing is allocated for a lie) and raises when fewer bytes remain; memo
    indices must not exceed the number of opcodes read so far (the C unpickler would grow its memo
    table to the index). Raises :class:`TruncatedFileError` or :class:`UnsafePickleError`.
    """
    n_ops = 0
    try:
        for op, arg, _pos in pickletools.genops(stream):
            n_ops += 1
            if op.name in _MEMO_PUT and isinstance(arg, int) and arg > n_ops:
                raise UnsafePickleError(
                    f"{path}: memo index {arg} after {n_ops} opcodes; a network pickle numbers its memo entries in order"
                )
    except UnsafePickleError:
        raise
    except (ValueError, EOFError, struct.error) as exc:
        msg = str(exc)
        raise TruncatedFileError(
            f"{path} is truncated or declares more data than it holds ({msg[:160]}; file is {size} bytes); "
            "if it is a download, delete it and download it again"
        ) from None


def _check_nesting(root: Any, path: Path, limit: int = MAX_NESTING) -> None:
    """Refuse containers nested deeper than ``limit`` (or cyclic) without recursing."""
    import numpy as np

    def children(obj: Any) -> list:
        if isinstance(obj, PersistentRecord):
            return [obj.state]
        if isinstance(obj, Mapping):
            return [*obj.keys(), *obj.values()]
        if isinstance(obj, (list, tuple, set, frozenset)):
            return list(obj)
        if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
            return list(obj.flat)
        return []

    def is_container(obj: Any) -> bool:
        return isinstance(obj, (PersistentRecord, Mapping, list, tuple, set, frozenset)) or (
            isinstance(obj, np.ndarray) and obj.dtype.hasobject)

    if not is_container(root):
        return
    height: dict[int, int] = {}
    on_path = {id(root)}
    stack = [(root, iter(children(root)))]
    while stack:
        obj, it = stack[-1]
        pushed = False
        for child in it:
            if not is_container(child):
                continue
            cid = id(child)
            if cid in on_path:
                raise UnsafePickleError(f"{path}: a container contains itself (a reference cycle); network pickles have none")
            if cid in height:
                if len(stack) + height[cid] > limit:
                    break
                continue
            if len(stack) >= limit:
                break
            on_path.add(cid)
            stack.append((child, iter(children(child))))
            pushed = True
            break
        else:
            stack.pop()
            on_path.discard(id(obj))
            height[id(obj)] = 1 + max((height.get(id(c), 0) for c in children(obj) if is_container(c)), default=0)
            continue
        if not pushed:
            raise UnsafePickleError(
                f"{path}: containers nested more than {limit} levels deep; network pickles nest about 15"
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
        fh = open(path, "rb")
    except OSError as exc:
        raise NetworkLoadError(f"cannot read network file {path}: {exc.strerror or exc}") from None
    try:
        with fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            size = len(mm)
            _check_opcodes(mm, size, path)
            mm.seek(0)
            data = SafeNetworkUnpickler(mm, max_bytes=size).load()
        _check_nesting(data, path)
    except UnsafePickleError as exc:
        msg = str(exc)
        raise type(exc)(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except EOFError:
        raise TruncatedFileError(
            f"{path} ends before the pickle does ({path.stat().st_size} bytes): the file is truncated, probably an "
            "interrupted download -- delete it and download it again"
        ) from None
    except NetworkLoadError as exc:
        msg = str(exc)
        raise type(exc)(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except MemoryError:
        raise UnsafePickleError(f"{path}: reading it needed more memory than is available; refused") from None
    except RecursionError:
        raise UnsafePickleError(f"{path}: nested too deeply to read; network pickles nest about 15 levels") from None
    except Exception as exc:  # anything else the stream provokes is a malformed file, reported as such
        msg = str(exc).splitlines()[0][:200] if str(exc) else ""
        if "truncated" in msg or "ran out of input" in msg.lower():
            raise TruncatedFileError(f"{path} is truncated ({msg}); delete it and download it again") from None
        raise NotAPickleError(f"{path} is not a readable network pickle: {type(exc).__name__}: {msg}") from None
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


def _build(init_kwargs: Mapping[str, Any], path: Path, stored_values: int | None = None) -> Discriminator:
    """Build ``Discriminator(**init_kwargs)`` after checking the arguments' ranges and, when given,
    that the network would not hold many more values than the file stores (``stored_values``)."""
    try:
        kwargs = check_init_kwargs(init_kwargs)
    except ValueError as exc:
        raise UnsupportedNetworkError(f"{path}: the stored init_kwargs are outside what discbias builds: {exc}") from None
    if stored_values is not None:
        need = estimate_parameters(kwargs)
        if need > 4 * stored_values + (1 << 20):
            raise StateDictMismatchError(
                f"{path}: the stored init_kwargs describe a network of {need:,} values but the file stores only "
                f"{stored_values:,} for it; refused before building (the config and the weights disagree)"
            )
    try:
        return Discriminator(**kwargs)
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        shown = repr(dict(kwargs))[:300]
        raise UnsupportedNetworkError(
            f"{path}: cannot build Discriminator from the stored init_kwargs {shown}: {exc}"
        ) from None


def _finish(D: Discriminator, state: Mapping[str, torch.Tensor], path: Path, device: Any) -> Discriminator:
    _check_state(D, state, path)
    with torch.no_grad():
        D.load_state_dict(dict(state), strict=True)
    return D.to(device).eval().requires_grad_(False)


def _stored_values(state: Mapping[str, Any], path: Path) -> int:
    """The number of values the file really stores for ``state`` (each storage counted once).

    A tensor whose elements outnumber its storage's (zero or overlapping strides: a 1-element
    storage viewed as 8.7e9 elements) is refused, so the network-size bound of :func:`_build`
    is checked against bytes that are in the file, not against a declared shape.
    """
    storages: dict[tuple, int] = {}
    for k, t in state.items():
        if not isinstance(t, torch.Tensor):
            continue
        st = t.untyped_storage()
        avail = st.nbytes() // max(1, t.element_size())
        n = t.numel()
        zero_stride = any(s == 0 and d > 1 for s, d in zip(t.stride(), t.shape))
        if n > avail or zero_stride:
            raise UnsafePickleError(f"{path}: tensor {k!r} of shape {list(t.shape)} (strides {list(t.stride())}) has "
                                    f"{n} elements but its storage holds {avail}: zero or overlapping strides are "
                                    f"refused")
        storages[(st.data_ptr(), st.nbytes())] = avail
    return sum(storages.values())


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
    state = flatten_record_state(rec)
    D = _build(kwargs, path, stored_values=_stored_values(state, path))
    _check_class_names(D, rec, path)
    return _finish(D, state, path, device)


def _load_ours(path: Path, kind: str, device: Any, init_kwargs: Mapping[str, Any] | None) -> Discriminator:
    if kind == "safetensors":
        try:
            from safetensors import safe_open
        except ImportError as exc:  # pragma: no cover - depends on environment
            raise ImportError(f"{path} is a safetensors file; install it with `pip install safetensors`") from exc
        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                meta = fh.metadata() or {}
                state = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:  # safetensors raises its own SafetensorError (header, offsets, dtype)
            if isinstance(exc, (MemoryError, KeyboardInterrupt)):
                raise
            raise TruncatedFileError(f"{path} is not a readable safetensors file ({type(exc).__name__}: "
                                     f"{str(exc)[:200]})") from None
        try:
            stored = json.loads(meta["init_kwargs"]) if "init_kwargs" in meta else None
        except (ValueError, RecursionError) as exc:
            raise NotAPickleError(f"{path}: the safetensors metadata 'init_kwargs' is not valid JSON ({str(exc)[:120]})"
                                  ) from None
        if stored is not None and not isinstance(stored, dict):
            raise NotAPickleError(f"{path}: the safetensors metadata 'init_kwargs' is not a JSON object")
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafePickleError(f"{path}: torch's weights-only loader refused the file: {_torch_message(exc)}") from None
        except (RuntimeError, EOFError) as exc:
            raise TruncatedFileError(
                f"{path} could not be read as a torch.save file ({_torch_message(exc)}); it may be truncated"
            ) from None
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
    stored = _stored_values(state, path)
    return _finish(_build(kwargs, path, stored_values=stored), state, path, device)


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
            raise MissingInputError(
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
