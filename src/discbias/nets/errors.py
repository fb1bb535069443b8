"""Exceptions raised while reading network files and building discriminators.

Every error names the file (and where relevant the key, both shapes or the
URL) and says what to do next.
"""

from __future__ import annotations

import pickle

from ..errors import UserError

__all__ = [
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
    "UnknownWeightsError",
]


class NetworkLoadError(UserError, ValueError):
    """Base class of every error raised while loading a network file."""


class NotAPickleError(NetworkLoadError):
    """The file is neither a network pickle nor one of our state-dict formats."""


class TruncatedFileError(NetworkLoadError):
    """The file ends before the pickle stream does (an interrupted download)."""


class MissingNetworkError(NetworkLoadError):
    """The pickle was read but holds no discriminator (no ``D`` entry)."""


class UnsupportedNetworkError(NetworkLoadError):
    """The pickle holds a network class or configuration we do not implement."""


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """The pickle asked for a global that a network pickle never needs.

    Raised by the restricted unpickler *before* the global is resolved, so
    nothing named in the file is imported or called.
    """


class TensorFlowPickleError(UnsafePickleError, UnsupportedNetworkError):
    """A TensorFlow-era (StyleGAN/StyleGAN2/StyleGAN2-ADA TF) pickle."""


class StateDictMismatchError(NetworkLoadError):
    """Stored tensors do not match the network built from the stored config."""


class WeightsNotFoundError(UserError, FileNotFoundError):
    """Known weights are not on disk and could not be downloaded."""


class UnknownWeightsError(UserError, KeyError):
    """A weights name that is not in the registry (:data:`discbias.nets.registry.KNOWN_WEIGHTS`)."""

    __str__ = Exception.__str__  # KeyError would print the message in quotes


class ChecksumMismatchError(NetworkLoadError):
    """A downloaded file does not have the expected sha256."""
