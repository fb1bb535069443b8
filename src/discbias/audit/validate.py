"""Checks of an audit before its first expensive step (scoring, measures): one error listing every problem.

:func:`preflight` reads only the headers of the input files and the configuration, so a missing
column, a formula naming a variable nobody writes, or an unknown measure surfaces in a second or
two instead of after scoring every image. It checks:

* the manifest exists and has the image column, every ``groups`` column, the scoring
  ``label_column`` and every wide rating column;
* every long ratings file exists and has its image, rater, value and item columns;
* the ``[measures] image`` names are known measures;
* every ``[[claims]]`` term names a variable of its model;
* every ``[[models]]`` formula, ``standardize`` and ``cluster:`` column is a column at the
  model's level (manifest columns, measures, rated items, ``score``, ``score_<protocol>`` and
  with several networks ``score_<network>``;
  at the rating level also ``rater``).

Values (a rating out of its scale, an image that is missing) are checked later, row by row, and
listed in ``data_issues`` (:mod:`discbias.audit.ratings`).
"""

from __future__ import annotations


import pandas as pd

from ..errors import ConfigError, ConfigProblem
from ..safeio import describe_columns

__all__ = ["preflight", "level_columns"]


def _manifest_columns(cfg, problems: list) -> list[str] | None:
    from .ratings import file_columns

    f = str(cfg.path) if cfg.path else "configuration"
    d = cfg.data
    if d.folder:
        folder = cfg.resolve(d.folder)
        if not folder.is_dir():
            problems.append(ConfigProblem(f, "data", "folder", f"folder {folder} does not exist"))
        return ["image"]
    path = cfg.resolve(d.manifest)
    if not path.is_file():
        problems.append(ConfigProblem(f, "data", "manifest", f"manifest {path} does not exist"))
        return None
    if path.suffix.lower() not in (".csv", ".txt", ".parquet"):
        problems.append(ConfigProblem(f, "data", "manifest", f"manifest {path}: use a .csv or .parquet file"))
        return None
    cols = file_columns(path)
    have = describe_columns(cols)
    if d.image_column not in cols:
        problems.append(ConfigProblem(f, "data", "image_column", f"the manifest {path.name} has no image column "
                                      f"{d.image_column!r} ({have})"))
    for g in d.groups:
        if g not in cols:
            problems.append(ConfigProblem(f, "data", "groups", f"{g!r} is not a column of {path.name} ("
                                          f"{have})"))
    for k, net in enumerate(cfg.scoring.network_list()):
        lc = net.label_column
        if lc and lc not in cols:
            where = f"scoring.networks[{k}]" if cfg.scoring.networks else "scoring"
            problems.append(ConfigProblem(f, where, "label_column", f"{lc!r} is not a column of the manifest "
                                          f"{path.name} ({have})"))
    for item, rc in cfg.ratings.items():
        for c in rc.columns or []:
            if c not in cols:
                problems.append(ConfigProblem(f, f"ratings.{item}", "columns", f"{c!r} is not a column of the "
                                              f"manifest {path.name} ({have})"))
    return ["image" if c == d.image_column else c for c in cols]


