"""User errors, configuration errors and schema validation.

Two kinds of failure reach the command line:

- a :class:`UserError` is a mistake the user can fix (a misspelled key, a missing file, a stale
  build, a file whose checksum changed). ``discbias`` prints its message on one line and exits 2;
- anything else is a bug. ``discbias`` prints the traceback and exits 1 (see :func:`exit_code`).

:class:`ConfigError` is the :class:`UserError` of configuration files: it names the file, the
table and the key, and suggests the closest valid key (or value). :func:`validate_config` checks a
parsed TOML table against a pydantic model (subclass :class:`ConfigModel`, which forbids unknown
keys and converts nothing silently) and turns every problem pydantic finds into one
:class:`ConfigError`.

Examples
--------
>>> from typing import Literal
>>> from pydantic import Field
>>> class Models(ConfigModel):
...     draws: int = Field(1000, ge=1)
...     sampler: Literal["nutpie", "pymc"] = "nutpie"
>>> validate_config(Models, {"draws": 500}, file="study.toml", table="models")
Models(draws=500, sampler='nutpie')
>>> validate_config(Models, {"draw": 500}, file="study.toml", table="models")
Traceback (most recent call last):
...
discbias.errors.ConfigError: study.toml: [models] unknown key 'draw'; did you mean 'draws'?
>>> try:
...     validate_config(Models, {"sampler": "nutpei", "draws": 0}, file="study.toml", table="models")
... except ConfigError as exc:
...     [(p.table, p.key, p.suggestion) for p in exc.problems]
[('models', 'draws', 'draws = 1000 (the default)'), ('models', 'sampler', "'nutpie'")]
"""


import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = [
    "UserError",
    "ConfigError",
    "ConfigProblem",
    "ConfigModel",
    "closest",
    "validate_config",
    "read_toml",
    "exit_code",
    "EXIT_USER_ERROR",
    "EXIT_BUG",
]

#: Exit status of the command line for a :class:`UserError`.
EXIT_USER_ERROR = 2
#: Exit status of the command line for any other exception (a bug: the traceback is shown).
EXIT_BUG = 1


class UserError(Exception):
    """A mistake the user can fix; the command line prints the message on one line and exits 2.

    Subclass it for every error whose message says what to change (a file, a key, an option).
    Errors that are *not* user errors (a ``KeyError`` inside an analysis, say) must not be caught
    and re-raised as one: they are bugs, and their traceback is what a maintainer needs.

    Examples
    --------
    >>> class StaleThing(UserError):
    ...     pass
    >>> exit_code(StaleThing("build/ is stale: run `discbias fit`"))
    2
    >>> exit_code(KeyError("column"))
    1
    """

    def one_line(self) -> str:
        """The message on one line (line breaks become ``"; "``).

        Examples
        --------
        >>> UserError("two problems:\\n- a\\n- b").one_line()
        'two problems: a; b'
        """
        lines = [ln.strip().removeprefix("- ").strip() for ln in str(self).splitlines()]
        lines = [ln for ln in lines if ln]
        if not lines:
            return type(self).__name__
        head, rest = lines[0], lines[1:]
        return head + (" " + "; ".join(rest) if rest else "")


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file.

    Attributes
    ----------
    file : str
        The configuration file (as given).
    table : str
        Dotted TOML table holding the key (``"models"``, ``"sources.ffhq"``); ``""`` for the top level.
    key : str
        The key (``""`` when the problem is the table itself).
    message : str
        What is wrong (``"unknown key"``, ``"must be >= 1, got 0"``...).
    suggestion : str or None
        The closest valid key or value, or the default, or ``None``.
    """

    file: str
    table: str
    key: str
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"[{self.table}] " if self.table else ""
        key = f"{self.key}: " if self.key and not self.message.startswith("unknown key") else ""
        text = f"{self.file}: {where}{key}{self.message}"
        if self.suggestion:
            if self.suggestion.startswith(("'", '"')):  # a valid key or value
                text += f"; did you mean {self.suggestion}?"
            elif self.suggestion.startswith(("add ", "one of ")):
                text += f"; {self.suggestion}"
            else:
                text += f"; e.g. {self.suggestion}"
        return text


class ConfigError(UserError, ValueError):
    """A configuration file is wrong: names the file, the table, the key and a suggestion.

    Raise it either with a ready message (``ConfigError("study.toml: [study] needs an `id`")``) or
    with the parts, which are then kept as attributes for tests and tools.

    Parameters
    ----------
    message : str
        What is wrong. With ``file`` given, the message is prefixed with the file, table and key.
    file, table, key, suggestion : str, optional
        Where the problem is and the closest valid key or value.
    problems : sequence of ConfigProblem, optional
        Several problems at once (what :func:`validate_config` raises); ``message`` may then be empty.

    Attributes
    ----------
    problems : list of ConfigProblem
        Every problem (one when raised with ``file``; none when raised with a bare message).
    file, table, key, suggestion
        Those of the first problem (``None`` when there is none).

    Examples
    --------
    >>> err = ConfigError("unknown key 'draw'", file="s.toml", table="models", key="draw", suggestion="'draws'")
    >>> str(err)
    "s.toml: [models] unknown key 'draw'; did you mean 'draws'?"
    >>> err.file, err.table, err.key, err.suggestion
    ('s.toml', 'models', 'draw', "'draws'")
    >>> isinstance(err, UserError), isinstance(err, ValueError)
    (True, True)
    """

    def __init__(self, message: str = "", *, file: str | Path | None = None, table: str = "", key: str = "",
                 suggestion: str | None = None, problems: Sequence[ConfigProblem] | None = None):
        probs = list(problems or [])
        if file is not None:
            probs.insert(0, ConfigProblem(str(file), table, key, message, suggestion))
        self.problems: list[ConfigProblem] = probs
        first = probs[0] if probs else None
        self.file = first.file if first else None
        self.table = first.table if first else None
        self.key = first.key if first else None
        self.suggestion = first.suggestion if first else None
        if probs:
            text = str(probs[0]) if len(probs) == 1 else (
                f"{len(probs)} problems in {probs[0].file}: " + "; ".join(
                    str(p).removeprefix(f"{p.file}: ") for p in probs))
        else:
            text = message
        super().__init__(text)


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``word`` (:func:`difflib.get_close_matches`), or ``None``.

    Examples
    --------
    >>> closest("nutpei", ["nutpie", "pymc"])
    'nutpie'
    >>> closest("zzz", ["nutpie", "pymc"]) is None
    True
    """
    match = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=cutoff)
    return match[0] if match else None


