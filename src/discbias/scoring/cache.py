"""The score cache: an embedded SQLite database (WAL mode), content-addressed.

One table ``scores`` holds every discriminator score, whichever way it was obtained:

* ``provenance = 'computed'``: keyed by :func:`~discbias.scoring.protocols.score_key` (sha256 of
  the image's sha256, the weights file's sha256, the protocol settings and
  :data:`CACHE_SCHEMA_VERSION`); never by a name the user picks. The image's sha256 is that of
  the file for images on disk, and that of the decoded pixels
  (:func:`~discbias.scoring.images.sha256_pixels`) for images made in memory (probes);
* ``provenance = 'released'``: scores published with a paper, which carry no image hash; keyed by
  ``released:<study>:<image_id>``.

``failures`` lists inputs that could not be scored (with the reason), ``image_stats`` the colour
statistics of each decoded image (by image sha256), ``file_hashes`` a memo of file sha256s by
(absolute path, size, modification time in ns), so that a rerun over unchanged files does not
read them again (``--rehash`` ignores the memo). Each batch is written in one transaction
(``BEGIN IMMEDIATE``), so a crash loses at most the batch in flight; rows are ``INSERT OR IGNORE``
on the primary key, so concurrent writers never duplicate a score.

Integrity: every score row carries a ``checksum``, a keyed MAC (HMAC-SHA256 under the user's
integrity key, :mod:`discbias.integrity`, kept outside the cache) of its key and values
(:func:`row_checksum`), and so do ``image_stats`` and ``file_hashes`` rows (:func:`aux_checksum`;
a row that does not match is not used: the image is measured or hashed again). A row rewritten
together with a recomputed sha256 is therefore detected. Caches copied from another machine carry
MACs under another key: share the key file (``DISCBIAS_KEY_FILE``) between machines whose caches
are merged. Caches of format 2 (unkeyed sha256) are upgraded once when opened. Every read (:meth:`ScoreCache.get_scores`, :meth:`~ScoreCache.frame`,
:meth:`~ScoreCache.released`) and :meth:`~ScoreCache.verify` recompute it, so a changed bit in a
stored score is never served: reads raise :class:`CacheError` naming the row, ``verify`` lists every
damaged row and ``discbias cache verify --drop-damaged`` deletes them (the next ``discbias score``
recomputes them). Caches written before checksums existed (format 1) are upgraded in place when
opened: the column is added and every existing row's checksum is computed, with a note on stderr.
A damaged database file (a broken b-tree page, random byte flips) is reported as one
:class:`CacheError` naming the file; a zero-byte file or an SQLite database that is not a score
cache is refused, never used or modified; caches merged in are opened read-only.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pandas as pd

from .. import __version__
from ..errors import MissingInputError, UserError
from .protocols import CACHE_SCHEMA_VERSION, protocol_from_settings, score_key

log = logging.getLogger(__name__)

CACHE_ENV = "DISCBIAS_CACHE_DIR"
CACHE_FILE = "scores.sqlite"

SCORE_COLUMNS = ["key", "provenance", "study", "image_id", "image", "image_sha256", "weights_sha256", "protocol",
                 "settings", "score", "score_sd", "n_draws", "conversion", "source", "discbias_version",
                 "schema_version", "created_at", "checksum"]
#: Version of the database layout (not of the keys): 2 added the per-row ``checksum``.
CACHE_FORMAT = 3  # 3: keyed MACs (discbias.integrity) on scores, image_stats and file_hashes
_TABLES = {"meta", "scores", "failures", "file_hashes", "image_stats"}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scores (
    key TEXT PRIMARY KEY,
    provenance TEXT NOT NULL CHECK (provenance IN ('computed', 'released')),
    study TEXT,
    image_id TEXT,
    image TEXT,
    image_sha256 TEXT,
    weights_sha256 TEXT,
    protocol TEXT NOT NULL,
    settings TEXT NOT NULL,
    score REAL NOT NULL,
    score_sd REAL,
    n_draws INTEGER,
    conversion TEXT,
    source TEXT,
    discbias_version TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    checksum TEXT
);
CREATE INDEX IF NOT EXISTS scores_released ON scores (study, image_id) WHERE provenance = 'released';
CREATE TABLE IF NOT EXISTS failures (
    image TEXT NOT NULL,
    image_sha256 TEXT NOT NULL DEFAULT '',
    weights_sha256 TEXT NOT NULL,
    settings TEXT NOT NULL,
    reason TEXT NOT NULL,
    discbias_version TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (image, image_sha256, weights_sha256, settings)
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    checksum TEXT
);
CREATE TABLE IF NOT EXISTS image_stats (
    image_sha256 TEXT PRIMARY KEY,
    red_mean REAL, green_mean REAL, blue_mean REAL, luminance REAL,
    width INTEGER, height INTEGER,
    checksum TEXT
);
"""


