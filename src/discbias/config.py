"""Study configurations (TOML files in ``analysis/``).

A study configuration names the released files (URL pattern, sha256, expected rows) and the
*roles* that analyses read (``study2_images`` -> a source). A new study is a new file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path


#: Kinds of source: a single file checked by sha256, or a tree of JSON files checked by a content digest.
SOURCE_KINDS = ("file", "json_tree")
_SOURCE_KEYS = {"file", "sha256", "url", "rows", "description", "path", "kind", "content_digest"}


class ConfigError(ValueError):
    """A study configuration is missing a field or names an unknown source."""


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
        A required key is missing, or a role names an unknown source.

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
    study = raw.get("study", {})
    if "id" not in study:
        raise ConfigError(f"{path}: [study] needs an `id`")
    upstream = raw.get("upstream", {})
    sources: dict[str, Source] = {}
    for name, s in raw.get("sources", {}).items():
        for key in ("file", "sha256"):
            if key not in s:
                raise ConfigError(f"{path}: [sources.{name}] needs `{key}`")
        url = s.get("url")
        if url is None and "url" in upstream:
            url = upstream["url"].format(
                repository=upstream.get("repository", ""),
                commit=upstream.get("commit", ""),
                path=s.get("path", s["file"]),
            )
        kind = s.get("kind", "file")
        if kind not in SOURCE_KINDS:
            raise ConfigError(f"{path}: [sources.{name}] kind = {kind!r}; known kinds: {list(SOURCE_KINDS)}")
        if kind == "json_tree" and not s.get("content_digest"):
            raise ConfigError(f"{path}: [sources.{name}] has kind = \"json_tree\" and needs `content_digest`")
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
            raise ConfigError(
                f"{path}: role '{role}' points at unknown source '{src}'; known: {sorted(sources)}"
            )
    return StudyConfig(
        path=path,
        id=study["id"],
        title=study.get("title", study["id"]),
        sources=sources,
        roles=roles,
        upstream=upstream,
        study=study,
        raw=raw,
    )