def exit_code(exc: BaseException) -> int:
    """The command line's exit status for an exception: 2 for a :class:`UserError`, 1 otherwise.

    Examples
    --------
    >>> exit_code(ConfigError("x")), exit_code(ValueError("x"))
    (2, 1)
    """
    return EXIT_USER_ERROR if isinstance(exc, UserError) else EXIT_BUG


# --------------------------------------------------------------------------------------------
# Schema validation with pydantic
# --------------------------------------------------------------------------------------------

try:  # pydantic is a dependency; the import is guarded only so that `UserError` works without it
    from pydantic import BaseModel, ConfigDict, ValidationError
except ImportError as _exc:  # pragma: no cover - pydantic is declared in pyproject.toml
    raise ImportError("discbias.errors needs pydantic>=2: pip install 'pydantic>=2'") from _exc


class ConfigModel(BaseModel):
    """Base of every configuration schema: unknown keys are errors, nothing is converted silently.

    ``extra="forbid"`` rejects unknown keys; ``strict=True`` rejects ``"1000"`` for an integer
    and ``1.5`` for an integer (an integer is still accepted for a float). Fields whose TOML
    spelling is not a Python name use ``Field(alias=...)``; ``populate_by_name`` accepts both.

    Examples
    --------
    >>> class Probe(ConfigModel):
    ...     n: int = 10
    >>> Probe.model_validate({"n": 3}).n
    3
    """

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of an annotation, Optional/Annotated/Union removed."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(annotation):
            if a is not type(None):
                out.extend(_unwrap(a))
        return out
    return [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _field(model: type[BaseModel], key: str):
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f
    return None


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", str(t))


def _member(alts: list[Any], tag: str) -> Any:
    """The alternative of a union that pydantic's location tag names (``'ProtocolTable'``, ``"literal['a','b']"``)."""
    for a in alts:
        if _type_name(a) == tag:
            return a
        if tag.startswith("literal[") and typing.get_origin(a) is typing.Literal:
            return a
    return next((a for a in alts if _is_model(a)), alts[0])


@dataclass
class _Where:
    keys: list  # the TOML path: str keys and int array indices (union member tags removed)
    holder: Any  # the model holding the last key (None when the last key is a dict key or an index)
    info: Any  # the last key's FieldInfo (None for an unknown key, a dict key or an index)
    member: Any  # the union member the error is about (None outside unions)


def _walk(model: type[BaseModel], loc: Sequence[Any]) -> _Where:
    """Follow pydantic's error location ``loc`` through ``model``'s annotations."""
    current: Any = model
    where = _Where([], None, None, None)
    for part in loc:
        alts = _unwrap(current)
        if len(alts) > 1 and isinstance(part, str):  # pydantic names the union member it tried
            current = where.member = _member(alts, part)
            continue
        t = alts[0] if alts else None
        if _is_model(t) and isinstance(part, str):
            info = _field(t, part)
            where.keys.append(part)
            where.holder, where.info = t, info
            if info is None:  # an unknown key: nothing below it
                current = None
                continue
            current = info.annotation
        elif typing.get_origin(t) in (dict, list, tuple, set, frozenset):
            args = typing.get_args(t)
            where.keys.append(part)
            where.holder, where.info = None, None
            current = (args[-1] if typing.get_origin(t) is dict else args[0]) if args else None
        else:
            where.keys.append(part)
            where.holder, where.info = None, None
            current = None
    return where


def _literal_values(annotation: Any) -> list[Any]:
    vals: list[Any] = []
    for t in _unwrap(annotation):
        if typing.get_origin(t) is typing.Literal:
            vals.extend(typing.get_args(t))
    return vals


_RANGE = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _table_name(table: str, keys: Sequence[Any]) -> str:
    out = table
    for k in keys:
        if isinstance(k, int):
            out += f"[{k}]"
        else:
            out = f"{out}.{k}" if out else str(k)
    return out


def _problem(model: type[BaseModel], err: dict, file: str, table: str) -> ConfigProblem:
    where = _walk(model, err["loc"])
    keys = where.keys
    key = "" if not keys else (f"[{keys[-1]}]" if isinstance(keys[-1], int) else str(keys[-1]))
    tbl = _table_name(table, keys[:-1])
    info = where.info
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        valid = _field_names(where.holder) if where.holder is not None else []
        guess = closest(key, valid)
        return ConfigProblem(file, tbl, key, f"unknown key '{key}'",
                             f"'{guess}'" if guess else (f"one of {sorted(valid)}" if valid else None))
    if kind == "missing":
        return ConfigProblem(file, tbl, key, "is required but missing", f"add `{key} = ...`")
    default = None
    if info is not None and not info.is_required() and info.default is not None:
        default = f"{key} = {info.default!r} (the default)"
    if kind in ("literal_error", "enum"):
        allowed = _literal_values(where.member if where.member is not None else info.annotation) \
            if (info is not None or where.member is not None) else []
        guess = closest(value, allowed) if isinstance(value, str) else None
        return ConfigProblem(file, tbl, key, f"unknown value {value!r}, must be one of {allowed}",
                             repr(guess) if guess is not None else None)
    if kind in _RANGE:
        bound = next(iter(err.get("ctx", {}).values()), "?")
        if default is None and kind in ("greater_than_equal", "less_than_equal"):
            default = f"{key} = {bound!r} (the bound)"
        return ConfigProblem(file, tbl, key, f"must be {_RANGE[kind]} {bound}, got {value!r}", default)
    msg = err["msg"]
    msg = msg[0].lower() + msg[1:] if msg else kind
    return ConfigProblem(file, tbl, key, f"{msg}, got {value!r} ({type(value).__name__})", default)


def _drop_union_noise(model: type[BaseModel], errors: list[dict]) -> list[dict]:
    """Of the errors pydantic reports for every member of a union, keep the informative ones.

    When a value fails every member, pydantic lists one error per member; a member that failed
    only because the value has another type (``{...}`` for ``str``) says nothing useful when
    another member (the table's model) found real problems.
    """
    groups: dict[tuple, dict[Any, list[int]]] = {}
    for i, e in enumerate(errors):
        loc = list(e["loc"])
        for j, part in enumerate(loc):
            current_alts = _unwrap(_current_annotation(model, loc[:j]))
            if len(current_alts) > 1 and isinstance(part, str):
                groups.setdefault(tuple(loc[:j]), {}).setdefault(part, []).append(i)
                break
    drop: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        only_type = {m for m, idx in members.items() if all(_is_type_error(errors[i]) for i in idx)}
        if only_type and len(only_type) < len(members):
            for m in only_type:
                drop.update(members[m])
    return [e for i, e in enumerate(errors) if i not in drop]


def _is_type_error(err: dict) -> bool:
    """The value has another kind than the member wants (a table for a name, a name for a table)."""
    if err["type"].endswith("_type"):
        return True
    return err["type"] in ("literal_error", "enum") and isinstance(err.get("input"), (dict, list))


def _current_annotation(model: type[BaseModel], loc: Sequence[Any]) -> Any:
    """The annotation reached after following ``loc`` (union member tags consumed)."""
    current: Any = model
    for part in loc:
        alts = _unwrap(current)
        if len(alts) > 1 and isinstance(part, str):
            current = _member(alts, part)
            continue
        t = alts[0] if alts else None
        if _is_model(t) and isinstance(part, str):
            info = _field(t, part)
            current = info.annotation if info is not None else None
        elif typing.get_origin(t) in (dict, list, tuple, set, frozenset):
            args = typing.get_args(t)
            current = (args[-1] if typing.get_origin(t) is dict else args[0]) if args else None
        else:
            current = None
    return current


def read_toml(path: str | Path, *, missing: str = "") -> tuple[bytes, dict]:
    """Read a TOML configuration file: its bytes (for a checksum) and its parsed tables.

    Parameters
    ----------
    path : str or Path
    missing : str
        What the error says when the file does not exist (default: "configuration <path> does not exist").

    Raises
    ------
    ConfigError
        The file does not exist, or is not UTF-8 TOML (the message names the file and the parser's error).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.toml"
    >>> _ = p.write_text('[a]\\nb = 1\\n')
    >>> read_toml(p)[1]
    {'a': {'b': 1}}
    >>> _ = p.write_text('[a\\n')
    >>> read_toml(p)
    Traceback (most recent call last):
    ...
    discbias.errors.ConfigError: ...c.toml: not valid TOML (...)
    """
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise ConfigError(missing or f"configuration {path} does not exist", file=path)
    raw = path.read_bytes()
    try:
        return raw, tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", file=path) from None


def validate_config(model: type[ConfigModel], data: Any, *, file: str | Path, table: str = ""):
    """Validate a parsed TOML table against ``model``; raise one :class:`ConfigError` listing every problem.

    Parameters
    ----------
    model : type of ConfigModel
        The schema (a pydantic v2 model; subclass :class:`ConfigModel` for ``extra="forbid"``).
    data : dict
        The parsed table (``tomllib.load(...)["models"]``, or the whole file with ``table=""``).
    file : str or pathlib.Path
        The configuration file, named in every message.
    table : str, optional
        The dotted name of the table ``data`` came from (``"models"``), prefixed to every location.

    Returns
    -------
    ConfigModel
        The validated model, defaults filled in (``.model_dump()`` gives the resolved table).

    Raises
    ------
    ConfigError
        With ``problems``: one :class:`ConfigProblem` per error (unknown key with the closest
        valid key; wrong type or out-of-range value with the default as an example; unknown
        value of a fixed set with the closest allowed value).

    Examples
    --------
    >>> from pydantic import Field
    >>> class Fit(ConfigModel):
    ...     chains: int = Field(4, ge=1)
    >>> validate_config(Fit, {}, file="a.toml", table="models").chains
    4
    >>> validate_config(Fit, {"chains": "4"}, file="a.toml", table="models")
    Traceback (most recent call last):
    ...
    discbias.errors.ConfigError: a.toml: [models] chains: input should be a valid integer, got '4' (str); e.g. chains = 4 (the default)
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = _drop_union_noise(model, exc.errors())
        problems = [_problem(model, e, str(file), table) for e in errors]
        raise ConfigError(problems=problems) from None


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user named, or that an earlier stage makes, does not exist.

    The message says which and how to make it (``run `discbias measure` first``).

    Examples
    --------
    >>> err = MissingInputError("no tables in build/measures; run `discbias measure` first")
    >>> isinstance(err, FileNotFoundError), exit_code(err)
    (True, 2)
    """


class SetupError(UserError, RuntimeError):
    """The machine lacks something the command needs: CUDA, GPUs, an optional package.

    Examples
    --------
    >>> exit_code(SetupError("device 'cuda' requested but CUDA is not available; use --device cpu"))
    2
    """


class MissingExtraError(UserError, ImportError):
    """An optional dependency is not installed; the message names the extra (``pip install 'discbias[faces]'``).

    Examples
    --------
    >>> isinstance(MissingExtraError("pip install 'discbias[faces]'"), ImportError)
    True
    """
