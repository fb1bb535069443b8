"""Every path the pipeline reads or writes, in one place: one resolver against the project root.

All paths are relative to a project root (``--root``; else the ``DISCBIAS_ROOT`` environment
variable; else the current working directory), so a user can run the pipeline from a checkout or
from any folder holding an ``analysis/`` configuration. :class:`ProjectPaths` resolves the
configuration (:meth:`ProjectPaths.config`), the data (``data/raw``), the score cache
(``data/cache`` or ``$DISCBIAS_CACHE_DIR``), the weights (``data/weights`` or
``$DISCBIAS_WEIGHTS_DIR``), the templates (``report/`` or ``$DISCBIAS_TEMPLATES``) and every build
output; nothing else in the package resolves a path against the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Environment variables that move one resolved folder away from the project root.
CACHE_ENV = "DISCBIAS_CACHE_DIR"
WEIGHTS_ENV = "DISCBIAS_WEIGHTS_DIR"
TEMPLATES_ENV = "DISCBIAS_TEMPLATES"
ROOT_ENV = "DISCBIAS_ROOT"


@dataclass(frozen=True)
class ProjectPaths:
    """The folders of one study in one project: the only path class of the package.

    Every study (the replication, an audit, the probes demo) is built with the same layout under
    its build folder; only the build folder differs: ``build/`` for the replication,
    ``build/<study>/`` for any other study. Inputs shared by all studies (``data/raw``, the score
    cache, the weights, the templates) resolve the same way for every study.

    Parameters
    ----------
    root : pathlib.Path
        Project root; ``data/`` and ``build/`` live under it.
    study : str, optional
        The study's build folder under ``build/`` (an audit's ``[audit] name``, ``probes-demo``);
        empty for the replication, which builds into ``build/`` itself. One folder name: no
        separators, not ``.`` or ``..``.

    Examples
    --------
    >>> p = ProjectPaths(Path("/tmp/proj"))
    >>> str(p.results)
    '/tmp/proj/build/results'
    >>> a = ProjectPaths(Path("/tmp/proj"), "faces")
    >>> a.results.as_posix(), a.store.as_posix(), a.score_cache == p.score_cache
    ('/tmp/proj/build/faces/results', '/tmp/proj/build/faces/engine/store', True)
    """

    root: Path
    study: str = ""

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        s = self.study
        if s and (s in (".", "..") or "/" in s or "\\" in s or "\0" in s):
            raise ValueError(f"study build folder {s!r} must be one folder name (no '/', not '.' or '..')")

    @property
    def raw(self) -> Path:
        """Immutable downloads of released data (``data/raw``)."""
        return self.root / "data" / "raw"

    @property
    def build(self) -> Path:
        """The study's build folder: ``build/`` (replication) or ``build/<study>/``."""
        return self.root / "build" / self.study if self.study else self.root / "build"

    @property
    def measures(self) -> Path:
        """Tidy tables made from the raw files (``build/measures``)."""
        return self.build / "measures"

    @property
    def results(self) -> Path:
        """Tidy result tables (``build/results``)."""
        return self.build / "results"

    @property
    def values(self) -> Path:
        """Scalar values used in the paper (``build/values.json``)."""
        return self.build / "values.json"

    @property
    def figures(self) -> Path:
        return self.build / "figures"

    @property
    def tables(self) -> Path:
        """Publication tables (``build/tables``: CSV, TeX, Typst, HTML, Markdown)."""
        return self.build / "tables"

    @property
    def report(self) -> Path:
        return self.build / "report"

    @property
    def cache(self) -> Path:
        """Content-keyed caches that survive a configuration switch (``build/cache``)."""
        return self.build / "cache"

    @property
    def score_cache(self) -> Path:
        """The content-addressed score cache folder (``data/cache``, or ``$DISCBIAS_CACHE_DIR``)."""
        env = os.environ.get(CACHE_ENV)
        return Path(env).expanduser() if env else self.root / "data" / "cache"

    @property
    def weights(self) -> Path:
        """Downloaded network weights (``data/weights``, or ``$DISCBIAS_WEIGHTS_DIR``)."""
        env = os.environ.get(WEIGHTS_ENV)
        return Path(env).expanduser() if env else self.root / "data" / "weights"

    @property
    def templates(self) -> Path:
        """The paper's templates (``report/`` in the root, or ``$DISCBIAS_TEMPLATES``)."""
        env = os.environ.get(TEMPLATES_ENV)
        return Path(env).expanduser() if env else self.root / "report"

    @property
    def engine(self) -> Path:
        """The engine's own records (``build/engine``: per-step manifests and intermediate tables)."""
        return self.build / "engine"

    @property
    def manifests(self) -> Path:
        """Per-step manifests of the engine (``build/engine/manifests``)."""
        return self.engine / "manifests"

    @property
    def store(self) -> Path:
        """The engine's table store (``build/engine/store``: exact Parquet tables and JSON values)."""
        return self.engine / "store"

    def config(self, path: str | os.PathLike) -> Path:
        """A configuration file: an absolute path as is, a relative one against the root.

        Examples
        --------
        >>> ProjectPaths(Path("/tmp/proj")).config("analysis/x.toml").as_posix()
        '/tmp/proj/analysis/x.toml'
        >>> ProjectPaths(Path("/tmp/proj")).config("/etc/y.toml").as_posix()
        '/etc/y.toml'
        """
        return self.resolve(path)

    def resolve(self, path: str | os.PathLike) -> Path:
        """Any path the user gives (``~`` expanded): absolute as is, relative against the root.

        Examples
        --------
        >>> ProjectPaths(Path("/tmp/proj")).resolve("tests/ref.csv").as_posix()
        '/tmp/proj/tests/ref.csv'
        """
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    def ensure(self) -> "ProjectPaths":
        """Create every output folder of the study's build; returns ``self``."""
        for d in (self.measures, self.results, self.figures, self.tables, self.report):
            d.mkdir(parents=True, exist_ok=True)
        return self


def project_paths(root: str | os.PathLike | None = None, study: str = "") -> ProjectPaths:
    """Return the :class:`ProjectPaths` for ``root`` (default: ``$DISCBIAS_ROOT`` or the cwd) and ``study``.

    This is the only place where the working directory is the default of anything.

    Examples
    --------
    >>> project_paths("/tmp/x").raw.as_posix()
    '/tmp/x/data/raw'
    """
    if root is None:
        root = os.environ.get(ROOT_ENV) or Path.cwd()
    return ProjectPaths(Path(root).resolve(), study)
