"""Study configurations (TOML files in ``analysis/``).

A study configuration names the released files (URL pattern, sha256, expected rows) and the
*roles* that analyses read (``study2_images`` -> a source). A new study is a new file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, closest, validate_config


#: Kinds of source: a single file checked by sha256, or a tree of JSON files checked by a content digest.
SOURCE_KINDS = ("file", "json_tree")
_SOURCE_KEYS = {"file", "sha256", "url", "rows", "description", "path", "kind", "content_digest"}


__all__ = ["ConfigError", "Source", "StudyConfig", "load_config", "SOURCE_KINDS"]


@dataclass(frozen=True)
class Source:
    """One released input file.

    Attributes
    ----------
    name : str
        Key in the configuration (``[sources.<name>]``).
    file : str
        File name in ``data/raw/`` and in a mirror folder.
    url : str
        Download URL (pinned to a commit).
    sha256 : str
        Expected sha256 of the file's bytes.
    rows : int or None
        Expected number of data rows (checked by the adapters).
    kind : str
        ``"file"`` (default): the bytes must have ``sha256``. ``"json_tree"``: an archive
        (``.tar``/``.tar.gz``) or an extracted folder of JSON files, verified by
        ``content_digest`` over the files (archive bytes differ between packers); ``sha256`` is
        then the digest of the mirror's archive, accepted as a fast path.
    content_digest : str
        For ``kind = "json_tree"``: sha256 of the lines ``<file name>\\0<sha256 of the file>\\n``
        over the member files sorted by name (see :func:`discbias.fetch.content_digest`).
    meta : dict
        Any other keys of the source's table (``member_dir``, ``files``, ``licence``...).
    """

    name: str
    file: str
    url: str
    sha256: str
    rows: int | None = None
    description: str = ""
    upstream_path: str = ""
    kind: str = "file"
    content_digest: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class StudyConfig:
    """A parsed study configuration.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
    >>> _ = p.write_text('''
    ... [study]
    ... id = "demo"
    ... title = "Demo"
    ... [upstream]
    ... repository = "o/r"
    ... commit = "abc"
    ... url = "https://example.org/{repository}/{commit}/{path}"
    ... [sources.a]
    ... file = "a.csv"
    ... sha256 = "00"
    ... [roles]
    ... first = "a"
    ... ''')
    >>> cfg = load_config(p)
    >>> cfg.role("first").url
    'https://example.org/o/r/abc/a.csv'
    """

    path: Path
    id: str
    title: str
    sources: dict[str, Source]
    roles: dict[str, str]
    upstream: dict = field(default_factory=dict)
    study: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    #: The validated file (:class:`discbias.schema.StudyFile`), defaults filled in; ``None`` only
    #: for a StudyConfig built by hand.
    settings: object = field(default=None, compare=False, hash=False, repr=False)

    def resolved(self) -> dict:
        """The configuration with every default filled in (what ``build/results/config_resolved.json`` holds).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
        >>> _ = p.write_text('[study]\\nid = "x"\\n[models]\\ndraws = 10\\n')
        >>> r = load_config(p).resolved()
        >>> r["models"]["draws"], r["models"]["chains"], r["scoring"]
        (10, 4, None)
        """
        if self.settings is None:
            raise ValueError("this StudyConfig was not made by load_config: it has no validated settings")
        return self.settings.model_dump(mode="json")

    # -- the typed tables: read here, once, by every stage ------------------------------------
    def _table(self, name: str):
        if self.settings is not None:
            return getattr(self.settings, name)
        from .schema import StudyFile

        doc = {"study": {"id": self.id}}
        if name in (self.raw or {}):
            doc[name] = self.raw[name]
        return getattr(validate_config(StudyFile, doc, file=self.path), name)

    @property
    def models(self):
        """The ``[models]`` table (:class:`discbias.schema.ModelsTable`, defaults filled in): ``config.models.draws``.

        ``config.models.model_fields_set`` holds the keys the file sets itself.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
        >>> _ = p.write_text('[study]\\nid = "x"\\n[models]\\ndraws = 10\\n')
        >>> c = load_config(p)
        >>> c.models.draws, c.models.chains, sorted(c.models.model_fields_set), c.scoring is None
        (10, 4, ['draws'], True)
        """
        return self._table("models")

    @property
    def scoring(self):
        """The ``[scoring]`` table (:class:`discbias.schema.ScoringTable`), or None when the file has none."""
        return self._table("scoring")

    @property
    def probes(self):
        """The ``[probes]`` table (:class:`discbias.schema.ProbesTable`), or None when the file has none."""
        return self._table("probes")

    @property
    def paper(self):
        """The ``[paper]`` table (:class:`discbias.schema.PaperTable`)."""
        return self._table("paper")

    @property
    def labels(self) -> dict[str, str]:
        """The ``[labels]`` table: the study's readable names of its ids."""
        return dict(self._table("labels"))

    @property
    def verify(self):
        """The ``[verify]`` table (tolerances of ``discbias verify``)."""
        return self._table("verify")

    @property
    def authors(self):
        """The ``[authors]`` table."""
        return self._table("authors")

    def role(self, role: str) -> Source:
        """Return the source a role points at; :class:`ConfigError` if unset."""
        if role not in self.roles:
            raise ConfigError(
                f"{self.path}: no [roles] entry '{role}'. Add `{role} = \"<source name>\"` under [roles]."
            )
        return self.sources[self.roles[role]]

    def has_role(self, role: str) -> bool:
        return role in self.roles


