"""Any study's build, whatever its kind: where its results, values and paper are, and how to rebuild it.

A study is one configuration file. The replication (``analysis/grissom2024.toml``, a ``[study]``
table) and an audit (an ``[audit]`` table, :mod:`discbias.audit.config`) build into different
folders and render different papers; :func:`open_study` reads the configuration once and returns
a :class:`StudyBuild` that says, for either kind, what ``discbias report``, ``bundle`` and
``verify`` need: the study id and title, the build folder holding ``results/*.csv`` and
``values.json``, the rendered paper, the templates it was rendered from, the ``[verify]``
tolerances, and how to run the study (:meth:`StudyBuild.run`) or rebuild it elsewhere
(:meth:`StudyBuild.rebuild`). ``bundle`` and ``verify`` are written against this record only.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.toml").write_text('[audit]\\nname = "faces"\\n[data]\\nmanifest = "m.csv"\\n'
...                               '[scoring]\\nweights = "D.pkl"\\n')
>>> study_kind(d / "a.toml")
'audit'
>>> s = open_study(d / "a.toml", root=d)
>>> s.kind, s.id, s.paths.build.relative_to(d).as_posix(), sorted(s.report_files)
('audit', 'faces', 'build/faces', ['report/paper.html', 'report/paper.pdf'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, read_toml

__all__ = ["StudyBuild", "open_study", "study_kind", "register_kind", "KINDS"]

#: The kinds of study and the top-level table that marks each (a configuration without any of
#: them is the replication's, whose schema then names what is missing).
KINDS = {"audit": "audit", "replication": "study"}
#: How each kind is opened: ``opener(path, root, template_dir) -> StudyBuild``.
_OPENERS: dict[str, Callable] = {}


def register_kind(kind: str, table: str, opener: Callable) -> None:
    """Make ``discbias report``, ``steps``, ``bundle`` and ``verify`` open configurations with a
    ``[table]`` as a study of ``kind``: ``opener(path, root, template_dir)`` returns its
    :class:`StudyBuild` (see ``docs/engine.md``, "Adding a study kind").

    Examples
    --------
    >>> sorted(KINDS.items())
    [('audit', 'audit'), ('planted', 'planted'), ('replication', 'study')]
    """
    if KINDS.get(kind, table) != table or any(t == table and k != kind for k, t in KINDS.items()):
        raise ValueError(f"study kind {kind!r} or table [{table}] is registered already, for another table or kind")
    KINDS[kind] = table
    _OPENERS[kind] = opener


def study_kind(path: str | os.PathLike) -> str:
    """``"audit"`` for a configuration with an ``[audit]`` table, ``"planted"`` for a ``[planted]``
    table (:mod:`discbias.planted`), else ``"replication"``.

    Raises
    ------
    ConfigError
        The file does not exist or is not TOML.
    """
    path = Path(path)
    _, data = read_toml(path, missing=f"study configuration {path} does not exist; pass an existing file with "
                                      f"--config (e.g. analysis/grissom2024.toml, or one written by `discbias audit init`)")
    found = [k for k, table in KINDS.items() if table in data]
    if len(found) > 1:
        raise ConfigError(f"{path} has the tables {', '.join(f'[{KINDS[k]}]' for k in found)}; a study configuration "
                          "has one of them (e.g. an [audit] of your discriminators, or a replication's [study])",
                          file=path)
    return found[0] if found else "replication"


@dataclass
class StudyBuild:
    """One study's build, described the same way for every kind.

    Attributes
    ----------
    kind : str
        ``"replication"`` or ``"audit"``.
    config : object
        The loaded configuration (:class:`~discbias.config.StudyConfig` or
        :class:`~discbias.audit.config.AuditConfig`).
    config_path : pathlib.Path
    id, title, paper : str
        Study id (names the bundle), title, and the citation of the paper it replicates (or "").
    paths : discbias.paths.ProjectPaths
        The study's paths: ``paths.root`` (``data/``, ``build/``), ``paths.build`` (the folder
        holding ``results/*.csv`` and ``values.json``: ``paths.results``, ``paths.values``).
    report_files : dict of str to pathlib.Path
        The rendered paper, by its name in a bundle (``report/paper.html``, ``report/paper.pdf``).
    template_dir : pathlib.Path
        The templates the paper is rendered from.
    required_tables : tuple of str
        Results tables a complete build has (``claims.csv``, ...).
    verify : dict
        The configuration's ``[verify]`` table (tolerances), possibly empty.
    """

    kind: str
    config: Any
    config_path: Path
    id: str
    title: str
    paper: str
    paths: Any
    report_files: dict[str, Path]
    template_dir: Path
    required_tables: tuple[str, ...]
    verify: dict = field(default_factory=dict)
    _run: Callable[..., Any] | None = field(default=None, repr=False)
    _rebuild: Callable[[Path], Path] | None = field(default=None, repr=False)
    _engine: Callable[[], Any] | None = field(default=None, repr=False)

    def run(self, **options) -> Any:
        """Run the study (every step that is out of date) and render its paper."""
        return self._run(**options)

    def engine(self):
        """The study's :class:`~discbias.engine.Engine` (its declared steps on its store)."""
        return self._engine()

    def rebuild(self, where: Path) -> Path:
        """Rebuild the study's results and values under ``where`` (a fresh project root sharing
        ``data/`` through a link); return the new build folder."""
        return self._rebuild(Path(where))


def _link_data(root: Path, where: Path) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    if not (where / "data").exists():
        os.symlink(root / "data", where / "data", target_is_directory=True)


def _replication(path: Path, root: str | os.PathLike | None, template_dir: str | os.PathLike | None) -> StudyBuild:
    from ..config import load_config
    from ..paths import project_paths

    return replication_build(load_config(path), project_paths(root), template_dir)


def replication_build(config, paths, template_dir: str | os.PathLike | None = None) -> StudyBuild:
    """The :class:`StudyBuild` of a loaded replication configuration on a project's paths."""
    from .. import pipeline
    from ..paths import ProjectPaths

    templates = Path(template_dir) if template_dir else paths.templates

    def run(formats=("html", "pdf"), **_):
        pipeline.run_all(config.path, paths.root, formats=formats)

    def rebuild(where: Path) -> Path:
        _link_data(paths.root, where)
        fresh = ProjectPaths(where, paths.study)
        pipeline.run_fetch(config, fresh)
        pipeline.run_measure(config, fresh)
        pipeline.run_fit(config, fresh)
        return fresh.build

    return StudyBuild(kind="replication", config=config, config_path=Path(config.path), id=config.id,
                      title=config.title, paper=config.study.get("paper", ""), paths=paths,
                      report_files={"report/paper.html": paths.report / "paper.html",
                                    "report/paper.pdf": paths.report / "paper.pdf"},
                      template_dir=templates, required_tables=("claims.csv", "provenance.csv"),
                      verify=dict((getattr(config, "raw", None) or {}).get("verify", {}) or {}),
                      _run=run, _rebuild=rebuild, _engine=lambda: pipeline.build_engine(config, paths))


def audit_root(cfg, root: str | os.PathLike | None) -> Path:
    """An audit's project root: ``root`` if given, else the folder above ``analysis/`` holding the
    configuration, else the configuration's folder (as ``discbias audit run``)."""
    if root is not None:
        return Path(root).resolve()
    here = cfg.path.parent if cfg.path else Path.cwd()
    return here.parent if here.name == "analysis" else here


def _audit(path: Path, root: str | os.PathLike | None, template_dir: str | os.PathLike | None) -> StudyBuild:
    from ..audit.config import load_audit_config
    from ..audit.report import TEMPLATE_DIR
    from ..audit.run import audit, audit_engine
    from ..paths import ProjectPaths

    cfg = load_audit_config(path)
    where = audit_root(cfg, root)
    name = cfg.audit.name
    paths = ProjectPaths(where, name)

    def run(formats=("html", "pdf"), draft=False, force=False, log=None, **_):
        return audit(cfg, root=where, formats=formats, draft=draft, force=force, log=log)

    def rebuild(fresh_root: Path) -> Path:
        _link_data(where, fresh_root)
        audit(cfg, root=fresh_root, formats=())  # results and values; no paper
        return ProjectPaths(fresh_root, name).build

    return StudyBuild(kind="audit", config=cfg, config_path=Path(cfg.path), id=name,
                      title=cfg.audit.title or f"Discriminator audit: {name}", paper="", paths=paths,
                      report_files={"report/paper.html": paths.report / f"{name}.html",
                                                       "report/paper.pdf": paths.report / f"{name}.pdf"},
                      template_dir=Path(template_dir) if template_dir else TEMPLATE_DIR,
                      required_tables=("claims.csv",), verify={}, _run=run, _rebuild=rebuild,
                      _engine=lambda: audit_engine(cfg, paths))


def open_study(config_path: str | os.PathLike, root: str | os.PathLike | None = None, *,
               template_dir: str | os.PathLike | None = None) -> StudyBuild:
    """Load a study configuration of any kind and describe its build (see :class:`StudyBuild`).

    Parameters
    ----------
    config_path : path
        The study configuration (TOML).
    root : path, optional
        Project root. Default: the working directory for the replication; for an audit, the
        folder above ``analysis/`` holding the configuration (as ``discbias audit run``).
    template_dir : path, optional
        The templates the paper was rendered from (default: the kind's own).

    Raises
    ------
    ConfigError
        The configuration is missing, not TOML, or breaks its kind's schema.
    """
    path = Path(config_path)
    return _OPENERS[study_kind(path)](path, root, template_dir)


def _planted(path: Path, root, template_dir) -> StudyBuild:
    """The planted-bias validation study (:mod:`discbias.planted`)."""
    from ..paths import project_paths
    from ..planted.config import load_planted_config
    from ..planted.study import PlantedPaths, planted_engine, run_planted

    cfg = load_planted_config(path)
    where = project_paths(root).root
    paths = PlantedPaths(where, cfg.id)

    def run(formats=("html", "pdf"), force=False, log=None, **_):
        return run_planted(cfg, where, formats=formats, force=force, log=log)

    def rebuild(fresh_root: Path) -> Path:
        run_planted(cfg, fresh_root, formats=())
        return PlantedPaths(fresh_root, cfg.id).build

    return StudyBuild(kind="planted", config=cfg, config_path=Path(cfg.path), id=cfg.id, title=cfg.title, paper="",
                      paths=paths, report_files={"report/paper.html": paths.report / "paper.html",
                                                 "report/paper.pdf": paths.report / "paper.pdf"},
                      template_dir=Path(template_dir) if template_dir else paths.templates,
                      required_tables=("operating.csv",), verify={}, _run=run, _rebuild=rebuild,
                      _engine=lambda: planted_engine(cfg, paths))


register_kind("replication", "study", _replication)
register_kind("audit", "audit", _audit)
register_kind("planted", "planted", _planted)  # the planted-bias validation study (discbias.planted)
