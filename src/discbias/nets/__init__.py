"""Clean-room StyleGAN2/3 discriminator and a safe reader for NVIDIA network pickles.

Examples
--------
>>> import torch
>>> from discbias.nets import Discriminator
>>> D = Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=512, channel_max=32).eval()
>>> with torch.inference_mode():
...     D(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 1])
"""

from typing import TYPE_CHECKING

from .errors import (
    ChecksumMismatchError,
    MissingNetworkError,
    NetworkLoadError,
    NotAPickleError,
    StateDictMismatchError,
    TensorFlowPickleError,
    TruncatedFileError,
    UnsafePickleError,
    UnsupportedNetworkError,
    WeightsNotFoundError,
)
from .registry import KNOWN_WEIGHTS, KnownWeights, default_weights_dir, download_weights, list_weights, weights_path

if TYPE_CHECKING:  # never true at run time; declares the lazily loaded modules below to static readers, among
    # them discbias.imports, so that a step that uses discbias.nets has them in its code version
    from . import discriminator, pickle_reader  # noqa: F401

#: Names whose modules import torch: loaded on first use (PEP 562), so that what only needs the
#: registry or the errors (the command line, the render stage) starts without importing torch.
_LAZY = {
    "Discriminator": "discriminator", "DiscriminatorBlock": "discriminator", "DiscriminatorEpilogue": "discriminator",
    "discriminator_flops": "discriminator", "PersistentRecord": "pickle_reader", "SafeNetworkUnpickler": "pickle_reader",
    "flatten_record_state": "pickle_reader", "load_discriminator": "pickle_reader",
    "read_network_pickle": "pickle_reader", "save_discriminator": "pickle_reader",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Discriminator",
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "discriminator_flops",
    "PersistentRecord",
    "SafeNetworkUnpickler",
    "read_network_pickle",
    "flatten_record_state",
    "load_discriminator",
    "save_discriminator",
    "KNOWN_WEIGHTS",
    "KnownWeights",
    "list_weights",
    "default_weights_dir",
    "weights_path",
    "download_weights",
    "NetworkLoadError",
    "NotAPickleError",
    "TruncatedFileError",
    "MissingNetworkError",
    "UnsupportedNetworkError",
    "UnsafePickleError",
    "TensorFlowPickleError",
    "StateDictMismatchError",
    "WeightsNotFoundError",
    "ChecksumMismatchError",
]