def default_cache_dir(root: str | os.PathLike | None = None) -> Path:
    """``$DISCBIAS_CACHE_DIR``, else ``<root>/data/cache`` (root: ``$DISCBIAS_ROOT`` or the cwd).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"DISCBIAS_CACHE_DIR": "/data/scores"}):  # restored afterwards
    ...     default_cache_dir("/tmp/proj").as_posix()
    '/data/scores'
    >>> with mock.patch.dict(os.environ):
    ...     _ = os.environ.pop("DISCBIAS_CACHE_DIR", None)
    ...     default_cache_dir("/tmp/proj").as_posix()
    '/tmp/proj/data/cache'
    """
    from ..paths import project_paths

    return project_paths(root).score_cache


def cache_path(cache: str | os.PathLike | None = None, root=None) -> Path:
    """The database file: ``cache`` may be a directory (then ``scores.sqlite`` inside) or a file."""
    p = Path(cache).expanduser() if cache is not None else default_cache_dir(root)
    if p.suffix in (".sqlite", ".db", ".sqlite3"):
        return p
    return p / CACHE_FILE


def released_key(study: str, image_id: str) -> str:
    """Key of a released score.

    Examples
    --------
    >>> released_key("grissom2024:study1", "00001")
    'released:grissom2024:study1:00001'
    """
    return f"released:{study}:{image_id}"


def db_text(name: str | None) -> str | bytes | None:
    """A file name or path as stored: text, or its exact bytes when it is not valid UTF-8.

    File names on POSIX are bytes; Python keeps undecodable bytes as surrogate escapes, which
    SQLite cannot store as text. Such names are stored as a BLOB of the original bytes (lossless).

    Examples
    --------
    >>> db_text("a.png"), db_text(b"\\xff.png".decode("utf-8", "surrogateescape"))
    ('a.png', b'\\xff.png')
    """
    if name is None:
        return None
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape")


def _shown(v: Any) -> Any:
    """A stored name as printable text (BLOB names: undecodable bytes as ``\\xNN``)."""
    return v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v


def _canon(v: Any) -> Any:
    if isinstance(v, float):
        return v.hex()
    if isinstance(v, bytes):
        return v.hex()
    return v


def row_checksum(row: Mapping[str, Any] | tuple) -> str:
    """The keyed MAC (HMAC-SHA256, :mod:`discbias.integrity`) of a score row's key and values
    (every column but ``checksum``), as stored.

    Keyed, so a row rewritten together with a recomputed checksum is detected: only a process
    holding this user's integrity key can write a valid one.

    ``row`` is a mapping with the :data:`SCORE_COLUMNS` or a tuple in that order (the checksum
    itself, if present, is ignored). Floats enter as their exact hex form, so a one-bit change in
    a stored score changes the checksum.

    Examples
    --------
    >>> r = dict(zip(SCORE_COLUMNS, ["k", "computed", None, None, "a.png", "a", "b", "p", "{}", 1.5, None, 1, "",
    ...                              None, "0", 1, 0.0, None]))
    >>> c = row_checksum(r)
    >>> c == row_checksum(dict(r, score=1.5000000000000002)), len(c)
    (False, 64)
    """
    from ..integrity import mac

    return mac(_row_bytes(row), purpose="scorecache-row")


