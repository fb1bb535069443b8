"""Row-level validation shared by the study adapters.

Every problem found in a released file becomes one :class:`DataIssue` naming the file, the row
(1-based line number in the CSV, header = line 1), the column, the value, the problem and what
was done. With ``on_invalid="error"`` the adapter raises :class:`DataValidationError` listing
them; with ``"report"`` the offending value is set to missing (the row is kept and flagged) and
the issues are returned so the pipeline writes them to ``build/results/data_issues.csv`` and the
paper shows them.

A file that is not a well-formed table (a row with more or fewer fields than the header, a quote
that is never closed, a required column missing) cannot be read row by row at all: it raises one
:class:`CsvFormatError` naming the file and the physical line, which the command line prints as
one line (exit status 2). Line numbers are always physical lines of the file: blank lines and
line breaks inside quoted fields count (:func:`read_released_csv`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from ..errors import UserError

ISSUE_COLUMNS = ["file", "line", "column", "value", "problem", "action"]


@dataclass(frozen=True)
class DataIssue:
    """One problem in one cell of a released file."""

    file: str
    line: int
    column: str
    value: str
    problem: str
    action: str


#: Cells read as missing: pandas' default missing-value strings (what ``pd.read_csv`` used).
NA_STRINGS = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])


class DataError(UserError, ValueError):
    """A released file cannot be used as it is (base class of the two errors below)."""


class CsvFormatError(DataError):
    """A file is not a well-formed table: the message names the file, the physical line and the fix.

    Attributes
    ----------
    file : str
    line : int
        1-based physical line (the header is line 1 when the file has no leading blank lines).
    problem : str
    """

    def __init__(self, file: str, line: int, problem: str, fix: str):
        self.file, self.line, self.problem = file, int(line), problem
        super().__init__(f"{file} line {line}: {problem}. {fix}")


class EmptyInputError(CsvFormatError):
    """A file has a header but no data rows (or no row survived validation): a data issue. The
    measure step that reads it records the issue and marks its tables removed; the analyses that
    need them are not run, each with the reason (:func:`discbias.stages.removed_table`), and the
    others go on."""


class DataValidationError(DataError):
    """A released file has values the adapter will not guess about."""

    def __init__(self, issues: list[DataIssue]):
        self.issues = issues
        head = "\n".join(
            f"- {i.file} line {i.line}, column '{i.column}': {i.problem} (value {i.value!r})" for i in issues[:20]
        )
        more = f"\n... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(
            f"{len(issues)} invalid value(s):\n{head}{more}\n"
            "Fix the file, or run with on_invalid='report' to keep the rows, set these values to "
            "missing and list them in build/results/data_issues.csv."
        )


class IssueLog:
    """Collects :class:`DataIssue` rows for one adapter call.

    Examples
    --------
    >>> log = IssueLog("x.csv")
    >>> log.add(3, "score", "abc", "non-numeric score", "set to missing")
    >>> log.frame().shape
    (1, 6)
    """

    def __init__(self, file: str, lines: np.ndarray | None = None):
        self.file = file
        self.lines = lines
        self.issues: list[DataIssue] = []

    def line(self, index) -> int:
        """Physical line of the row with RangeIndex label ``index`` (``index + 2`` without a line map)."""
        return int(self.lines[index]) if self.lines is not None else int(index) + 2

    def add(self, line: int, column: str, value, problem: str, action: str) -> None:
        self.issues.append(DataIssue(self.file, int(line), column, str(value), problem, action))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(i) for i in self.issues], columns=ISSUE_COLUMNS)

    def finish(self, on_invalid: str) -> pd.DataFrame:
        if on_invalid not in ("error", "report"):
            raise ValueError(f"on_invalid must be 'error' or 'report', not {on_invalid!r}")
        if self.issues and on_invalid == "error":
            raise DataValidationError(self.issues)
        return self.frame()


def _display_name(source) -> str:
    return Path(getattr(source, "name", None) or str(source)).name


def read_released_csv(source, *, name: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a released CSV as text, checking its shape; return the table and each row's line.

    Every cell is kept as the text in the file (nothing is coerced before validation); the
    strings in :data:`NA_STRINGS` become missing, as with ``pandas.read_csv``. An empty header
    name becomes ``Unnamed: <position>`` (pandas' name for the index column pandas wrote).

    Parameters
    ----------
    source : path or text file object
        The CSV (a file object's ``name`` is used in messages when it has one).
    name : str, optional
        File name for messages (default: the path's or file object's name).

    Returns
    -------
    (DataFrame, numpy.ndarray)
        The table with a RangeIndex, and the 1-based physical line where each row starts
        (blank lines and line breaks inside quoted fields are counted, so a line number in an
        issue is the line an editor shows).

    Raises
    ------
    CsvFormatError
        A row with more or fewer fields than the header, a quote that is never closed, other
        malformed quoting, text that is not UTF-8, duplicate or no header names; naming the file
        and the line.

    Examples
    --------
    >>> df, lines = read_released_csv(io.StringIO("a,b\\n1,2\\n\\n3,NA\\n"), name="x.csv")
    >>> df["b"].tolist(), lines.tolist()
    (['2', nan], [2, 4])
    """
    name = name or _display_name(source)
    fix = "Correct the file, or use the released file (see the configuration's url and sha256)"
    fh = source if hasattr(source, "read") else open(source, newline="", encoding="utf-8-sig")
    header, header_line, records, lines = None, 0, [], []
    prev = 0
    try:
        reader = csv.reader(fh, strict=True)
        try:
            for rec in reader:
                start, prev = prev + 1, reader.line_num
                if not rec:
                    continue  # a blank line: counted, not a row
                if header is None:
                    header, header_line = rec, start
                    continue
                if len(rec) != len(header):
                    raise CsvFormatError(name, start, f"{len(rec)} fields, the header has {len(header)}",
                                         fix + "; a value containing a comma must be quoted")
                records.append(rec)
                lines.append(start)
        except csv.Error as exc:
            start = prev + 1
            if "unexpected end of data" in str(exc):
                raise CsvFormatError(name, start, "unterminated quote (a field opened with \" is never closed)",
                                     fix) from None
            raise CsvFormatError(name, start, f"malformed CSV ({exc})", fix) from None
        except UnicodeDecodeError as exc:
            raise CsvFormatError(name, prev + 1, f"not UTF-8 text ({exc.reason})",
                                 "Save the file as UTF-8") from None
    finally:
        if fh is not source:
            fh.close()
    if header is None:
        raise CsvFormatError(name, 1, "no header line (the file is empty)", fix)
    columns = [c if c != "" else f"Unnamed: {i}" for i, c in enumerate(header)]
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise CsvFormatError(name, header_line, f"duplicate column name(s) {dup}", "Rename the columns")
    df = pd.DataFrame(records, columns=columns, dtype=object)
    if len(df):
        df = df.mask(df.isin(NA_STRINGS))
    return df, np.asarray(lines, dtype=int)


