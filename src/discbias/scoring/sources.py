"""Image sources: a folder (recursive), a manifest CSV, or the FFHQ layout; deterministic shards."""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .images import IMAGE_SUFFIXES, special_kind
from ..errors import UserError


class SourceError(UserError, ValueError):
    """An image source cannot be read (missing folder, manifest without an ``image`` column...)."""


@dataclass(frozen=True)
class ImageItem:
    """One input: its name in the outputs, its file, and any manifest metadata.

    Attributes
    ----------
    image : str
        Path relative to the source root (folder) or as written in the manifest.
    path : pathlib.Path
        The file.
    image_id : str
        File stem (for FFHQ ``00000/00012.png`` -> ``00012``).
    meta : dict
        Other manifest columns.
    error : str or None
        Set when discovery already knows the entry cannot be read (a FIFO, device, socket, broken
        link or symbolic-link loop named like an image, or a sub-folder that cannot be listed):
        the entry is listed as a failure with this reason and never opened.
    """

    image: str
    path: Path
    image_id: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    error: str | None = field(default=None, compare=False, hash=False)


def _entry_problem(entry: os.DirEntry) -> str | None:
    """Why a directory entry named like an image cannot be an image file (None if it is a regular file)."""
    import stat

    try:
        st = entry.stat()  # follows symbolic links
    except OSError as exc:
        if entry.is_symlink():
            if exc.errno == errno.ELOOP:
                return "symbolic link loop; not read"
            return f"broken symbolic link ({exc.strerror}); not read"
        return f"cannot read file ({exc.strerror or exc})"
    if stat.S_ISREG(st.st_mode):
        return None
    link = "symbolic link to " if entry.is_symlink() else ""
    return f"{link}{special_kind(st.st_mode)}, not a regular file; special files are never read"


def _folder(root: Path) -> list[ImageItem]:
    """Walk ``root`` (not following links to folders) listing images and the entries that cannot be read."""
    items = []
    todo = [root]
    while todo:
        d = todo.pop()
        rel_d = d.relative_to(root).as_posix()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            items.append(ImageItem(f"{rel_d}/", d, "", error=f"cannot list folder ({exc.strerror or exc}); "
                                   f"the images in it were not included"))
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            p = Path(e.path)
            rel = p.relative_to(root).as_posix()
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                todo.append(p)
            elif e.is_symlink() and _is_dir_link(p):
                if e.name.lower().endswith(IMAGE_SUFFIXES):
                    items.append(ImageItem(rel, p, Path(e.name).stem, error="symbolic link to a folder; not followed"))
            elif e.name.lower().endswith(IMAGE_SUFFIXES):
                items.append(ImageItem(rel, p, Path(e.name).stem, error=_entry_problem(e)))
    items.sort(key=lambda it: it.image)
    return items


def _is_dir_link(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def _manifest(path: Path) -> list[ImageItem]:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "image" not in df.columns:
        raise SourceError(f"{path}: a manifest needs an `image` column with the image paths; columns are "
                          f"{list(df.columns)[:10]}")
    items = []
    for i, r in df.iterrows():
        name = r["image"].strip()
        if not name:
            raise SourceError(f"{path}: row {i + 2} has an empty `image`; fill it or drop the row")
        p = Path(name)
        if not p.is_absolute():
            p = path.parent / p
        meta = {k: v for k, v in r.items() if k != "image"}
        items.append(ImageItem(name, p, str(meta.get("image_id") or Path(name).stem), meta))
    return items


def discover(source: str | os.PathLike) -> list[ImageItem]:
    """List the images of a source, sorted by name.

    Parameters
    ----------
    source : path-like
        A folder (searched recursively for png/jpg/jpeg/webp; the FFHQ layout
        ``00000/00000.png`` is such a folder and gets ``image_id`` ``00000``) or a manifest
        CSV with an ``image`` column (paths relative to the CSV's folder) and any metadata.

    Returns
    -------
    list of ImageItem
        Including, with ``error`` set, entries named like images that cannot be read (special
        files, broken links, link loops) and sub-folders that cannot be listed; the caller lists
        them as failures. File names that are not valid UTF-8 are kept exactly (surrogate escapes).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "00000").mkdir()
    >>> for n in ("00001", "00000"): _ = (d / "00000" / f"{n}.png").write_bytes(b"")
    >>> [(i.image, i.image_id) for i in discover(d)]
    [('00000/00000.png', '00000'), ('00000/00001.png', '00001')]
    """
    p = Path(source).expanduser()
    if p.is_dir():
        items = _folder(p)
        if not items:
            raise SourceError(f"{p}: no images (png, jpg, jpeg, webp) in this folder or below")
        return items
    if p.is_file() and p.suffix.lower() == ".csv":
        return _manifest(p)
    if not p.exists():
        raise SourceError(f"image source {p} does not exist; give a folder or a manifest CSV")
    raise SourceError(f"image source {p} is neither a folder nor a .csv manifest")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``"i/N"`` (0 <= i < N).

    Examples
    --------
    >>> parse_shard("1/4")
    (1, 4)
    """
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SourceError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise SourceError(f"--shard {text}: need 0 <= i < N")
    return i, n


def shard(items: list[ImageItem], i: int, n: int) -> list[ImageItem]:
    """Shard ``i`` of ``n``: items whose name's sha256 is ``i`` modulo ``n`` (independent of order).

    Examples
    --------
    >>> items = [ImageItem(f"{k}.png", Path(f"{k}.png"), str(k)) for k in range(100)]
    >>> parts = [shard(items, i, 3) for i in range(3)]
    >>> sum(len(p) for p in parts), len(set().union(*[{x.image for x in p} for p in parts]))
    (100, 100)
    """
    return [it for it in items
            if int(hashlib.sha256(it.image.encode("utf-8", "surrogateescape")).hexdigest(), 16) % n == i]
