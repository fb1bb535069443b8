"""Fetch stage: download released data by URL and sha256, or copy it from a local mirror.

Offline, set ``DISCBIAS_DATA_MIRROR`` to a folder holding the files under their configured
names; files are copied from there and verified exactly like downloads. A file is only ever
moved into ``data/raw/`` after its checksum matched, so a good file is never replaced by a bad
one and nothing half-written is left behind.

A source of kind ``"json_tree"`` (for example the FFHQ face attributes, 70,000 JSON files) is
verified by a *content digest* over its member files instead of the archive's bytes, because
archives of the same files made by different packers differ. It may be found as the mirror's
tarball, an upstream archive (``<repo>-<commit>/json/...``) or an extracted ``json/`` folder; what
is installed in ``data/raw`` is always an archive whose content digest matched.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .config import Source, StudyConfig
from .errors import UserError
from .progress import progress as _bar

MIRROR_ENV = "DISCBIAS_DATA_MIRROR"
_CHUNK = 1 << 20


class FetchError(UserError, RuntimeError):
    """A released file could not be obtained."""


class MissingFileError(FetchError):
    """The file is neither in ``data/raw`` nor in the mirror, and could not be downloaded."""


class ChecksumError(FetchError):
    """The bytes obtained do not have the configured sha256."""

    def __init__(self, file: str, expected: str, actual: str, origin: str):
        self.file, self.expected, self.actual, self.origin = file, expected, actual, origin
        super().__init__(
            f"checksum mismatch for {file} (from {origin}): expected sha256 {expected}, "
            f"got {actual}. The file was not installed; check the source or the configured hash."
        )


class ContentDigestError(ChecksumError):
    """The files of an archive or folder do not have the configured content digest."""

    def __init__(self, file: str, expected: str, actual: str, origin: str, n_files: int | None = None):
        self.file, self.expected, self.actual, self.origin, self.n_files = file, expected, actual, origin, n_files
        RuntimeError.__init__(
            self,
            f"content digest mismatch for {file} (from {origin}): expected {expected}, got {actual}"
            + (f" over {n_files} member files" if n_files is not None else "")
            + ". Nothing was installed; the archive or folder holds other files than the pinned upstream commit "
            "(or is incomplete). Check the source or the configured content_digest.",
        )


def sha256_file(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    """Return the hex sha256 of a file, read in chunks (1 MiB by default).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_source` did for one file."""

    name: str
    path: Path
    sha256: str
    origin: str  # "cached", "mirror:<dir>" or the URL
    bytes: int


def _install_verified(tmp: Path, dest: Path, source: Source, origin: str) -> str:
    actual = sha256_file(tmp)
    if actual != source.sha256:
        tmp.unlink(missing_ok=True)
        raise ChecksumError(source.file, source.sha256, actual, origin)
    os.chmod(tmp, 0o444)  # raw data is immutable
    os.replace(tmp, dest)  # atomic on one filesystem
    return actual


def _copy_mirror_entry(candidate: Path, tmp: Path) -> None:
    """Copy a mirror file to ``tmp``; a directory, special file or unreadable entry is a
    :class:`FetchError` naming the mirror path (a FIFO is never opened for reading)."""
    import stat

    try:
        mode = candidate.stat().st_mode
    except OSError as exc:
        raise FetchError(f"cannot read mirror entry {candidate}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise FetchError(f"mirror entry {candidate} is a folder, not the file {candidate.name}; put the file itself "
                         f"in the mirror")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise FetchError(f"mirror entry {candidate} is {kind}, not a regular file; special files are never read")
    try:
        shutil.copyfile(candidate, tmp)
    except OSError as exc:
        raise FetchError(f"cannot read mirror entry {candidate}: {exc.strerror or exc}") from None


def _tmp_beside(dest: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    return Path(name)


def stream_download(url: str, dest: str | os.PathLike, *, label: str, progress: bool = True,
                    opener: Callable[..., Any] | None = None, timeout: float = 60.0) -> str:
    """Stream ``url`` into the file ``dest`` with a progress bar on stderr; return the bytes' sha256.

    The one download loop of the package: :func:`fetch_source` (released data) and
    :func:`discbias.nets.download_weights` (network weights) both use it, each installing the
    file under its final name only after checking the hash. A connection that closes before the
    announced ``Content-Length`` is an error, not a short file.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL.
    dest : path
        File to write (created or truncated; normally a temporary file beside the destination).
    label : str
        Name shown on the progress bar.
    progress : bool
        Show a progress bar on stderr (:func:`discbias.progress.progress`; silent with ``-q``).
    opener : callable, optional
        Replacement for :func:`urllib.request.urlopen` (``opener(url, timeout=...)``; tests).
    timeout : float
        Socket timeout in seconds.

    Raises
    ------
    OSError
        The URL could not be read (offline, HTTP error, unknown URL type, short read); callers
        turn it into an error that says what to do.

    Examples
    --------
    >>> import tempfile, pathlib, hashlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.bin").write_bytes(b"abc")
    >>> stream_download((d / "a.bin").as_uri(), d / "copy", label="a.bin", progress=False) == hashlib.sha256(b"abc").hexdigest()
    True
    """
    open_url = opener or urllib.request.urlopen
    h = hashlib.sha256()
    try:
        with open_url(url, timeout=timeout) as resp, open(dest, "wb") as out:
            headers = getattr(resp, "headers", None)
            total = int(headers.get("Content-Length") or 0) or None if headers is not None else None
            done = 0
            with _bar(total=total, unit="B", unit_scale=True, desc=label, disable=not progress or None) as bar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
    except ValueError as exc:  # urllib: unknown URL type
        raise OSError(str(exc)) from exc
    if total is not None and done != total:
        raise OSError(f"connection closed after {done} of {total} bytes")
    return h.hexdigest()


def _download(url: str, tmp: Path, label: str, progress: bool) -> None:
    try:
        stream_download(url, tmp, label=label, progress=progress)
    except OSError as exc:  # URLError and TimeoutError are OSErrors
        tmp.unlink(missing_ok=True)
        raise MissingFileError(
            f"could not download {label} from {url}: {exc}. Offline? Set {MIRROR_ENV} to a folder "
            f"holding {label} (for example ../shared/paper-data), or put the file in data/raw/."
        ) from exc


def fetch_source(source: Source, raw_dir: str | os.PathLike, *, mirror: str | os.PathLike | None = None,
                 allow_download: bool = True, progress: bool = True) -> FetchResult:
    """Make ``raw_dir/<source.file>`` exist with the configured sha256.

    Order: an existing verified file is kept; else the mirror's copy is verified and copied;
    else the URL is downloaded and verified. Sources of kind ``"json_tree"`` are verified by
    their content digest (see :func:`verify_tree`) and may also be found in ``raw_dir`` or the
    mirror under the names listed in the source's ``alternatives`` (an upstream archive, an
    extracted ``json/`` folder, which is packed into a tarball).

    Parameters
    ----------
    source : Source
        File name, URL and expected sha256.
    raw_dir : path
        Destination folder (created if needed).
    mirror : path, optional
        Mirror folder; default ``$DISCBIAS_DATA_MIRROR``.
    allow_download : bool
        If False, never use the network.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    FetchResult

    Raises
    ------
    ChecksumError
        The bytes found have another sha256 (nothing is installed).
    MissingFileError
        The file could not be found or downloaded.

    Examples
    --------
    >>> import tempfile, pathlib, hashlib
    >>> from discbias.config import Source
    >>> m = pathlib.Path(tempfile.mkdtemp()); _ = (m / "a.csv").write_bytes(b"x,y\\n")
    >>> src = Source("a", "a.csv", "", hashlib.sha256(b"x,y\\n").hexdigest())
    >>> fetch_source(src, m / "raw", mirror=m, allow_download=False, progress=False).origin.startswith("mirror")
    True
    """
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    if source.kind == "json_tree":
        return _fetch_json_tree(source, raw_dir, mirror, allow_download, progress)
    dest = raw_dir / source.file
    if dest.exists():
        actual = sha256_file(dest)
        if actual == source.sha256:
            return FetchResult(source.name, dest, actual, "cached", dest.stat().st_size)
        # A present but wrong file is left in place (it may be the user's); say what to do.
        raise ChecksumError(source.file, source.sha256, actual, f"existing file {dest}; delete it to refetch")
    if mirror is not None:
        candidate = Path(mirror) / source.file
        if candidate.exists() or candidate.is_symlink():
            tmp = _tmp_beside(dest)
            try:
                _copy_mirror_entry(candidate, tmp)
                actual = _install_verified(tmp, dest, source, f"mirror {candidate}")
            finally:
                tmp.unlink(missing_ok=True)
            return FetchResult(source.name, dest, actual, f"mirror:{mirror}", dest.stat().st_size)
        if not allow_download:
            raise MissingFileError(
                f"{source.file} is not in the mirror {mirror} (looked for {candidate}) nor in {raw_dir}. "
                f"Download it from {source.url} into {raw_dir}."
            )
    if not allow_download or not source.url:
        raise MissingFileError(
            f"{source.file} is not in {raw_dir} and downloading is off. Set {MIRROR_ENV} to a folder "
            f"holding it, or download {source.url or '(no URL configured)'} into {raw_dir}."
        )
    tmp = _tmp_beside(dest)
    try:
        _download(source.url, tmp, source.file, progress)
        actual = _install_verified(tmp, dest, source, source.url)
    finally:
        tmp.unlink(missing_ok=True)
    return FetchResult(source.name, dest, actual, source.url, dest.stat().st_size)


def digest_of_hashes(hashes: dict[str, str]) -> str:
    """Content digest from ``{file name: sha256 hex}``: sha256 of the lines ``<name>\\0<hex>\\n``
    over the names sorted.

    Examples
    --------
    >>> digest_of_hashes({"b.json": "22", "a.json": "11"}) == hashlib.sha256(b"a.json\\x0011\\nb.json\\x0022\\n").hexdigest()
    True
    """
    h = hashlib.sha256()
    for name in sorted(hashes):
        h.update(f"{name}\0{hashes[name]}\n".encode())
    return h.hexdigest()


def _member_name(path: str, member_dir: str, suffix: str) -> str | None:
    parts = path.replace("\\", "/").split("/")
    if len(parts) >= 2 and parts[-2] == member_dir and parts[-1].endswith(suffix) and not parts[-1].startswith("."):
        return parts[-1]
    return None


def _tree_folder(path: Path, member_dir: str) -> Path:
    if path.name == member_dir:
        return path
    if (path / member_dir).is_dir():
        return path / member_dir
    subs = [d / member_dir for d in sorted(path.iterdir()) if d.is_dir() and (d / member_dir).is_dir()]
    if len(subs) == 1:
        return subs[0]
    raise FetchError(f"{path}: no '{member_dir}/' folder in it (nor in exactly one sub-folder); "
                     f"point at the folder holding the {member_dir}/ files")


#: The largest member file :func:`iter_tree_files` reads from an archive (the FFHQ attribute files are a few kB).
MAX_TREE_MEMBER_BYTES = 64 * 1024 ** 2

def iter_tree_files(path: str | os.PathLike, *, member_dir: str = "json", suffix: str = ".json"
                    ) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, bytes)`` of the files ``.../<member_dir>/<name><suffix>`` of a tree.

    ``path`` is a tar archive (any compression; read as a stream, in archive order) or a folder
    (``<member_dir>/`` itself, a folder holding it, or an extracted upstream archive holding
    ``<top>/<member_dir>/``; read in name order). Other members (README, LICENSE) are skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "json").mkdir(); _ = (d / "json" / "1.json").write_text("[]")
    >>> list(iter_tree_files(d))
    [('1.json', b'[]')]
    """
    path = Path(path)
    if path.is_dir():
        folder = _tree_folder(path, member_dir)
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.name.endswith(suffix) and not f.name.startswith("."):
                if f.stat().st_size > MAX_TREE_MEMBER_BYTES:
                    raise FetchError(f"{f} is {f.stat().st_size:,} bytes; the limit for one {suffix} file is "
                                     f"{MAX_TREE_MEMBER_BYTES:,}")
                yield f.name, f.read_bytes()
        return
    from .safeio import UnsafeInputError, read_member

    try:
        with tarfile.open(path, "r|*") as tf:
            for m in tf:
                if m.isfile():
                    name = _member_name(m.name, member_dir, suffix)
                    if name is not None:
                        # streamed within a limit, checked against the declared and the real size
                        if m.size > MAX_TREE_MEMBER_BYTES:
                            raise FetchError(f"{path}: member {m.name} declares {m.size:,} bytes; the limit for one "
                                             f"{suffix} file is {MAX_TREE_MEMBER_BYTES:,}")
                        try:
                            yield name, read_member(tf.extractfile(m), limit=m.size, what=f"{path}: member {m.name}")
                        except UnsafeInputError as exc:
                            raise FetchError(str(exc)) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(f"{path}: not a readable tar archive ({exc}); expected a .tar/.tar.gz or a folder") from exc


def content_digest(path: str | os.PathLike, *, member_dir: str = "json", suffix: str = ".json") -> tuple[str, int]:
    """Content digest and file count of the member files of an archive or folder.

    Raises :class:`FetchError` if a file name occurs twice (two ``json/`` folders in one archive).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "json"; d.mkdir(); _ = (d / "a.json").write_text("[]")
    >>> content_digest(d)[1]
    1
    """
    hashes: dict[str, str] = {}
    for name, data in iter_tree_files(path, member_dir=member_dir, suffix=suffix):
        if name in hashes:
            raise FetchError(f"{path}: member file {name} occurs twice; the archive holds more than one {member_dir}/ folder")
        hashes[name] = hashlib.sha256(data).hexdigest()
    return digest_of_hashes(hashes), len(hashes)


def pack_tree(folder: str | os.PathLike, dest: str | os.PathLike, *, member_dir: str = "json",
              suffix: str = ".json") -> int:
    """Write the member files of ``folder`` to a gzip tar ``dest`` as ``<member_dir>/<name>`` (sorted).

    Returns the number of files packed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "json").mkdir(); _ = (d / "json" / "a.json").write_text("[]")
    >>> pack_tree(d, d / "t.tar.gz"), content_digest(d / "t.tar.gz") == content_digest(d)
    (1, True)
    """
    n = 0
    with tarfile.open(dest, "w:gz", compresslevel=6) as tf:
        for name, data in iter_tree_files(folder, member_dir=member_dir, suffix=suffix):
            info = tarfile.TarInfo(f"{member_dir}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
            n += 1
    return n


def _tree_opts(source: Source) -> dict:
    return dict(member_dir=source.meta.get("member_dir", "json"), suffix=source.meta.get("suffix", ".json"))


def verify_tree(path: str | os.PathLike, source: Source, origin: str) -> str:
    """Check an archive or folder against ``source.content_digest``; return how it matched.

    An archive whose bytes have the configured ``sha256`` (the mirror's tarball) matches without
    reading its members (``"sha256"``); anything else is read and its content digest compared
    (``"content digest"``).

    Raises
    ------
    ContentDigestError
        Naming the expected and the actual digest.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from discbias.config import Source
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "json"; d.mkdir(); _ = (d / "a.json").write_text("[]")
    >>> src = Source("t", "t.tar.gz", "", "00", kind="json_tree", content_digest=content_digest(d)[0])
    >>> verify_tree(d, src, "demo")
    'content digest'
    """
    path = Path(path)
    if path.is_file() and source.sha256 and sha256_file(path) == source.sha256:
        return "sha256"
    actual, n = content_digest(path, **_tree_opts(source))
    if actual != source.content_digest:
        raise ContentDigestError(source.file, source.content_digest, actual, origin, n)
    return "content digest"


def _fetch_json_tree(source: Source, raw_dir: Path, mirror, allow_download: bool, progress: bool) -> FetchResult:
    dest = raw_dir / source.file
    if dest.exists():
        how = verify_tree(dest, source, f"existing file {dest}; delete it to refetch")
        return FetchResult(source.name, dest, sha256_file(dest), f"cached ({how})", dest.stat().st_size)
    names = [source.file, *source.meta.get("alternatives", [])]
    places = [raw_dir] + ([Path(mirror)] if mirror is not None else [])
    for place in places:
        for name in names:
            candidate = place / name
            if not candidate.exists() or candidate == dest:
                continue
            tmp = _tmp_beside(dest)
            try:
                if candidate.is_dir():
                    pack_tree(candidate, tmp, **_tree_opts(source))
                else:
                    _copy_mirror_entry(candidate, tmp)
                how = verify_tree(tmp, source, str(candidate))
                os.replace(tmp, dest)
            except ContentDigestError:
                raise
            except FetchError as exc:  # name the mirror entry, not the temporary copy (deleted below)
                raise FetchError(str(exc).replace(str(tmp), str(candidate))) from None
            except OSError as exc:
                raise FetchError(f"cannot read {candidate}: {exc.strerror or exc}") from None
            finally:
                tmp.unlink(missing_ok=True)
            kind = "folder" if candidate.is_dir() else "archive"
            return FetchResult(source.name, dest, sha256_file(dest), f"{kind} {candidate} ({how})", dest.stat().st_size)
    looked = ", ".join(str(p / n) for p in places for n in names)
    if not allow_download or not source.url:
        raise MissingFileError(
            f"{source.file} not found (looked for {looked}) and downloading is off. Set {MIRROR_ENV} to a folder "
            f"holding it (or an upstream archive or extracted json/ folder), or download "
            f"{source.url or '(no URL configured)'} into {raw_dir}."
        )
    tmp = _tmp_beside(dest)
    try:
        _download(source.url, tmp, source.file, progress)
        how = verify_tree(tmp, source, source.url)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return FetchResult(source.name, dest, sha256_file(dest), f"{source.url} ({how})", dest.stat().st_size)


def fetch_all(config: StudyConfig, raw_dir: str | os.PathLike, **kwargs) -> list[FetchResult]:
    """Fetch every source of a study; errors for all failing files are raised together.

    Files that succeed are kept even when another fails.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.config import load_config
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg = make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3)
    >>> res = fetch_all(load_config(cfg), cfg.parent.parent / "data" / "raw",
    ...                 mirror=cfg.parent.parent / "mirror", allow_download=False, progress=False)
    >>> len(res), all(r.path.exists() for r in res)
    (8, True)
    """
    results, errors = [], []
    for src in config.sources.values():
        try:
            results.append(fetch_source(src, raw_dir, **kwargs))
        except FetchError as exc:
            errors.append(str(exc))
        except OSError as exc:  # anything the file system throws stays this file's error; the others are tried
            errors.append(f"{src.file}: {exc}")
    if errors:
        raise FetchError(f"{len(errors)} of {len(config.sources)} files failed:\n- " + "\n- ".join(errors))
    return results