def require_columns(df: pd.DataFrame, columns, file: str, hint: str = "") -> None:
    """Raise :class:`CsvFormatError` (line 1, the header) if any of ``columns`` is missing, or
    :class:`EmptyInputError` (line 2) if the table has no rows: a header-only file is a data issue
    named here (the analyses that need it are removed), never an error later inside a fit.

    Examples
    --------
    >>> require_columns(pd.DataFrame(columns=["a"]), ["a", "image"], "x.csv")
    Traceback (most recent call last):
    ...
    discbias.studies.validation.CsvFormatError: x.csv line 1: missing column(s) ['image']; the header has ['a']. Use the released file (or a file with the same columns)
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        shown = list(df.columns)[:20]
        more = f" and {len(df.columns) - 20} more" if len(df.columns) > 20 else ""
        raise CsvFormatError(file, 1, f"missing column(s) {missing}; the header has {shown}{more}",
                             hint or "Use the released file (or a file with the same columns)")
    if len(df) == 0:  # every analysis of the file would fail later, inside a fit: a data issue, named here
        raise EmptyInputError(file, 2, "the file has a header but no data rows",
                              hint or "Use the released file (or a file with the same columns)")


def numeric_column(df: pd.DataFrame, column: str, log: IssueLog, *, what: str,
                   low: float | None = None, high: float | None = None, required: bool = False) -> pd.Series:
    """Parse ``df[column]`` as float; log invalid values and set them missing.

    Logged: non-numeric text, values that are not finite (``inf``, ``-inf``, or a number too
    large for a float such as ``1e309``), values outside ``[low, high]`` and, when ``required``,
    missing cells (empty, ``NA``, ``NaN``). Otherwise missing cells stay missing and are not
    issues (an unused rater slot, for example).

    Examples
    --------
    >>> log = IssueLog("f.csv")
    >>> s = numeric_column(pd.DataFrame({"r": ["1", "9", "x", None, "inf"]}), "r", log, what="rating", low=1, high=7)
    >>> s.tolist()[:1], [i.problem for i in log.issues]
    ([1.0], ['non-numeric rating', 'rating is not finite (inf, -inf or too large for a float)', 'rating outside 1-7'])
    """
    raw = df[column]
    parsed = pd.to_numeric(raw, errors="coerce").astype(float)
    empty = raw.isna() | (raw.astype(str).str.strip() == "")
    bad_parse = parsed.isna() & ~empty & ~raw.astype(str).str.strip().isin(NA_STRINGS)
    missing = parsed.isna() & ~bad_parse
    for idx in raw.index[bad_parse]:
        log.add(log.line(idx), column, raw.loc[idx], f"non-numeric {what}", "set to missing")
    non_finite = pd.Series(np.isinf(parsed.to_numpy()), index=raw.index)
    for idx in raw.index[non_finite]:
        log.add(log.line(idx), column, raw.loc[idx], f"{what} is not finite (inf, -inf or too large for a float)",
                "set to missing")
    if required:
        for idx in raw.index[missing]:
            log.add(log.line(idx), column, "" if pd.isna(raw.loc[idx]) else raw.loc[idx],
                    f"missing {what} (empty, NA or not a number)", "row flagged invalid")
    out_of_range = pd.Series(False, index=raw.index)
    if low is not None:
        out_of_range |= parsed < low
    if high is not None:
        out_of_range |= parsed > high
    out_of_range &= ~non_finite
    for idx in raw.index[out_of_range]:
        log.add(log.line(idx), column, raw.loc[idx], f"{what} outside {low}-{high}", "set to missing")
    return parsed.mask(out_of_range | bad_parse | non_finite)


def categorical_column(df: pd.DataFrame, column: str, allowed: dict[str, str], log: IssueLog, *,
                       what: str) -> pd.Series:
    """Map raw labels through ``allowed`` (raw -> canonical); unknown labels are logged, set missing.

    Examples
    --------
    >>> log = IssueLog("f.csv")
    >>> categorical_column(pd.DataFrame({"g": ["men", "boys"]}), "g", {"men": "men"}, log, what="gender").tolist()
    ['men', nan]
    """
    raw = df[column]
    mapped = raw.map(allowed)
    for idx in raw.index[mapped.isna()]:
        log.add(log.line(idx), column, raw.loc[idx], f"unknown {what} (expected one of {sorted(set(allowed))})",
                "set to missing")
    return mapped.astype(object)


def duplicated_ids(df: pd.DataFrame, column: str, log: IssueLog) -> pd.Series:
    """Flag every row whose id occurs more than once; log each such row."""
    dup = df[column].duplicated(keep=False) & df[column].notna()
    for idx in df.index[dup]:
        log.add(log.line(idx), column, df.loc[idx, column], "duplicate image id", "row flagged invalid")
    return dup
