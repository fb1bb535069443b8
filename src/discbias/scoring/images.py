"""Decoding image files into RGB uint8 arrays, with documented conversion rules.

Every file is either converted by one of the rules below (the applied rules are returned and
recorded as ``conversion`` with the score) or rejected with an :class:`ImageError` whose message
becomes the ``reason`` in the cache's ``failures`` table.

=====================  ==========================================================================
Input                  Rule
=====================  ==========================================================================
zero-byte file         rejected: ``empty file (0 bytes)``
not an image           rejected: ``not a readable image (...)``
truncated / corrupt    rejected: ``corrupt or truncated image (...)`` (never partially decoded)
EXIF orientation       pixels rotated/mirrored upright first (``exif-transpose``)
grayscale (L, 1)       replicated to three channels (``gray->rgb``)
16-bit (I;16, I)       scaled to 8 bits, ``round(v / 257)`` (``16bit->8bit``), then as grayscale
48-bit RGB PNG         Pillow decodes these to 8-bit RGB itself
float (F)              rejected: ``floating-point image`` (no defined 8-bit mapping)
palette (P)            expanded to its colours (``palette->rgb``; with transparency as RGBA)
alpha (RGBA, LA, PA)   composited over opaque white (``alpha-over-white``)
CMYK                   Pillow's naive conversion, no ICC profile (``cmyk->rgb``)
YCbCr, LAB, HSV        Pillow's conversion to RGB (``<mode>->rgb``)
smaller than min_side  rejected: ``too small: WxH, smaller than min_side=...`` (never upsampled
                       from a few pixels); default ``min_side`` is 32
multi-frame (GIF/TIF)  first frame (``first-frame``)
=====================  ==========================================================================
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..defaults import DEFAULTS
from ..fetch import sha256_file  # one implementation for the whole package
from ..errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
DEFAULT_MIN_SIDE = DEFAULTS["scoring"]["min_side"]


class ImageError(UserError, ValueError):
    """A file cannot be turned into an RGB image; the message is the recorded reason."""


@contextmanager
def _open_regular(path: str | os.PathLike):
    """Open ``path`` non-blocking and yield a binary file object, only if it is a regular file."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"not a regular file ({special_kind(st.st_mode)}); special files are never read")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            yield fh
    finally:
        os.close(fd)


def read_regular_file(path: str | os.PathLike) -> bytes:
    """Read a file's bytes only if it is a regular file; never block on a FIFO or read a device.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor (so a file
    swapped for a FIFO after discovery is caught too). Raises :class:`ImageError` naming the kind
    of special file, or ``OSError`` (unreadable, missing, a symlink loop).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.png"; _ = p.write_bytes(b"abc")
    >>> read_regular_file(p)
    b'abc'
    >>> read_regular_file("/dev/null")
    Traceback (most recent call last):
    ...
    discbias.scoring.images.ImageError: not a regular file (a character device); special files are never read
    """
    with _open_regular(path) as fh:
        return fh.read()


def sha256_regular_file(path: str | os.PathLike) -> str:
    """sha256 of a regular file, read in chunks (special files refused as by :func:`read_regular_file`).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a"; _ = p.write_bytes(b"abc")
    >>> sha256_regular_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    with _open_regular(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def special_kind(mode: int) -> str:
    """Words for a non-regular file mode (``a FIFO``, ``a character device``...).

    Examples
    --------
    >>> import stat
    >>> special_kind(stat.S_IFIFO)
    'a FIFO'
    """
    import stat

    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def display_name(name: str) -> str:
    """A file name as printable text: bytes that are not UTF-8 (kept as surrogate escapes) appear as ``\\xNN``.

    Examples
    --------
    >>> print(display_name(b"caf\\xe9.png".decode("utf-8", "surrogateescape")))
    caf\\xe9.png
    >>> display_name("ok.png")
    'ok.png'
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def sha256_bytes(data: bytes) -> str:
    """sha256 hex digest of bytes.

    Examples
    --------
    >>> sha256_bytes(b"")[:8]
    'e3b0c442'
    """
    return hashlib.sha256(data).hexdigest()


