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

from .discriminator import Discriminator, DiscriminatorBlock, DiscriminatorEpilogue, discriminator_flops
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
from .pickle_reader import (
    PersistentRecord,
    SafeNetworkUnpickler,
    flatten_record_state,
    load_discriminator,
    read_network_pickle,
    save_discriminator,
)
from .registry import KNOWN_WEIGHTS, KnownWeights, default_weights_dir, download_weights, list_weights, weights_path

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
