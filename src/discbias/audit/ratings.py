"""An audit's ratings: wide manifest columns or long files, validated value by value.

Layouts (declared per item in ``[ratings.<item>]``):

* wide: ``columns = ["skin_r1", "skin_r2", ...]``, one manifest column per rater (an empty cell
  is an image that rater did not rate);
* long: ``file = "ratings.csv"`` with one row per image and rater (``image_column``,
  ``rater_column``, ``value_column``); with ``item_column`` one file holds every item (one row per
  image x rater x item) and each ``[ratings.<item>]`` picks its rows (``item`` = its name in the
  file, default the table's key). Raters need not rate every image (an incomplete design).

Every bad value becomes one row of the ``data_issues`` table (the columns of
:data:`discbias.studies.validation.ISSUE_COLUMNS`: file, line, column, value, problem, action; and
the rated item),
as the replication's adapters do: a missing or non-numeric value, a value outside the declared
scale, an image not in the manifest, a second rating of the same image by the same rater, a
missing rater or item, and rows of items the configuration does not declare. Such a rating is
left out and the run goes on; with ``[audit] on_invalid = "error"`` (or ``discbias audit run
--on-invalid error``) :class:`RatingsError` stops the run listing every issue.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..safeio import describe_columns
from ..studies.validation import ISSUE_COLUMNS, IssueLog, numeric_column, read_released_csv
from .common import AuditError

__all__ = ["collect_ratings", "file_columns", "read_table_file", "RatingsError", "LONG_COLUMNS"]

#: Columns of the ``ratings_long`` table.
LONG_COLUMNS = ["item", "image", "rater", "value"]
_LEFT_OUT = "rating left out"


class RatingsError(AuditError):
    """Invalid rating values under ``on_invalid = "error"``; ``issues`` holds every one.

    Examples
    --------
    >>> e = RatingsError(pd.DataFrame([dict(file="r.csv", line=3, column="value", value="9",
    ...                                     problem="rating outside 1-7", action="rating left out")]))
    >>> print(str(e).splitlines()[1])
    - r.csv line 3, column 'value': rating outside 1-7 (value '9')
    """

    def __init__(self, issues: pd.DataFrame):
        self.issues = issues
        rows = list(issues.itertuples(index=False))
        head = "\n".join(f"- {r.file} line {r.line}, column '{r.column}': {r.problem} (value {r.value!r})"
                         for r in rows[:20])
        more = f"\n... and {len(rows) - 20} more" if len(rows) > 20 else ""
        super().__init__(f"{len(rows)} invalid rating value(s):\n{head}{more}\nFix the file(s), or run with "
                         f"`--on-invalid report` ([audit] on_invalid = \"report\", the default) to leave these "
                         f"ratings out and list them in the report's data issues")


def file_columns(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file, reading only its header.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text("image,rater,value\\na.png,ann,3\\n")
    >>> file_columns(p)
    ['image', 'rater', 'value']
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for rec in csv.reader(fh):
            if rec:
                return [c if c != "" else f"Unnamed: {i}" for i, c in enumerate(rec)]
    return []


def read_table_file(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """A long ratings file as text cells with each row's line (CSV: the physical line; Parquet: row + 1).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text("image,rater,value\\na.png,ann,3\\n\\nb.png,bob,NA\\n")
    >>> df, lines = read_table_file(p); df["value"].tolist(), lines.tolist()
    (['3', nan], [2, 4])
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        df = pd.read_parquet(path).reset_index(drop=True)
        return df, np.arange(1, len(df) + 1)
    return read_released_csv(path)