def sha256_pixels(arr: np.ndarray) -> str:
    """sha256 of decoded 8-bit RGB pixels: the header ``"<H>x<W>x<C>:"`` then the row-major bytes.

    This is the cache's image identity for images that exist only in memory (the probes): the
    contract "sha256 of the decoded image bytes". The header keeps two images with the same bytes
    but different shapes apart. A file scored from disk is identified by the sha256 of the file
    instead, so the same pixels scored once as a file and once as an array are two cache rows
    (with equal scores; see :meth:`Scorer.score_arrays`).

    Examples
    --------
    >>> sha256_pixels(np.zeros((1, 1, 3), np.uint8))[:12]
    'db7d0f6944d1'
    >>> sha256_pixels(np.zeros((1, 2, 3), np.uint8)) == sha256_pixels(np.zeros((2, 1, 3), np.uint8))
    False
    """
    arr = check_rgb8(arr)
    h = hashlib.sha256(f"{arr.shape[0]}x{arr.shape[1]}x{arr.shape[2]}:".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def check_rgb8(arr) -> np.ndarray:
    """Validate an in-memory image: an ``H x W x 3`` uint8 array (returned C-contiguous).

    Raises :class:`TypeError` for another dtype and :class:`ValueError` for another shape: an
    array is made by code, so a wrong one is a programming error, not a bad input file.

    Examples
    --------
    >>> check_rgb8(np.zeros((2, 2, 3), np.uint8)).shape
    (2, 2, 3)
    >>> check_rgb8(np.zeros((2, 2), np.uint8))
    Traceback (most recent call last):
    ...
    ValueError: expected an H x W x 3 RGB array, got shape (2, 2)
    """
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy array, got {getattr(arr, 'dtype', type(arr).__name__)}; "
                        f"convert with np.clip(np.rint(x), 0, 255).astype(np.uint8)")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def decode_rgb(data: bytes, *, min_side: int = DEFAULT_MIN_SIDE) -> tuple[np.ndarray, list[str]]:
    """Decode image bytes into an upright ``H x W x 3`` uint8 RGB array.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    min_side : int
        Smallest accepted width and height.

    Returns
    -------
    (numpy.ndarray, list of str)
        The pixels and the conversion rules applied (see the module docstring).

    Raises
    ------
    ImageError
        The file is empty, not an image, corrupt, truncated, floating point or too small.

    Examples
    --------
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("L", (40, 32), 7).save(buf, "PNG")
    >>> arr, notes = decode_rgb(buf.getvalue())
    >>> arr.shape, arr.dtype, notes
    ((32, 40, 3), dtype('uint8'), ['gray->rgb'])
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) == 0:
        raise ImageError("empty file (0 bytes)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
                notes.append("first-frame")
            img.load()
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a readable image ({exc.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ImageError(f"corrupt or truncated image ({exc})") from None
    try:
        transposed = ImageOps.exif_transpose(img)
    except Exception as exc:  # malformed EXIF blocks raise many kinds of errors
        raise ImageError(f"unreadable EXIF orientation ({exc})") from None
    if transposed is not None and transposed is not img:
        orientation = img.getexif().get(0x0112, 1)
        if orientation not in (None, 1):
            notes.append("exif-transpose")
        img = transposed
    mode = img.mode
    if mode == "F":
        raise ImageError("floating-point image (mode F): no defined mapping to 8-bit RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.int64)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise ImageError(f"32-bit integer image (mode {mode}) with values outside 0..65535")
        arr8 = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        notes += ["16bit->8bit", "gray->rgb"]
        return check_size(np.repeat(arr8[..., None], 3, axis=2), min_side), notes
    if mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette->rgb")
        mode = img.mode
    if mode == "PA":
        img = img.convert("RGBA")
        notes.append("palette->rgb")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba).convert("RGB")
        notes.append("alpha-over-white")
        mode = "RGB"
    if mode in ("L", "1"):
        img = img.convert("L").convert("RGB")
        notes.append("gray->rgb")
    elif mode == "CMYK":
        img = img.convert("RGB")
        notes.append("cmyk->rgb")
    elif mode != "RGB":
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageError(f"image mode {mode} cannot be converted to RGB ({exc})") from None
        notes.append(f"{mode.lower()}->rgb")
    arr = np.asarray(img, dtype=np.uint8)
    return check_size(arr, min_side), notes


def check_size(arr: np.ndarray, min_side: int) -> np.ndarray:
    """``arr`` as a contiguous array; :class:`ImageError` when its smaller side is below ``min_side``.

    Examples
    --------
    >>> check_size(np.zeros((40, 50, 3), np.uint8), 32).shape
    (40, 50, 3)
    >>> check_size(np.zeros((8, 50, 3), np.uint8), 32)
    Traceback (most recent call last):
    ...
    discbias.scoring.images.ImageError: too small: 50x8 pixels, smaller than min_side=32
    """
    h, w = arr.shape[:2]
    if min(h, w) < min_side:
        raise ImageError(f"too small: {w}x{h} pixels, smaller than min_side={min_side}")
    return np.ascontiguousarray(arr)


def resize_square(arr: np.ndarray, resolution: int, resize: str = "stretch",
                  filter: str = "lanczos") -> tuple[np.ndarray, str | None]:
    """Bring an RGB uint8 image to ``resolution x resolution`` by the named rule.

    Returns the pixels and a note (``None`` when the image already had the right size).

    Examples
    --------
    >>> a = np.zeros((20, 40, 3), np.uint8)
    >>> [resize_square(a, 16, r)[0].shape for r in ("stretch", "center-crop", "pad")]
    [(16, 16, 3), (16, 16, 3), (16, 16, 3)]
    >>> resize_square(np.zeros((16, 16, 3), np.uint8), 16)[1] is None
    True
    """
    from PIL import Image

    h, w = arr.shape[:2]
    if h == resolution and w == resolution:
        return arr, None
    resample = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC}[filter]
    img = Image.fromarray(arr, "RGB")
    if resize == "stretch":
        out = img.resize((resolution, resolution), resample=resample)
    elif resize == "center-crop":
        s = resolution / min(h, w)
        nw, nh = max(resolution, round(w * s)), max(resolution, round(h * s))
        img = img.resize((nw, nh), resample=resample)
        left, top = (nw - resolution) // 2, (nh - resolution) // 2
        out = img.crop((left, top, left + resolution, top + resolution))
    elif resize == "pad":
        s = resolution / max(h, w)
        nw, nh = min(resolution, max(1, round(w * s))), min(resolution, max(1, round(h * s)))
        img = img.resize((nw, nh), resample=resample)
        out = Image.new("RGB", (resolution, resolution), (0, 0, 0))
        out.paste(img, ((resolution - nw) // 2, (resolution - nh) // 2))
    else:
        raise ValueError(f"unknown resize rule {resize!r}")
    return np.asarray(out, dtype=np.uint8), f"{resize}-{filter} {w}x{h}->{resolution}"


def colour_stats(arr: np.ndarray) -> dict[str, float]:
    """Mean R, G, B (0-255) and luminance (Rec. 709 weights on gamma-encoded values in [0, 1]).

    The same definition as the released files' ``luminance`` column (not linear light).

    Examples
    --------
    >>> colour_stats(np.full((2, 2, 3), 255, np.uint8))["luminance"]
    1.0
    """
    m = arr.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    lum = (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255.0
    return dict(red_mean=float(m[0]), green_mean=float(m[1]), blue_mean=float(m[2]), luminance=float(round(lum, 12)))


def load_for_scoring(path: str | Path, resolution: int, resize: str, filter: str, *,
                     min_side: int = DEFAULT_MIN_SIDE) -> tuple[str, np.ndarray, list[str], dict]:
    """Read a file once: its sha256, the ``R x R x 3`` uint8 input, conversion notes, colour stats.

    Colour statistics are computed on the decoded image before resizing.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> p = Path(tempfile.mkdtemp()) / "a.png"; Image.new("RGB", (48, 40), (10, 20, 30)).save(p)
    >>> sha, arr, notes, stats = load_for_scoring(p, 32, "stretch", "lanczos")
    >>> arr.shape, notes, stats["red_mean"]
    ((32, 32, 3), ['stretch-lanczos 48x40->32'], 10.0)
    """
    data = read_regular_file(path)
    sha = sha256_bytes(data)
    arr, notes = decode_rgb(data, min_side=min_side)
    stats = colour_stats(arr)
    arr, note = resize_square(arr, resolution, resize, filter)
    if note:
        notes.append(note)
    return sha, arr, notes, stats
