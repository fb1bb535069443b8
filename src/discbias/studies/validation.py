"""Row-level validation shared by the study adapters.

Every problem found in a released file becomes one :class:`DataIssue` naming the file, the row
(1-based line number in the CSV, header = line 1), the column, the value, the problem and what
was done. With ``on_invalid="error"`` the adapter raises :class:`DataValidationError` listing
them; with ``"report"`` the offending value is set to missing (the row is kept and flagged) and
the issues are returned so the pipeline writes them to ``build/results/data_issues.csv`` and the
paper shows them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

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


class DataValidationError(ValueError):
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

    def __init__(self, file: str):
        self.file = file
        self.issues: list[DataIssue] = []

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


def csv_line(index: pd.Index) -> np.ndarray:
    """CSV line numbers (header is line 1) of rows read with a default RangeIndex."""
    return np.asarray(index) + 2


def numeric_column(df: pd.DataFrame, column: str, log: IssueLog, *, what: str,
                   low: float | None = None, high: float | None = None) -> pd.Series:
    """Parse ``df[column]`` as float; log non-numeric and out-of-range values and set them missing.

    Missing cells (empty) stay missing and are not issues.

    Examples
    --------
    >>> log = IssueLog("f.csv")
    >>> s = numeric_column(pd.DataFrame({"r": ["1", "9", "x", None]}), "r", log, what="rating", low=1, high=7)
    >>> s.tolist()[:1], len(log.issues)
    ([1.0], 2)
    """
    raw = df[column]
    parsed = pd.to_numeric(raw, errors="coerce").astype(float)
    bad_parse = parsed.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    for idx in raw.index[bad_parse]:
        log.add(idx + 2, column, raw.loc[idx], f"non-numeric {what}", "set to missing")
    out_of_range = pd.Series(False, index=raw.index)
    if low is not None:
        out_of_range |= parsed < low
    if high is not None:
        out_of_range |= parsed > high
    for idx in raw.index[out_of_range]:
        log.add(idx + 2, column, raw.loc[idx], f"{what} outside {low}-{high}", "set to missing")
    return parsed.mask(out_of_range | bad_parse)


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
        log.add(idx + 2, column, raw.loc[idx], f"unknown {what} (expected one of {sorted(set(allowed))})",
                "set to missing")
    return mapped.astype(object)


def duplicated_ids(df: pd.DataFrame, column: str, log: IssueLog) -> pd.Series:
    """Flag every row whose id occurs more than once; log each such row."""
    dup = df[column].duplicated(keep=False) & df[column].notna()
    for idx in df.index[dup]:
        log.add(idx + 2, column, df.loc[idx, column], "duplicate image id", "row flagged invalid")
    return dup
