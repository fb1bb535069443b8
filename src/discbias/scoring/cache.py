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
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from .. import __version__
from .protocols import CACHE_SCHEMA_VERSION, protocol_from_settings, score_key

CACHE_ENV = "DISCBIAS_CACHE_DIR"
CACHE_FILE = "scores.sqlite"

SCORE_COLUMNS = ["key", "provenance", "study", "image_id", "image", "image_sha256", "weights_sha256", "protocol",
                 "settings", "score", "score_sd", "n_draws", "conversion", "source", "discbias_version",
                 "schema_version", "created_at"]

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
    created_at REAL NOT NULL
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
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_stats (
    image_sha256 TEXT PRIMARY KEY,
    red_mean REAL, green_mean REAL, blue_mean REAL, luminance REAL,
    width INTEGER, height INTEGER
);
"""


def default_cache_dir(root: str | os.PathLike | None = None) -> Path:
    """``$DISCBIAS_CACHE_DIR``, else ``<root>/data/cache`` (root: ``$DISCBIAS_ROOT`` or the cwd).

    Examples
    --------
    >>> import os
    >>> os.environ.pop("DISCBIAS_CACHE_DIR", None) is None or True
    True
    >>> default_cache_dir("/tmp/proj").as_posix()
    '/tmp/proj/data/cache'
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    if root is None:
        root = os.environ.get("DISCBIAS_ROOT") or Path.cwd()
    return Path(root) / "data" / "cache"


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