def _long_rows(cfg, inputs: pd.DataFrame, files: dict, issues: list) -> list[pd.DataFrame]:
    """Valid rows of every long-file item; issues of every row appended to ``issues``."""
    known = set(inputs["image"])
    by_file: dict[Path, list[tuple[str, object]]] = {}
    for item, rc in cfg.ratings.items():
        if rc.file:
            by_file.setdefault(cfg.resolve(rc.file), []).append((item, rc))
    parts = []
    for path, entries in by_file.items():
        if not path.is_file():
            item = entries[0][0]
            raise ConfigError(f"[ratings.{item}] file {path} does not exist; fix `file`", file=cfg.path,
                              table=f"ratings.{item}", key="file")
        raw, lines = files.setdefault(path, read_table_file(path))
        name = path.name
        claimed: dict[str, set] = {}
        for item, rc in entries:
            need = {rc.image_column: "image_column", rc.rater_column: "rater_column", rc.value_column: "value_column"}
            if rc.item_column:
                need[rc.item_column] = "item_column"
            miss = [f"{k} ({v})" for k, v in need.items() if k not in raw.columns]
            if miss:
                raise ConfigError(f"[ratings.{item}] {name} lacks the column(s) {', '.join(miss)} ("
                                  f"{describe_columns(raw.columns)}); set image_column / rater_column / "
                                  f"value_column / item_column", file=cfg.path, table=f"ratings.{item}")
            rows = raw
            if rc.item_column:
                name_in_file = rc.item or item
                claimed.setdefault(rc.item_column, set()).add(name_in_file)
                cells = raw[rc.item_column].astype(object).where(raw[rc.item_column].notna(), None)
                rows = raw[cells.map(lambda v: v is not None and str(v).strip() == name_in_file)]
            log = IssueLog(name, lines)
            img = rows[rc.image_column].astype(object)
            img = img.where(img.isna(), img.astype(str).str.strip())
            rater = rows[rc.rater_column].astype(object)
            rater = rater.where(rater.isna(), rater.astype(str).str.strip())
            ok = pd.Series(True, index=rows.index)
            for idx in rows.index[img.isna() | (img == "")]:
                log.add(log.line(idx), rc.image_column, "", "missing image", "row left out")
                ok[idx] = False
            for idx in rows.index[ok & ~img.isin(known)]:
                log.add(log.line(idx), rc.image_column, img[idx], "image not in the manifest",
                        "row left out")
                ok[idx] = False
            for idx in rows.index[ok & (rater.isna() | (rater == ""))]:
                log.add(log.line(idx), rc.rater_column, "", "missing rater", "row left out")
                ok[idx] = False
            lo, hi = rc.scale
            vlog = IssueLog(name, lines)
            vals = numeric_column(rows.loc[ok], rc.value_column, vlog, what="rating", low=lo, high=hi,
                                  required=True)
            for i in vlog.issues:  # every invalid value: the rating is left out (not kept as missing)
                log.add(i.line, i.column, i.value, i.problem, _LEFT_OUT)
            ok &= vals.reindex(rows.index).notna()
            d = pd.DataFrame({"image": img[ok], "rater": rater[ok], "value": vals.reindex(rows.index)[ok]})
            dup = d.duplicated(["image", "rater"], keep="first")
            for idx in d.index[dup]:
                log.add(log.line(idx), rc.value_column, rows.loc[idx, rc.value_column],
                        f"second rating of image {d.loc[idx, 'image']!r} by rater {d.loc[idx, 'rater']!r}",
                        "row left out (the first rating is kept)")
            issues.append(log.frame().assign(item=item))
            parts.append(d[~dup].assign(item=item)[LONG_COLUMNS])
        for col, names in claimed.items():  # rows of the file no [ratings.<item>] picks
            log = IssueLog(name, lines)
            cells = raw[col].astype(object)
            text = cells.where(cells.isna(), cells.astype(str).str.strip())
            for idx in raw.index[text.isna() | (text == "")]:
                log.add(log.line(idx), col, "", "missing item", "row left out")
            issues.append(log.frame().assign(item=""))
            log = IssueLog(name, lines)
            other = text.notna() & (text != "") & ~text.isin(names)
            for value, idx in text[other].groupby(text[other], sort=True).groups.items():
                log.add(log.line(idx[0]), col, value, f"item not declared in the configuration ({len(idx)} row(s) "
                        f"from this line on)", f"rows ignored (declare [ratings.{value}] to use them)")
            issues.append(log.frame().assign(item=log.frame()["value"]))
    return parts


def collect_ratings(cfg, inputs: pd.DataFrame, manifest: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every item's ratings as one long table, and every invalid value as a data issue.

    Parameters
    ----------
    cfg : AuditConfig
    inputs : DataFrame
        The manifest as read by :func:`discbias.audit.run.read_manifest` (column ``image``).
    manifest : path, optional
        The manifest file (named in the issues of wide columns).

    Returns
    -------
    (DataFrame, DataFrame)
        ``item, image, rater, value`` (valid ratings only) and the issues (``file, line, column,
        value, problem, action, item``).

    Raises
    ------
    RatingsError
        ``[audit] on_invalid = "error"`` and some value is invalid (every issue listed).
    ConfigError
        A declared column or file does not exist.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> cfg = NS(ratings={"skin": NS(columns=["a", "b"], file=None, scale=[1, 5])}, audit=NS(on_invalid="report"))
    >>> long, issues = collect_ratings(cfg, pd.DataFrame({"image": ["x", "y"], "a": [1, 9], "b": [2, None]}))
    >>> long.to_dict("records")
    [{'item': 'skin', 'image': 'x', 'rater': 'a', 'value': 1.0}, {'item': 'skin', 'image': 'x', 'rater': 'b', 'value': 2.0}]
    >>> issues[["line", "column", "value", "problem", "item"]].values.tolist()
    [[3, 'a', '9', 'rating outside 1-5', 'skin']]
    """
    issues: list[pd.DataFrame] = []
    parts: list[pd.DataFrame] = []
    mname = Path(manifest).name if manifest is not None else "manifest"
    for item, rc in cfg.ratings.items():
        if not rc.columns:
            continue
        miss = [c for c in rc.columns if c not in inputs.columns]
        if miss:
            raise ConfigError(f"[ratings.{item}] columns {miss} are not in the manifest ("
                              f"{describe_columns(c for c in inputs.columns if c != '_path')}); fix `columns`",
                              file=getattr(cfg, "path", None), table=f"ratings.{item}", key="columns")
        log = IssueLog(mname)
        frame = inputs.reset_index(drop=True)
        lo, hi = rc.scale
        for c in rc.columns:
            v = numeric_column(frame, c, log, what="rating", low=lo, high=hi)
            parts.append(pd.DataFrame({"item": item, "image": frame["image"], "rater": str(c), "value": v})
                         .dropna(subset=["value"]))
        issues.append(log.frame().assign(action=_LEFT_OUT, item=item))
    parts += _long_rows(cfg, inputs, {}, issues)
    long = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LONG_COLUMNS))
    long = long.astype({"item": str, "image": str, "rater": str, "value": float})[LONG_COLUMNS]
    found = [i for i in issues if len(i)]
    table = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=ISSUE_COLUMNS + ["item"])
    table = table[ISSUE_COLUMNS + ["item"]].astype({"file": str, "line": int, "column": str, "value": str,
                                                    "problem": str, "action": str, "item": str})
    table = table.sort_values(["file", "line"], kind="stable").reset_index(drop=True)  # as the files read
    if len(table) and getattr(cfg.audit, "on_invalid", "report") == "error":
        raise RatingsError(table)
    return long, table
