"""Fetch stage: download released data by URL and sha256, or copy it from a local mirror.

Offline, set ``DISCBIAS_DATA_MIRROR`` to a folder holding the files under their configured
names; files are copied from there and verified exactly like downloads. A file is only ever
moved into ``data/raw/`` after its checksum matched, so a good file is never replaced by a bad
one and nothing half-written is left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .config import Source, StudyConfig

MIRROR_ENV = "DISCBIAS_DATA_MIRROR"
_CHUNK = 1 << 20


class FetchError(RuntimeError):
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


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks.

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
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
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


def _tmp_beside(dest: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    return Path(name)


def _download(url: str, tmp: Path, label: str, progress: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress,
                      file=sys.stderr) as bar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise MissingFileError(
            f"could not download {label} from {url}: {exc}. Offline? Set {MIRROR_ENV} to a folder "
            f"holding {label} (for example ../shared/paper-data), or put the file in data/raw/."
        ) from exc


def fetch_source(source: Source, raw_dir: str | os.PathLike, *, mirror: str | os.PathLike | None = None,
                 allow_download: bool = True, progress: bool = True) -> FetchResult:
    """Make ``raw_dir/<source.file>`` exist with the configured sha256.

    Order: an existing verified file is kept; else the mirror's copy is verified and copied;
    else the URL is downloaded and verified.

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
    dest = raw_dir / source.file
    if dest.exists():
        actual = sha256_file(dest)
        if actual == source.sha256:
            return FetchResult(source.name, dest, actual, "cached", dest.stat().st_size)
        # A present but wrong file is left in place (it may be the user's); say what to do.
        raise ChecksumError(source.file, source.sha256, actual, f"existing file {dest}; delete it to refetch")
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    if mirror is not None:
        candidate = Path(mirror) / source.file
        if candidate.exists():
            tmp = _tmp_beside(dest)
            try:
                shutil.copyfile(candidate, tmp)
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
    >>> sorted({r.origin.split(":")[0] for r in res})
    ['mirror']
    """
    results, errors = [], []
    for src in config.sources.values():
        try:
            results.append(fetch_source(src, raw_dir, **kwargs))
        except FetchError as exc:
            errors.append(str(exc))
    if errors:
        raise FetchError(f"{len(errors)} of {len(config.sources)} files failed:\n- " + "\n- ".join(errors))
    return results