def _row_bytes(row: Mapping[str, Any] | tuple) -> bytes:
    if isinstance(row, Mapping):
        vals = [row[c] for c in SCORE_COLUMNS[:-1]]
    else:
        vals = list(row)[:len(SCORE_COLUMNS) - 1]
    return json.dumps([_canon(v) for v in vals], separators=(",", ":")).encode()


def _plain_row_checksum(row) -> str:
    """The unkeyed sha256 checksum of cache format 2 (read only to upgrade a format-2 cache)."""
    return hashlib.sha256(_row_bytes(row)).hexdigest()


#: Columns of the other tables each covered by its own keyed MAC (the ``checksum`` column).
AUX_COLUMNS = {"image_stats": ["image_sha256", "red_mean", "green_mean", "blue_mean", "luminance", "width", "height"],
               "file_hashes": ["path", "size", "mtime_ns", "sha256"]}


def aux_checksum(table: str, row: Mapping[str, Any] | tuple) -> str:
    """The keyed MAC of an ``image_stats`` or ``file_hashes`` row (its columns in :data:`AUX_COLUMNS`).

    Examples
    --------
    >>> r = ("ab", 1.0, 2.0, 3.0, 2.1, 64, 64)
    >>> aux_checksum("image_stats", r) == aux_checksum("image_stats", r[:6] + (65,))
    False
    """
    from ..integrity import mac

    cols = AUX_COLUMNS[table]
    vals = [row[c] for c in cols] if isinstance(row, (Mapping, sqlite3.Row)) else list(row)[:len(cols)]
    # as SQLite stores them: REAL columns as floats, INTEGER columns as ints (1 and 1.0 alike)
    kinds = ("s", "f", "f", "f", "f", "i", "i") if table == "image_stats" else ("s", "i", "i", "s")
    vals = [None if v is None else float(v) if k == "f" else int(v) if k == "i" else v for v, k in zip(vals, kinds)]
    return mac(json.dumps([_canon(v) for v in vals], separators=(",", ":")).encode(), purpose=f"scorecache-{table}")


def integrity_problems(path: str | os.PathLike, con: sqlite3.Connection | None = None) -> list[str]:
    """SQLite's ``integrity_check`` of a database file, opened read-only (never raises for damage).

    Examples
    --------
    >>> import tempfile
    >>> integrity_problems(ScoreCache(tempfile.mkdtemp()).path)
    []
    """
    own = con is None
    try:
        if own:
            con = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        out = [f"sqlite integrity: {m}" for (m,) in con.execute("PRAGMA integrity_check") if m != "ok"]
    except sqlite3.DatabaseError as exc:
        out = [f"sqlite integrity check could not run: {exc}"]
    finally:
        if own and con is not None:
            con.close()
    return out


class CacheError(UserError, RuntimeError):
    """The cache file is unusable (wrong schema version, not a score cache, damaged, a row fails its checksum)."""


def _damaged(path: Path, exc: BaseException) -> CacheError:
    return CacheError(f"score cache {path} is damaged ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                      f"`discbias cache verify --cache-dir {path}` lists what is readable; restore it from a backup or "
                      f"move it away and rescore (released scores are reimported by `discbias measure`)")