def _ratings_files(cfg, problems: list) -> None:
    from .ratings import file_columns

    f = str(cfg.path) if cfg.path else "configuration"
    for item, rc in cfg.ratings.items():
        if not rc.file:
            continue
        path = cfg.resolve(rc.file)
        if not path.is_file():
            problems.append(ConfigProblem(f, f"ratings.{item}", "file", f"ratings file {path} does not exist"))
            continue
        try:
            cols = file_columns(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems.append(ConfigProblem(f, f"ratings.{item}", "file", f"ratings file {path} cannot be read ({exc})"))
            continue
        keys = [("image_column", rc.image_column), ("rater_column", rc.rater_column),
                ("value_column", rc.value_column)] + ([("item_column", rc.item_column)] if rc.item_column else [])
        for key, col in keys:
            if col not in cols:
                problems.append(ConfigProblem(f, f"ratings.{item}", key, f"the ratings file {path} has no column "
                                              f"{col!r} ({describe_columns(cols)})"))


def level_columns(cfg, manifest_columns) -> dict[str, list[str]]:
    """The columns a model can use at each level, known before anything is computed.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> cfg = NS(measures=NS(image=["luma_709"], faces="none"), ratings={"skin": None},
    ...          scoring=NS(protocols=["nvidia"], network_list=lambda: [NS(id="")]))
    >>> level_columns(cfg, ["image", "group"])["rating"]
    ['image', 'group', 'luma_709', 'skin', 'score', 'score_nvidia', 'score_condition', 'rater']
    """
    from ..measures.faces import FACE_COLUMNS
    from ..measures.image import IMAGE_MEASURES

    meas = list(IMAGE_MEASURES) if list(cfg.measures.image) == ["all"] else list(cfg.measures.image)
    if cfg.measures.faces != "none":
        meas += [c for c in FACE_COLUMNS if c not in meas]
    from .common import score_columns

    scores = score_columns(cfg) + ["score_condition"]
    image = list(dict.fromkeys([c for c in manifest_columns if c != "_path"] + meas + list(cfg.ratings) + scores))
    return {"image": image, "rating": image + ["rater"]}


def _models(cfg, manifest_columns, problems: list) -> None:
    from ..measures.image import IMAGE_MEASURES
    from .common import formula_columns

    f = str(cfg.path) if cfg.path else "configuration"
    unknown = [m for m in cfg.measures.image if m != "all" and m not in IMAGE_MEASURES]
    if unknown:
        problems.append(ConfigProblem(f, "measures", "image", f"unknown image measure(s) {unknown}; choose from "
                                      f"{', '.join(IMAGE_MEASURES)} or [\"all\"]"))
    if manifest_columns is None:
        return
    levels = level_columns(cfg, manifest_columns)
    for k, m in enumerate(cfg.models):
        cols = levels[m.level]
        frame = pd.DataFrame(columns=cols)
        _, missing = formula_columns(m.formula, frame)
        where = f"models[{k}]"
        if missing:
            other = levels["rating" if m.level == "image" else "image"]
            hint = [c for c in missing if c in other]
            hint_text = (f" ({', '.join(hint)} exist(s) at the other level: set level = "
                         f"\"{'rating' if m.level == 'image' else 'image'}\")") if hint else ""
            problems.append(ConfigProblem(f, where, "formula", f"model {m.id!r} uses {missing}, which is not a "
                                          f"column at the {m.level} level{hint_text}; columns are: {', '.join(cols)}"))
        for c in m.standardize:
            if c not in cols:
                problems.append(ConfigProblem(f, where, "standardize", f"model {m.id!r}: {c!r} is not a column at "
                                              f"the {m.level} level"))
        for c in m.compare:
            if c.startswith("cluster:") and c.split(":", 1)[1] not in cols:
                problems.append(ConfigProblem(f, where, "compare", f"model {m.id!r}: {c!r} clusters by "
                                              f"{c.split(':', 1)[1]!r}, which is not a column at the {m.level} level"))


def _claims(cfg, problems: list) -> None:
    """A claim's term must name a variable its model uses (its level, ``region[south]``, is known only after the fit)."""
    import re

    from .common import formula_columns

    f = str(cfg.path) if cfg.path else "configuration"
    models = {m.id: m for m in cfg.models}
    for k, c in enumerate(cfg.claims):
        m = models.get(c.model)
        if m is None or c.term in ("Intercept",) or c.term.startswith("sd("):
            continue
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", m.formula))
        base = re.sub(r"^C\(([^,)]+).*$", r"\1", c.term.split("[")[0]).strip()
        parts = [p.split("[")[0].strip() for p in base.split(":")]
        unknown = [p for p in parts if p and p not in words]
        if unknown:
            used = [w for w in formula_columns(m.formula, pd.DataFrame(columns=sorted(words)))[0]]
            problems.append(ConfigProblem(f, f"claims[{k}]", "term", f"claim {c.id!r}: the term {c.term!r} names "
                                          f"{', '.join(map(repr, unknown))}, which model {m.id!r} does not use (its "
                                          f"variables: {', '.join(used)}; a level is written like column[level])"))


def preflight(cfg) -> None:
    """Check the configuration against its input files' headers; raise one error listing every problem.

    Reads only the headers of the manifest and the ratings files (fast, whatever their size).

    Raises
    ------
    ConfigError
        With one :class:`~discbias.errors.ConfigProblem` per problem (``.problems``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from discbias.audit.config import load_audit_config
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "m.csv").write_text("image,group\\na.png,x\\n")
    >>> _ = (d / "r.csv").write_text("image,who,value\\na.png,ann,3\\n")
    >>> _ = (d / "a.toml").write_text('[audit]\\nname = "a"\\n[data]\\nmanifest = "m.csv"\\ngroups = ["group"]\\n'
    ...     '[scoring]\\nweights = "D.pt"\\n[ratings.skin]\\nfile = "r.csv"\\nscale = [1, 7]\\n'
    ...     '[[models]]\\nid = "m"\\nformula = "score ~ groop"\\n')
    >>> try:
    ...     preflight(load_audit_config(d / "a.toml"))
    ... except ConfigError as e:
    ...     print(len(e.problems)); print(e.problems[0].message)
    2
    the ratings file ...r.csv has no column 'rater' (its columns: image, who, value)
    """
    problems: list[ConfigProblem] = []
    cols = _manifest_columns(cfg, problems)
    _ratings_files(cfg, problems)
    _models(cfg, cols, problems)
    _claims(cfg, problems)
    if problems:
        raise ConfigError(problems=problems)
