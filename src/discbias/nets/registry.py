"""Registry of NVIDIA's released StyleGAN3 / StyleGAN2(-ADA) PyTorch network pickles.

The weights are NVIDIA's, released under the NVIDIA Source Code License
(research and evaluation use only). discbias never commits or redistributes
them: :func:`download_weights` fetches them from NVIDIA's own servers into a
local weights directory (``data/weights/`` under the working directory, or
``$DISCBIAS_WEIGHTS_DIR``).

``d_params`` is the parameter count of the discriminator, derived by
building :class:`~discbias.nets.Discriminator` with the configuration the
network was trained with (``d_kwargs``, taken from NVIDIA's documented
training commands); :func:`load_discriminator` warns if a loaded file
differs. ``sha256`` is ``None`` where we have not verified the hash of the
official file; then the download is not hash-checked (the file's sha256 is
printed so it can be recorded).
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ChecksumMismatchError, UnknownWeightsError, WeightsNotFoundError
from ..fetch import sha256_file, stream_download  # one implementation for the whole package

__all__ = [
    "KnownWeights",
    "KNOWN_WEIGHTS",
    "LICENSE_NOTE",
    "WEIGHTS_DIR_ENV",
    "default_weights_dir",
    "weights_path",
    "list_weights",
    "download_weights",
    "sha256_file",
]

WEIGHTS_DIR_ENV = "DISCBIAS_WEIGHTS_DIR"

LICENSE_NOTE = (
    "NVIDIA Source Code License for StyleGAN3/StyleGAN2-ADA: research and evaluation use only "
    "(non-commercial); the weights are downloaded from NVIDIA and never redistributed by discbias."
)

_SG3 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
_SG2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"


@dataclass(frozen=True)
class KnownWeights:
    """One released network pickle.

    Attributes
    ----------
    name : str
        File name used in the weights directory.
    url : str
        NVIDIA download URL.
    resolution : int
        Image resolution of the networks.
    d_kwargs : dict
        Discriminator configuration it was trained with (``c_dim`` etc.).
    d_params : int or None
        Expected number of discriminator parameters.
    sha256 : str or None
        Expected sha256 of the file, when known.
    license : str
        Licence note.
    description : str
        What the network was trained on.

    Examples
    --------
    >>> KNOWN_WEIGHTS["stylegan3-r-ffhq-1024x1024.pkl"].resolution
    1024
    """

    name: str
    url: str
    resolution: int
    d_kwargs: dict = field(repr=False)
    d_params: int | None = None
    sha256: str | None = None
    license: str = LICENSE_NOTE
    description: str = ""


def _d_kwargs(resolution: int, channel_base: int = 32768, mbstd_group_size: int = 4, c_dim: int = 0) -> dict:
    return dict(
        c_dim=c_dim, img_resolution=resolution, img_channels=3, architecture="resnet",
        channel_base=channel_base, channel_max=512, num_fp16_res=4, conv_clamp=256,
        epilogue_kwargs=dict(mbstd_group_size=mbstd_group_size),
    )


# d_params computed with sum(p.numel() for p in Discriminator(**d_kwargs).parameters()); checked in the tests.
_P1024, _P512, _P256_HALF = 29_012_513, 28_982_849, 24_001_089

_ENTRIES = [
    KnownWeights("stylegan3-r-ffhq-1024x1024.pkl", _SG3 + "stylegan3-r-ffhq-1024x1024.pkl", 1024,
                 _d_kwargs(1024), _P1024, description="StyleGAN3-R, FFHQ 1024x1024 (aligned faces)"),
    KnownWeights("stylegan3-t-ffhq-1024x1024.pkl", _SG3 + "stylegan3-t-ffhq-1024x1024.pkl", 1024,
                 _d_kwargs(1024), _P1024, description="StyleGAN3-T, FFHQ 1024x1024 (aligned faces)"),
    KnownWeights("stylegan3-r-ffhqu-1024x1024.pkl", _SG3 + "stylegan3-r-ffhqu-1024x1024.pkl", 1024,
                 _d_kwargs(1024), _P1024, description="StyleGAN3-R, FFHQ-U 1024x1024 (unaligned faces)"),
    KnownWeights("stylegan3-r-ffhqu-256x256.pkl", _SG3 + "stylegan3-r-ffhqu-256x256.pkl", 256,
                 _d_kwargs(256, channel_base=16384), _P256_HALF,
                 description="StyleGAN3-R, FFHQ-U 256x256 (trained with --cbase=16384)"),
    KnownWeights("stylegan3-r-metfaces-1024x1024.pkl", _SG3 + "stylegan3-r-metfaces-1024x1024.pkl", 1024,
                 _d_kwargs(1024), _P1024, description="StyleGAN3-R, MetFaces 1024x1024 (fine-tuned from FFHQ)"),
    KnownWeights("stylegan3-r-afhqv2-512x512.pkl", _SG3 + "stylegan3-r-afhqv2-512x512.pkl", 512,
                 _d_kwargs(512), _P512, description="StyleGAN3-R, AFHQv2 512x512 (animal faces)"),
    KnownWeights("stylegan2-ffhq-1024x1024.pkl", _SG2 + "stylegan2-ffhq-1024x1024.pkl", 1024,
                 _d_kwargs(1024), _P1024, description="StyleGAN2 (StyleGAN3 codebase), FFHQ 1024x1024"),
    KnownWeights("stylegan2-ada-pytorch-ffhq.pkl", _ADA + "ffhq.pkl", 1024,
                 _d_kwargs(1024), _P1024, description="StyleGAN2-ADA (PyTorch release), FFHQ 1024x1024"),
    KnownWeights("stylegan2-ada-pytorch-metfaces.pkl", _ADA + "metfaces.pkl", 1024,
                 _d_kwargs(1024), _P1024, description="StyleGAN2-ADA (PyTorch release), MetFaces 1024x1024"),
]

#: Known official network pickles by file name.
KNOWN_WEIGHTS: dict[str, KnownWeights] = {w.name: w for w in _ENTRIES}


def list_weights() -> list[KnownWeights]:
    """Return the registry entries, sorted by name.

    Examples
    --------
    >>> "stylegan3-r-ffhq-1024x1024.pkl" in [w.name for w in list_weights()]
    True
    """
    return [KNOWN_WEIGHTS[k] for k in sorted(KNOWN_WEIGHTS)]


def default_weights_dir() -> Path:
    """Directory for downloaded weights: ``$DISCBIAS_WEIGHTS_DIR`` or ``./data/weights``.

    Examples
    --------
    >>> default_weights_dir().name in ("weights", os.environ.get("DISCBIAS_WEIGHTS_DIR", "weights").rstrip("/").split("/")[-1])
    True
    """
    from ..paths import project_paths

    return project_paths().weights


def _entry(name: str) -> KnownWeights:
    try:
        return KNOWN_WEIGHTS[name]
    except KeyError:
        raise UnknownWeightsError(f"unknown weights {name!r}; known: {', '.join(sorted(KNOWN_WEIGHTS))}") from None


def weights_path(name: str, dest_dir: str | os.PathLike | None = None, must_exist: bool = False) -> Path:
    """Where the weights ``name`` live (or should be put).

    Parameters
    ----------
    name : str
        Registry name.
    dest_dir : path-like, optional
        Weights directory (default :func:`default_weights_dir`).
    must_exist : bool
        Raise :class:`WeightsNotFoundError` (with URL and destination) if absent.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> weights_path("stylegan3-r-ffhq-1024x1024.pkl", "/tmp/w").as_posix()
    '/tmp/w/stylegan3-r-ffhq-1024x1024.pkl'
    """
    entry = _entry(name)
    path = Path(dest_dir) if dest_dir is not None else default_weights_dir()
    path = path / entry.name
    if must_exist and not path.is_file():
        raise WeightsNotFoundError(
            f"{entry.name} is not in the weights directory. Download it with "
            f"discbias.nets.download_weights({entry.name!r}), or fetch {entry.url} yourself and put it at {path} "
            f"(set ${WEIGHTS_DIR_ENV} to use another directory). Licence: {entry.license}"
        )
    return path


def download_weights(
    name: str,
    dest_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    url: str | None = None,
    opener: Callable[..., Any] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download a registry network into the weights directory (no-op if present).

    The file is streamed into a temporary file next to the destination,
    checked against the registry's sha256 when one is known, and renamed
    into place atomically, so an interrupted download never leaves a
    partial file under the final name.

    Parameters
    ----------
    name : str
        Registry name (see :func:`list_weights`).
    dest_dir : path-like, optional
        Weights directory (default :func:`default_weights_dir`).
    progress : bool
        Print progress to stderr.
    url : str, optional
        Override the download URL (e.g. a local mirror or a ``file://`` URL).
    opener : callable, optional
        Replacement for :func:`urllib.request.urlopen` (used by the tests).
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        The downloaded (or already present) file.

    Raises
    ------
    WeightsNotFoundError
        When the download fails (offline, HTTP error); the message gives the
        URL and the path to put the file at.
    ChecksumMismatchError
        When the sha256 is known and differs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp(), "src.pkl"); _ = src.write_bytes(b"x")
    >>> out = download_weights("stylegan3-r-ffhq-1024x1024.pkl", tempfile.mkdtemp(), progress=False,
    ...                        url=src.as_uri())
    >>> out.read_bytes()
    b'x'
    """
    entry = _entry(name)
    target = weights_path(name, dest_dir)
    if target.is_file():
        return target
    source = url or entry.url
    target.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        sys.stderr.write(f"Downloading {source}\n  -> {target}\n  Licence: {entry.license}\n")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            digest = stream_download(source, tmp, label=entry.name, progress=progress, opener=opener, timeout=timeout)
        except OSError as exc:
            raise WeightsNotFoundError(
                f"could not download {entry.name} from {source} ({exc}). If this machine is offline, download "
                f"the file elsewhere and put it at {target} (or set ${WEIGHTS_DIR_ENV}). Licence: {entry.license}"
            ) from exc
        if entry.sha256 is not None and digest != entry.sha256:
            raise ChecksumMismatchError(
                f"{entry.name} downloaded from {source} has sha256 {digest}, expected {entry.sha256}; the file was "
                "discarded -- retry, or check the URL"
            )
        if progress and entry.sha256 is None:
            sys.stderr.write(f"  sha256 {digest} (no known hash to check against)\n")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