def _db_errors(method):
    """Turn SQLite's errors on a damaged file into one :class:`CacheError` naming the file."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                raise CacheError(f"score cache {self.path} is locked by another process ({exc}); retry later") from None
            raise _damaged(self.path, exc) from None

    return wrapper


def _bad_rows_message(path: Path, bad: list[dict]) -> str:
    first = bad[0]
    return (f"score cache {path}: {len(bad)} row(s) fail their checksum (first: key {first['key']}, image "
            f"{first.get('image')}): the stored values were changed outside discbias (a disk error or an edit) and "
            f"are not used. Run `discbias cache verify --cache-dir {path}` to list them and "
            f"`discbias cache verify --drop-damaged --cache-dir {path}` to delete them (rescore or reimport after)")


class ScoreCache:
    """A score cache in one SQLite file.

    Parameters
    ----------
    path : path-like, optional
        Database file or directory (default :func:`default_cache_dir`).
    timeout : float
        Seconds to wait for another writer's lock.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.scoring.protocols import ScoringProtocol
    >>> c = ScoreCache(tempfile.mkdtemp())
    >>> p = ScoringProtocol()
    >>> c.put_batch([dict(image="a.png", image_sha256="a" * 64, weights_sha256="b" * 64, protocol=p, score=1.5)])
    1
    >>> c.get_scores(["a" * 64], "b" * 64, p)["a" * 64]["score"]
    1.5
    >>> c.count()
    1
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 120.0):
        self.path = cache_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        if self.path.is_dir():
            raise CacheError(f"{self.path} is a directory, not a score cache file")
        if not self.path.exists():
            self._create(self.path)
        if self.path.stat().st_size == 0:  # discbias never leaves one (new caches appear complete): not ours
            raise CacheError(f"{self.path} is empty (0 bytes), not a score cache; delete it to start a new cache "
                             f"there, or pick another --cache-dir")
        self._con = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._con.row_factory = sqlite3.Row
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._con.close()
            if "not a database" in str(exc):
                raise CacheError(f"{self.path} is not a score cache database ({exc}); move it away or pick "
                                 f"another --cache-dir") from None
            raise _damaged(self.path, exc) from None
        except CacheError:
            self._con.close()
            raise

    @staticmethod
    def _create(path: Path) -> None:
        """Create a new cache under a temporary name and link it into place, so that no other process
        ever sees a half-made (zero-byte) cache; if another process wins the race, its cache is used."""
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.execute("PRAGMA journal_mode = WAL")
                con.executescript(_SCHEMA)
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(CACHE_SCHEMA_VERSION),))
                con.execute("INSERT INTO meta VALUES ('format', ?)", (str(CACHE_FORMAT),))
            finally:
                con.close()
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process created it first: use theirs
            except OSError:  # no hard links on this filesystem: rename (a narrow race remains)
                if not path.exists():
                    os.replace(tmp, path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(tmp + suffix).unlink(missing_ok=True)

    def _open(self) -> None:
        con = self._con
        con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and not ({"meta", "scores"} <= tables):
            raise CacheError(f"{self.path} is an SQLite database but not a score cache (tables: "
                             f"{sorted(tables)[:8]}); it was left unchanged. Pick another --cache-dir")
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise CacheError(f"{self.path}: could not switch to WAL mode (got {mode}); is it on a network drive?")
        con.execute("PRAGMA synchronous = NORMAL")
        with self.transaction() as con:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    con.execute(stmt)
            row = con.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None:
                if tables:
                    bad = integrity_problems(self.path, con)
                    if bad:
                        raise _damaged(self.path, sqlite3.DatabaseError(bad[0]))
                    raise CacheError(f"{self.path} has a scores table but no schema version; not a score cache")
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(CACHE_SCHEMA_VERSION),))
            elif int(row[0]) != CACHE_SCHEMA_VERSION:
                raise CacheError(f"{self.path} has cache schema version {row[0]}, this discbias uses "
                                 f"{CACHE_SCHEMA_VERSION}; export it with the old version or use a new --cache-dir")
            fmt = con.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
            old_format = int(fmt[0]) if fmt is not None and str(fmt[0]).isdigit() else 1
            for table in AUX_COLUMNS:  # formats 1-2: the other tables had no checksum
                if "checksum" not in [r[1] for r in con.execute(f"PRAGMA table_info({table})")]:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN checksum TEXT")
            cols = [r[1] for r in con.execute("PRAGMA table_info(scores)")]
            if "checksum" not in cols:  # format 1: add the column and checksum the existing rows
                con.execute("ALTER TABLE scores ADD COLUMN checksum TEXT")
            if cols != SCORE_COLUMNS and "checksum" in cols:
                raise CacheError(f"{self.path}: the scores table has columns {cols}, expected {SCORE_COLUMNS}")
            todo = con.execute(f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE checksum IS NULL").fetchall()
            if todo:
                con.executemany("UPDATE scores SET checksum = ? WHERE key = ?",
                                [(row_checksum(tuple(r)), r["key"]) for r in todo])
                log.info("score cache %s: added row checksums to %d rows written by an older discbias "
                         "(cache format %s)", self.path, len(todo), CACHE_FORMAT)
            if old_format < 3:
                self._upgrade_to_keyed(con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (str(CACHE_FORMAT),))

    def _upgrade_to_keyed(self, con) -> None:
        """Format 2 -> 3: rows whose unkeyed sha256 checksum matches get the keyed MAC; rows that do not
        match stay damaged (reported as before). Trusted once, as the format-1 upgrade trusted its rows."""
        rows = con.execute(f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores").fetchall()
        good = [(row_checksum(tuple(r)), r["key"]) for r in rows if r["checksum"] == _plain_row_checksum(tuple(r))]
        con.executemany("UPDATE scores SET checksum = ? WHERE key = ?", good)
        for table, cols in AUX_COLUMNS.items():
            aux = con.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE checksum IS NULL").fetchall()
            con.executemany(f"UPDATE {table} SET checksum = ? WHERE {cols[0]} = ?",
                            [(aux_checksum(table, tuple(r)), r[0]) for r in aux])
        if rows:
            log.info("score cache %s: upgraded to cache format %s (keyed checksums; %d of %d score rows)",
                     self.path, CACHE_FORMAT, len(good), len(rows))

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on error)."""
        con = self._con
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                con.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")

    # ---- computed scores -------------------------------------------------------------------
    @_db_errors
    def get_scores(self, image_sha256s: Iterable[str], weights_sha256: str, protocol) -> dict[str, dict]:
        """Cached scores for these images under ``weights_sha256`` and ``protocol`` (by image sha256)."""
        shas = list(dict.fromkeys(image_sha256s))
        keys = {score_key(s, weights_sha256, protocol): s for s in shas}
        out: dict[str, dict] = {}
        klist = list(keys)
        for i in range(0, len(klist), 500):
            chunk = klist[i:i + 500]
            q = f"SELECT * FROM scores WHERE key IN ({','.join('?' * len(chunk))})"
            for r in self._con.execute(q, chunk):
                out[keys[r["key"]]] = dict(r)
        self._check_rows(out.values())
        return out

    def _check_rows(self, rows: Iterable[Mapping]) -> None:
        bad = [dict(r) for r in rows if r["checksum"] != row_checksum(r)]
        if bad:
            raise CacheError(_bad_rows_message(self.path, bad))

    @_db_errors
    def put_batch(self, rows: list[dict], failures: list[dict] = (), stats: list[dict] = ()) -> int:
        """Write one batch of scores (and failures, image stats) in one transaction.

        Each row needs ``image, image_sha256, weights_sha256, protocol`` (a
        :class:`ScoringProtocol`) and ``score``; optional ``score_sd, n_draws, conversion``.
        Returns the number of new score rows (existing keys are left as they are).
        """
        now = time.time()
        recs = []
        for r in rows:
            p = r["protocol"]
            rec = (score_key(r["image_sha256"], r["weights_sha256"], p), "computed", None, None, db_text(r["image"]),
                   r["image_sha256"], r["weights_sha256"], p.label, p.key(), float(r["score"]),
                   None if r.get("score_sd") is None else float(r["score_sd"]), int(r.get("n_draws", 1)),
                   r.get("conversion", ""), db_text(r.get("source")), __version__, CACHE_SCHEMA_VERSION, now)
            recs.append(rec + (row_checksum(rec),))
        frecs = [(db_text(f["image"]), f.get("image_sha256") or "", f["weights_sha256"], f["protocol"].key(), f["reason"],
                  __version__, now) for f in failures]
        srecs = [(s["image_sha256"], s["red_mean"], s["green_mean"], s["blue_mean"], s["luminance"],
                  s.get("width"), s.get("height")) for s in stats]
        srecs = [r + (aux_checksum("image_stats", r),) for r in srecs]
        with self.transaction() as con:
            before = con.total_changes
            con.executemany(f"INSERT OR IGNORE INTO scores VALUES ({','.join('?' * len(SCORE_COLUMNS))})", recs)
            added = con.total_changes - before
            if rows:
                con.executemany("DELETE FROM failures WHERE image = ? AND weights_sha256 = ? AND settings = ?",
                                [(db_text(r["image"]), r["weights_sha256"], r["protocol"].key()) for r in rows])
            con.executemany("INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?,?)", frecs)
            con.executemany("INSERT OR IGNORE INTO image_stats VALUES (?,?,?,?,?,?,?,?)", srecs)
        return added

    # ---- file hash memo -------------------------------------------------------------------
    @_db_errors
    def known_hashes(self, paths: list[str]) -> dict[str, tuple[int, int, str]]:
        """Memoised ``(size, mtime_ns, sha256)`` of these absolute paths."""
        out = {}
        stored = {db_text(p): p for p in paths}
        keys = list(stored)
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT * FROM file_hashes WHERE path IN ({','.join('?' * len(chunk))})"
            for r in self._con.execute(q, chunk):
                if r["checksum"] == aux_checksum("file_hashes", r):  # else: not trusted, the file is hashed again
                    out[stored[r["path"]]] = (r["size"], r["mtime_ns"], r["sha256"])
        return out

    @_db_errors
    def remember_hashes(self, rows: list[tuple[str, int, int, str]]) -> None:
        """Store ``(path, size, mtime_ns, sha256)`` rows in the memo (one transaction)."""
        if rows:
            with self.transaction() as con:
                recs = [(db_text(p), *rest) for p, *rest in rows]
                con.executemany("INSERT OR REPLACE INTO file_hashes VALUES (?,?,?,?,?)",
                                [r + (aux_checksum("file_hashes", r),) for r in recs])

    # ---- released scores -------------------------------------------------------------------
    @_db_errors
    def import_released(self, study: str, scores: pd.DataFrame, *, source: str, source_sha256: str = "",
                        id_column: str = "image_id", score_column: str = "score") -> int:
        """Import released scores (no image hash) keyed by ``study`` and image id.

        A reimport replaces the previous value of the same (study, image id), so a corrected
        source file updates the cache. Rows with a missing score are skipped.

        Returns the number of rows written.

        Examples
        --------
        >>> import tempfile
        >>> c = ScoreCache(tempfile.mkdtemp())
        >>> c.import_released("demo", pd.DataFrame({"image_id": ["1", "2"], "score": [0.5, None]}), source="x.csv")
        1
        >>> c.released("demo")[["image_id", "score", "provenance"]].values.tolist()
        [['1', 0.5, 'released']]
        """
        df = scores[[id_column, score_column]].dropna()
        settings = json.dumps(dict(provenance="released", source=source, source_sha256=source_sha256), sort_keys=True)
        now = time.time()
        recs = [(released_key(study, str(i)), "released", study, str(i), str(i), None, None, "released", settings,
                 float(s), None, None, "", source, __version__, CACHE_SCHEMA_VERSION, now)
                for i, s in zip(df[id_column], df[score_column])]
        recs = [r + (row_checksum(r),) for r in recs]
        with self.transaction() as con:
            con.executemany(f"INSERT OR REPLACE INTO scores VALUES ({','.join('?' * len(SCORE_COLUMNS))})", recs)
        return len(recs)

    @_db_errors
    def released(self, study: str) -> pd.DataFrame:
        """Released scores of a study: ``image_id, score, provenance, source, settings`` (checksums checked)."""
        rows = [dict(r) for r in self._con.execute(
            "SELECT * FROM scores WHERE provenance = 'released' AND study = ? ORDER BY image_id", (study,))]
        self._check_rows(rows)
        return pd.DataFrame(rows, columns=SCORE_COLUMNS)[["image_id", "score", "provenance", "source", "settings"]]

    # ---- reading, listing, verifying ---------------------------------------------------------
    @_db_errors
    def frame(self, where: str = "", params: tuple = ()) -> pd.DataFrame:
        """All score rows (optionally filtered by an SQL ``where`` clause) as a DataFrame (checksums checked)."""
        q = "SELECT * FROM scores" + (f" WHERE {where}" if where else "") + " ORDER BY key"
        rows = [dict(r) for r in self._con.execute(q, params)]
        self._check_rows(rows)
        df = pd.DataFrame(rows, columns=SCORE_COLUMNS)
        for c in ("image", "source"):
            df[c] = df[c].map(_shown)
        return df

    @_db_errors
    def failures(self) -> pd.DataFrame:
        """Every recorded failure (names that are not UTF-8 shown with ``\\xNN`` escapes)."""
        df = pd.read_sql_query("SELECT * FROM failures ORDER BY image", self._con)
        df["image"] = df["image"].map(_shown)
        return df

    @_db_errors
    def image_stats(self, shas: Iterable[str] | None = None) -> pd.DataFrame:
        """Colour statistics by image sha256; rows whose keyed checksum does not match are left out (with a
        warning), so the image is measured again rather than a changed value served."""
        cols = AUX_COLUMNS["image_stats"]
        rows = self._con.execute(f"SELECT {', '.join(cols)}, checksum FROM image_stats").fetchall()
        if shas is not None:
            wanted = set(shas)
            rows = [r for r in rows if r["image_sha256"] in wanted]
        bad = [r["image_sha256"] for r in rows if r["checksum"] != aux_checksum("image_stats", r)]
        if bad:
            log.warning("score cache %s: %d image_stats row(s) do not match their checksum (changed or damaged); "
                        "left out, e.g. image %s", self.path, len(bad), bad[0])
            rows = [r for r in rows if r["image_sha256"] not in set(bad)]
        return pd.DataFrame([tuple(r)[:len(cols)] for r in rows], columns=cols)

    @_db_errors
    def count(self, provenance: str | None = None) -> int:
        if provenance:
            return self._con.execute("SELECT COUNT(*) FROM scores WHERE provenance = ?", (provenance,)).fetchone()[0]
        return self._con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    @_db_errors
    def summary(self) -> pd.DataFrame:
        """One row per (provenance, study, weights, protocol) with the number of scores."""
        return pd.read_sql_query(
            "SELECT provenance, COALESCE(study, '') AS study, COALESCE(substr(weights_sha256, 1, 12), '') AS weights, "
            "protocol, COUNT(*) AS n, MIN(score) AS min_score, MAX(score) AS max_score FROM scores "
            "GROUP BY provenance, study, weights_sha256, protocol ORDER BY provenance, study, weights, protocol",
            self._con)

    def verify(self) -> list[str]:
        """Check the database: SQLite integrity, every row's checksum and key, schema versions.

        Never raises for damage: every problem found (including a database too damaged to read
        further) is a line of the returned list, which is empty when the cache is sound.
        """
        problems = integrity_problems(self.path, self._con)
        try:
            for r in self._con.execute("SELECT * FROM scores"):
                problems += self._row_problems(r)
            for table, cols in AUX_COLUMNS.items():
                for r in self._con.execute(f"SELECT * FROM {table}"):
                    if r["checksum"] != aux_checksum(table, r):
                        problems.append(f"{table} row {r[cols[0]]}: checksum mismatch (stored values changed)")
        except (sqlite3.DatabaseError, ValueError, OverflowError, UnicodeDecodeError) as exc:
            problems.append(f"reading the scores table stopped: {exc} (the file is damaged; rows after this point "
                            f"could not be checked)")
        return problems

    @staticmethod
    def _row_problems(r: Mapping) -> list[str]:
        try:
            if r["checksum"] != row_checksum(r):
                return [f"{r['key']}: checksum mismatch (stored values changed) for image {r['image']}"]
            if r["schema_version"] != CACHE_SCHEMA_VERSION:
                return [f"{r['key']}: schema version {r['schema_version']} != {CACHE_SCHEMA_VERSION}"]
            if r["provenance"] == "released":
                expect = released_key(r["study"], r["image_id"])
            else:
                expect = score_key(r["image_sha256"], r["weights_sha256"], protocol_from_settings(r["settings"]))
        except (ValueError, TypeError, KeyError) as exc:
            return [f"{r['key']}: unreadable row ({exc})"]
        out = []
        if expect != r["key"]:
            out.append(f"{r['key']}: key does not match its row (expected {expect}) for image {r['image']}")
        if r["score"] is None or r["score"] != r["score"]:
            out.append(f"{r['key']}: missing score")
        return out

    @_db_errors
    def drop_damaged(self) -> int:
        """Delete every score row whose checksum or key does not match its values; returns how many.

        The next ``discbias score`` recomputes them (released scores: the next ``discbias measure``).
        """
        bad = [r["key"] for r in self._con.execute("SELECT * FROM scores") if self._row_problems(r)]
        aux = {t: [(r[c[0]],) for r in self._con.execute(f"SELECT * FROM {t}") if r["checksum"] != aux_checksum(t, r)]
               for t, c in AUX_COLUMNS.items()}
        with self.transaction() as con:
            con.executemany("DELETE FROM scores WHERE key = ?", [(k,) for k in bad])
            for t, keys in aux.items():  # memo and statistics rows: recomputed on the next run
                con.executemany(f"DELETE FROM {t} WHERE {AUX_COLUMNS[t][0]} = ?", keys)
        return len(bad)

    def merge_from(self, other: str | os.PathLike) -> int:
        """Copy every row of another cache into this one (existing keys kept); returns new score rows.

        The other cache is opened read-only and never modified; it must be a score cache of the
        same schema version, and every row's checksum must match (a damaged source is refused
        before anything is copied).
        """
        other = cache_path(other)
        if not other.is_file():
            raise MissingInputError(f"no cache database at {other}")
        if other.resolve() == self.path.resolve():
            raise CacheError(f"{other} is this cache; nothing to merge")
        if other.stat().st_size == 0:
            raise CacheError(f"{other} is empty (0 bytes), not a score cache; nothing merged")
        try:
            src = sqlite3.connect(f"{other.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout)
        except sqlite3.Error as exc:
            raise CacheError(f"cannot open {other} read-only: {exc}") from None
        src.row_factory = sqlite3.Row
        try:
            tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "scores", "failures", "image_stats"} <= tables:
                raise CacheError(f"{other} is not a score cache (tables: {sorted(tables)[:8]}); nothing merged, "
                                 f"the file was left unchanged")
            row = src.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None or str(row[0]) != str(CACHE_SCHEMA_VERSION):
                raise CacheError(f"{other} has cache schema version {None if row is None else row[0]}, this discbias "
                                 f"uses {CACHE_SCHEMA_VERSION}; nothing merged")
            cols = [r[1] for r in src.execute("PRAGMA table_info(scores)")]
            if cols not in (SCORE_COLUMNS, SCORE_COLUMNS[:-1]):
                raise CacheError(f"{other}: its scores table has columns {cols[:20]}, not a score cache's; nothing merged")
            recs, bad = [], []
            for r in src.execute(f"SELECT {', '.join(cols)} FROM scores"):
                vals = tuple(r)[:len(SCORE_COLUMNS) - 1]
                if "checksum" in cols and r["checksum"] != row_checksum(r):
                    bad.append(dict(r))
                recs.append(vals + (row_checksum(vals),))
            if bad:
                raise CacheError("nothing merged: " + _bad_rows_message(other, bad))
            scols = [r[1] for r in src.execute("PRAGMA table_info(image_stats)")]
            stats = []
            for r in src.execute("SELECT * FROM image_stats"):
                vals = tuple(r)[:len(AUX_COLUMNS["image_stats"])]
                if "checksum" not in scols or r["checksum"] == aux_checksum("image_stats", vals):
                    stats.append(vals + (aux_checksum("image_stats", vals),))
            fails = [tuple(r) for r in src.execute("SELECT * FROM failures")]
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"cannot merge {other}: {_damaged(other, exc)}") from None
        finally:
            src.close()
        try:
            with self.transaction() as con:
                before = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
                con.executemany(f"INSERT OR IGNORE INTO scores VALUES ({','.join('?' * len(SCORE_COLUMNS))})", recs)
                con.executemany(f"INSERT OR IGNORE INTO image_stats VALUES ({','.join('?' * 8)})", stats)
                scored = {(r[4], r[6], r[8]) for r in con.execute("SELECT * FROM scores WHERE provenance = 'computed'")}
                con.executemany(f"INSERT OR IGNORE INTO failures VALUES ({','.join('?' * 7)})",
                                [f for f in fails if (f[0], f[2], f[3]) not in scored])
                after = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None
        return after - before