def load_config(path: str | Path) -> StudyConfig:
    """Read and check a study configuration TOML file.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.toml`` file.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        The file does not exist or is not TOML; a key is unknown, has the wrong type or an
        out-of-range value (checked against :class:`discbias.schema.StudyFile`, the message names
        the file, the table, the key and the closest valid key); a role names an unknown source.

    Examples
    --------
    See :class:`StudyConfig`.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"study configuration {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    from .schema import StudyFile

    settings = validate_config(StudyFile, raw, file=path)
    study = raw["study"]
    upstream = raw.get("upstream", {})
    sources: dict[str, Source] = {}
    for name, s in raw.get("sources", {}).items():
        url = s.get("url")
        if url is None and "url" in upstream:
            url = upstream["url"].format(
                repository=upstream.get("repository", ""),
                commit=upstream.get("commit", ""),
                path=s.get("path", s["file"]),
            )
        kind = s.get("kind", "file")
        if kind == "json_tree" and not s.get("content_digest"):
            raise ConfigError("has kind = \"json_tree\" and needs `content_digest`", file=path,
                              table=f"sources.{name}", key="content_digest",
                              suggestion="content_digest = \"<sha256>\" (see discbias.fetch.content_digest)")
        sources[name] = Source(
            name=name,
            file=s["file"],
            url=url or "",
            sha256=s["sha256"].lower(),
            rows=s.get("rows"),
            description=s.get("description", ""),
            upstream_path=s.get("path", s["file"]),
            kind=kind,
            content_digest=str(s.get("content_digest", "")).lower(),
            meta={k: v for k, v in s.items() if k not in _SOURCE_KEYS},
        )
    roles = dict(raw.get("roles", {}))
    for role, src in roles.items():
        if src not in sources:
            guess = closest(src, sources)
            raise ConfigError(f"role '{role}' points at unknown source '{src}'; known: {sorted(sources)}",
                              file=path, table="roles", key=role, suggestion=f"'{guess}'" if guess else None)
    return StudyConfig(
        path=path,
        id=study["id"],
        title=study.get("title", study["id"]),
        sources=sources,
        roles=roles,
        upstream=upstream,
        study=study,
        raw=raw,
        settings=settings,
    )


#: Name of the resolved configuration written next to the results.
RESOLVED_NAME = "config_resolved.json"


def write_resolved(config: StudyConfig, results_dir: str | Path) -> Path:
    """Write the resolved configuration (every default filled in) to ``results_dir/config_resolved.json``.

    The file records the configuration's file name (not its absolute path, which is a fact about
    the building machine, not a result), the sha256 of its bytes and the resolved tables; it is
    written atomically.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "s.toml").write_text('[study]\\nid = "x"\\n')
    >>> out = write_resolved(load_config(d / "s.toml"), d / "results")
    >>> r = json.loads(out.read_text())
    >>> r["file"], r["resolved"]["models"]["sampler"], r["resolved"]["study"]["on_invalid"]
    ('s.toml', 'nutpie', 'report')
    """
    import hashlib
    import json

    from .results import atomic_write_text

    out = Path(results_dir) / RESOLVED_NAME
    doc = dict(file=config.path.name, sha256=hashlib.sha256(config.path.read_bytes()).hexdigest(),
               study_id=config.id, resolved=config.resolved())
    atomic_write_text(out, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return out
