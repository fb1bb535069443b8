"""Every path the pipeline reads or writes, in one place.

All paths are relative to a project root (the current working directory by default, or the
``DISCBIAS_ROOT`` environment variable), so a user can run the pipeline from a checkout or from
any folder holding an ``analysis/`` configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    """The folders of one project.

    Parameters
    ----------
    root : pathlib.Path
        Project root; ``data/`` and ``build/`` live under it.

    Examples
    --------
    >>> p = ProjectPaths(Path("/tmp/proj"))
    >>> str(p.results)
    '/tmp/proj/build/results'
    """

    root: Path

    @property
    def raw(self) -> Path:
        """Immutable downloads of released data (``data/raw``)."""
        return self.root / "data" / "raw"

    @property
    def build(self) -> Path:
        return self.root / "build"

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
        return self.build / "tables"

    @property
    def report(self) -> Path:
        return self.build / "report"

    @property
    def stamp(self) -> Path:
        """Which configuration made the tables in ``build/`` (``build/config-stamp.json``, written by measure)."""
        return self.build / "config-stamp.json"

    @property
    def cache(self) -> Path:
        """Content-keyed caches that survive a configuration switch (``build/cache``)."""
        return self.build / "cache"

    def derived(self) -> tuple[Path, ...]:
        """What a configuration's stages write (removed when the configuration changes)."""
        return (self.measures, self.results, self.values, self.figures, self.tables, self.report)

    def ensure(self) -> "ProjectPaths":
        """Create every output folder; returns ``self``."""
        for d in (self.raw, self.measures, self.results, self.figures, self.tables, self.report):
            d.mkdir(parents=True, exist_ok=True)
        return self


def project_paths(root: str | os.PathLike | None = None) -> ProjectPaths:
    """Return the :class:`ProjectPaths` for ``root`` (default: ``$DISCBIAS_ROOT`` or the cwd).

    Examples
    --------
    >>> project_paths("/tmp/x").raw.as_posix()
    '/tmp/x/data/raw'
    """
    if root is None:
        root = os.environ.get("DISCBIAS_ROOT") or Path.cwd()
    return ProjectPaths(Path(root).resolve())