class CacheError(RuntimeError):
    """The cache file is unusable (wrong schema version, not a database)."""


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
        self._con = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._con.row_factory = sqlite3.Row
        self._con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        try:
            mode = self._con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path} is not a score cache database ({exc}); move it away or pick "
                             f"another --cache-dir") from None
        if mode.lower() != "wal":
            raise CacheError(f"{self.path}: could not switch to WAL mode (got {mode}); is it on a network drive?")
        self._con.execute("PRAGMA synchronous = NORMAL")
        with self.transaction() as con:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    con.execute(stmt)
            row = con.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(CACHE_SCHEMA_VERSION),))
            elif int(row[0]) != CACHE_SCHEMA_VERSION:
                raise CacheError(f"{self.path} has cache schema version {row[0]}, this discbias uses "
                                 f"{CACHE_SCHEMA_VERSION}; export it with the old version or use a new --cache-dir")

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
        return out

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
            recs.append((score_key(r["image_sha256"], r["weights_sha256"], p), "computed", None, None, r["image"],
                         r["image_sha256"], r["weights_sha256"], p.label, p.key(), float(r["score"]),
                         r.get("score_sd"), r.get("n_draws", 1), r.get("conversion", ""), r.get("source"),
                         __version__, CACHE_SCHEMA_VERSION, now))
        frecs = [(f["image"], f.get("image_sha256") or "", f["weights_sha256"], f["protocol"].key(), f["reason"],
                  __version__, now) for f in failures]
        srecs = [(s["image_sha256"], s["red_mean"], s["green_mean"], s["blue_mean"], s["luminance"],
                  s.get("width"), s.get("height")) for s in stats]
        with self.transaction() as con:
            before = con.total_changes
            con.executemany(f"INSERT OR IGNORE INTO scores VALUES ({','.join('?' * len(SCORE_COLUMNS))})", recs)
            added = con.total_changes - before
            if rows:
                con.executemany("DELETE FROM failures WHERE image = ? AND weights_sha256 = ? AND settings = ?",
                                [(r["image"], r["weights_sha256"], r["protocol"].key()) for r in rows])
            con.executemany("INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?,?)", frecs)
            con.executemany("INSERT OR IGNORE INTO image_stats VALUES (?,?,?,?,?,?,?)", srecs)
        return added

    # ---- file hash memo -------------------------------------------------------------------
    def known_hashes(self, paths: list[str]) -> dict[str, tuple[int, int, str]]:
        """Memoised ``(size, mtime_ns, sha256)`` of these absolute paths."""
        out = {}
        for i in range(0, len(paths), 500):
            chunk = paths[i:i + 500]
            q = f"SELECT * FROM file_hashes WHERE path IN ({','.join('?' * len(chunk))})"
            for r in self._con.execute(q, chunk):
                out[r["path"]] = (r["size"], r["mtime_ns"], r["sha256"])
        return out

    def remember_hashes(self, rows: list[tuple[str, int, int, str]]) -> None:
        """Store ``(path, size, mtime_ns, sha256)`` rows in the memo (one transaction)."""
        if rows:
            with self.transaction() as con:
                con.executemany("INSERT OR REPLACE INTO file_hashes VALUES (?,?,?,?)", rows)

    # ---- released scores -------------------------------------------------------------------
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
        with self.transaction() as con:
            con.executemany(f"INSERT OR REPLACE INTO scores VALUES ({','.join('?' * len(SCORE_COLUMNS))})", recs)
        return len(recs)

    def released(self, study: str) -> pd.DataFrame:
        """Released scores of a study: ``image_id, score, provenance, source, settings``."""
        return pd.read_sql_query(
            "SELECT image_id, score, provenance, source, settings FROM scores "
            "WHERE provenance = 'released' AND study = ? ORDER BY image_id", self._con, params=(study,))

    # ---- reading, listing, verifying ---------------------------------------------------------
    def frame(self, where: str = "", params: tuple = ()) -> pd.DataFrame:
        """All score rows (optionally filtered by an SQL ``where`` clause) as a DataFrame."""
        q = "SELECT * FROM scores" + (f" WHERE {where}" if where else "") + " ORDER BY key"
        return pd.read_sql_query(q, self._con, params=params)

    def failures(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM failures ORDER BY image", self._con)

    def image_stats(self, shas: Iterable[str] | None = None) -> pd.DataFrame:
        df = pd.read_sql_query("SELECT * FROM image_stats", self._con)
        if shas is not None:
            df = df[df["image_sha256"].isin(set(shas))]
        return df

    def count(self, provenance: str | None = None) -> int:
        if provenance:
            return self._con.execute("SELECT COUNT(*) FROM scores WHERE provenance = ?", (provenance,)).fetchone()[0]
        return self._con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def summary(self) -> pd.DataFrame:
        """One row per (provenance, study, weights, protocol) with the number of scores."""
        return pd.read_sql_query(
            "SELECT provenance, COALESCE(study, '') AS study, COALESCE(substr(weights_sha256, 1, 12), '') AS weights, "
            "protocol, COUNT(*) AS n, MIN(score) AS min_score, MAX(score) AS max_score FROM scores "
            "GROUP BY provenance, study, weights_sha256, protocol ORDER BY provenance, study, weights, protocol",
            self._con)

    def verify(self) -> list[str]:
        """Check the database: SQLite integrity, every key recomputed from its row, schema versions.

        Returns a list of problems (empty when the cache is sound).
        """
        problems = []
        for (msg,) in self._con.execute("PRAGMA integrity_check"):
            if msg != "ok":
                problems.append(f"sqlite integrity: {msg}")
        for r in self._con.execute("SELECT * FROM scores"):
            if r["schema_version"] != CACHE_SCHEMA_VERSION:
                problems.append(f"{r['key']}: schema version {r['schema_version']} != {CACHE_SCHEMA_VERSION}")
                continue
            if r["provenance"] == "released":
                expect = released_key(r["study"], r["image_id"])
            else:
                try:
                    expect = score_key(r["image_sha256"], r["weights_sha256"], protocol_from_settings(r["settings"]))
                except (ValueError, TypeError) as exc:
                    problems.append(f"{r['key']}: unreadable settings ({exc})")
                    continue
            if expect != r["key"]:
                problems.append(f"{r['key']}: key does not match its row (expected {expect}) for image {r['image']}")
            if r["score"] is None or r["score"] != r["score"]:
                problems.append(f"{r['key']}: missing score")
        return problems

    def merge_from(self, other: str | os.PathLike) -> int:
        """Copy every row of another cache into this one (existing keys kept); returns new score rows."""
        other = cache_path(other)
        if not other.is_file():
            raise FileNotFoundError(f"no cache database at {other}")
        src = ScoreCache(other)  # checks the schema version and applies WAL recovery
        src.close()
        self._con.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            with self.transaction() as con:
                before = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
                con.execute("INSERT OR IGNORE INTO scores SELECT * FROM other.scores")
                con.execute("INSERT OR IGNORE INTO image_stats SELECT * FROM other.image_stats")
                con.execute("INSERT OR IGNORE INTO failures SELECT * FROM other.failures f WHERE NOT EXISTS "
                            "(SELECT 1 FROM scores s WHERE s.image = f.image AND s.weights_sha256 = f.weights_sha256 "
                            "AND s.settings = f.settings)")
                after = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        finally:
            self._con.execute("DETACH DATABASE other")
        return after - before
