"""Reading untrusted files within bounds, and naming files after data without leaving the build.

One place for the rules every reader of outside input follows (see ``docs/security.md``):

* :func:`regular_file` refuses FIFOs, devices, sockets and folders **before** anything opens them
  (opening a FIFO blocks forever; ``/dev/zero`` never ends);
* :func:`read_zip` reads a zip's members into memory with limits on the member count, each
  member's size and the total, checked against the size each member **declares** and against the
  bytes it really inflates to (streamed, stopped at the limit), and refuses duplicate or unsafe
  member names;
* :func:`read_member` streams one tar/zip member with the same limit;
* :func:`safe_name` turns a name that comes from data (a group column, a level, a claim id) into
  one path component, and :func:`confined` joins it under a folder and checks the result stays there.

Examples
--------
>>> safe_name("skin tone")[:9], safe_name("x/../../OUTSIDE_g")[:17], safe_name("..")[:3]
('skin-tone', 'x-..-..-OUTSIDE_g', '_..')
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from pathlib import Path

from .errors import UserError

__all__ = ["UnsafeInputError", "regular_file", "read_zip", "read_member", "safe_name", "confined",
           "MAX_MEMBER_BYTES", "MAX_TOTAL_BYTES", "MAX_MEMBERS"]

#: Limits of :func:`read_zip` (a bundle's paper PDF is a few MB; its tables together a few tens).
MAX_MEMBER_BYTES = 512 * 1024 ** 2
MAX_TOTAL_BYTES = 2 * 1024 ** 3
MAX_MEMBERS = 20_000
_CHUNK = 1 << 20


class UnsafeInputError(UserError, ValueError):
    """An input is a special file, too large, or an archive with duplicate, unsafe or oversized members."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(path, *, what: str = "input", max_bytes: int | None = None) -> os.stat_result:
    """``os.stat(path)`` if it is a regular file (links followed), else :class:`UnsafeInputError`.

    Nothing is opened: a FIFO, a device, a socket or a folder is refused by its type alone.

    Examples
    --------
    >>> regular_file("/dev/null", what="bundle")
    Traceback (most recent call last):
    ...
    discbias.safeio.UnsafeInputError: bundle /dev/null is a device, not a regular file; give the path of a file
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UnsafeInputError(f"{what} {path} does not exist") from None
    except OSError as exc:  # a link loop, a permission problem
        raise UnsafeInputError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeInputError(f"{what} {path} is {_kind(st.st_mode)}, not a regular file; give the path of a file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UnsafeInputError(f"{what} {path} is {st.st_size:,} bytes; the limit is {max_bytes:,}")
    return st


def _unsafe_member_name(name: str) -> bool:
    return (name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name) is not None
            or any(part in ("..", "") for part in name.rstrip("/").split("/")) or "\x00" in name)


def read_member(fh, *, limit: int, what: str) -> bytes:
    """Read a file object to its end, refusing more than ``limit`` bytes (streamed, never all at once)."""
    chunks, n = [], 0
    while True:
        b = fh.read(min(_CHUNK, limit + 1 - n))
        if not b:
            return b"".join(chunks)
        n += len(b)
        if n > limit:
            raise UnsafeInputError(f"{what} is larger than {limit:,} bytes; refused")
        chunks.append(b)


def read_zip(path, *, what: str = "archive", max_member: int = MAX_MEMBER_BYTES, max_total: int = MAX_TOTAL_BYTES,
             max_members: int = MAX_MEMBERS) -> dict[str, bytes]:
    """Every file member of a zip, ``{name: bytes}``, read within bounds.

    Raises
    ------
    UnsafeInputError
        The path is not a regular file; the zip has more than ``max_members`` members, a duplicate
        name, an absolute or ``..`` name, a member that declares or inflates to more than
        ``max_member`` bytes, or more than ``max_total`` bytes in all.
    zipfile.BadZipFile
        Not a zip (or a member's CRC is wrong).

    Examples
    --------
    >>> import io, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.zip"
    >>> with zipfile.ZipFile(p, "w") as z:
    ...     z.writestr("a.txt", "x"); z.writestr("a.txt", "y")
    >>> read_zip(p, what="bundle")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    discbias.safeio.UnsafeInputError: bundle ...a.zip: member a.txt occurs twice; ...
    """
    path = Path(path)
    regular_file(path, what=what)
    out: dict[str, bytes] = {}
    total = 0
    with open(path, "rb") as raw, zipfile.ZipFile(raw) as zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise UnsafeInputError(f"{what} {path} has {len(infos):,} members; the limit is {max_members:,}")
        names = [i.filename for i in infos]
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise UnsafeInputError(f"{what} {path}: member {n} occurs twice; an archive with two members of one "
                                       f"name shows different contents to different tools, so it is refused")
            seen.add(n)
            if _unsafe_member_name(n):
                raise UnsafeInputError(f"{what} {path}: member name {n!r} is absolute or leaves the archive's folder")
        declared = sum(i.file_size for i in infos)
        for i in infos:
            if i.file_size > max_member:
                raise UnsafeInputError(f"{what} {path}: member {i.filename} declares {i.file_size:,} bytes; the limit "
                                       f"is {max_member:,}")
        if declared > max_total:
            raise UnsafeInputError(f"{what} {path}: members declare {declared:,} bytes in all; the limit is {max_total:,}")
        for i in infos:
            if i.is_dir():
                continue
            with zf.open(i) as fh:  # the real size may exceed the declared one: stop at the declared size + 1
                data = read_member(fh, limit=min(max_member, i.file_size), what=f"{what} {path}: member {i.filename}")
            total += len(data)
            if total > max_total:
                raise UnsafeInputError(f"{what} {path}: members hold more than {max_total:,} bytes in all")
            out[i.filename] = data
    return out


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text, *, max_len: int = 80) -> str:
    """One file-name component made from ``text`` (a column name, a level, an id).

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``-``; a name that had to
    change (or is empty, ``.``/``..``, starts with ``.`` or is too long) gets ``_`` prefixed where
    needed and a short hash of the original appended, so two different texts never share a file.

    Examples
    --------
    >>> safe_name("group"), safe_name("a/b"), safe_name("a/b") != safe_name("a-b")
    ('group', 'a-b-c14cddc0', True)
    """
    text = str(text)
    clean = _UNSAFE_CHARS.sub("-", text).strip("-")
    if clean == text and clean not in ("", ".", "..") and not clean.startswith(".") and len(clean) <= max_len:
        return clean
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    clean = clean[:max_len]
    if not clean or clean.startswith("."):
        clean = "_" + clean
    return f"{clean}-{digest}"


def confined(folder, *names) -> Path:
    """``folder / safe_name(n1) / safe_name(n2) ...``, checked to lie inside ``folder``.

    Examples
    --------
    >>> confined("/build/figures", "score_by_x/../../../../etc/OUTSIDE_g").parent
    PosixPath('/build/figures')
    """
    base = Path(folder)
    out = base.joinpath(*(safe_name(n) for n in names))
    if os.path.commonpath([os.path.abspath(base), os.path.abspath(out)]) != os.path.abspath(base):
        raise UnsafeInputError(f"{out} would lie outside {base}")
    return out


def describe_columns(columns, *, max_names: int = 30, max_len: int = 40) -> str:
    """The column names of a data file, for an error message, without echoing the file's content.

    A file that did not parse as a table of several columns (``/etc/shadow`` read as a CSV is one
    column whose "name" is its first line) is described by its column count only; otherwise at
    most ``max_names`` names, each cut to ``max_len`` characters with control characters escaped.

    Examples
    --------
    >>> describe_columns(["image", "group"]), describe_columns(["root:$6$secret:19000:0:99999:7:::"])
    ('its columns: image, group', 'it has 1 column (not shown: the file does not look like the expected table)')
    """
    cols = [str(c) for c in columns]
    if len(cols) < 2:
        return f"it has {len(cols)} column (not shown: the file does not look like the expected table)"

    def show(c: str) -> str:
        c = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in c)
        return c if len(c) <= max_len else c[:max_len] + "…"

    more = f", ... ({len(cols) - max_names} more)" if len(cols) > max_names else ""
    return "its columns: " + ", ".join(show(c) for c in cols[:max_names]) + more
