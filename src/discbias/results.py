"""The tidy results schema every model and test returns (see DESIGN.md).

One row per estimate, with columns :data:`RESULT_COLUMNS`. ``warnings`` is a single string
(``"; "``-joined) so the tables round-trip through CSV; ``converged`` is a boolean.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

RESULT_COLUMNS = [
    "model", "term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high",
    "conf_level", "method", "n_obs", "n_groups", "converged", "warnings",
]


def clean_term(term: str) -> str:
    """A model term as the results tables write it: patsy's treatment marker dropped.

    One spelling for every model (OLS, mixed, quantile, ANOVA), so that terms of different fits
    of the same formula join.

    Examples
    --------
    >>> clean_term("C(race)[T.Black]"), clean_term("red_mean")
    ('C(race)[Black]', 'red_mean')
    """
    return term.replace("[T.", "[")


def result_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Build a results table from row dicts, filling absent schema columns with missing values.

    Extra keys become extra columns after the schema's columns.

    Examples
    --------
    >>> df = result_frame([{"model": "m", "term": "x", "estimate": 1.5}])
    >>> df.columns[:3].tolist(), bool(pd.isna(df.loc[0, "p_value"]))
    (['model', 'term', 'estimate'], True)
    """
    df = pd.DataFrame(list(rows))
    for c in RESULT_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    extra = [c for c in df.columns if c not in RESULT_COLUMNS]
    df = df[RESULT_COLUMNS + extra]
    if "warnings" in df:
        df["warnings"] = df["warnings"].apply(
            lambda w: "; ".join(w) if isinstance(w, (list, tuple)) else ("" if w is None or (isinstance(w, float) and math.isnan(w)) else str(w)))
    return df


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` through a temporary file and an atomic rename.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; atomic_write_text(p, "hi"); p.read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, _umask_mode())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table atomically as CSV (``.csv``) or Parquet (``.parquet``), unrounded.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_table(pd.DataFrame({"a": [1]}), pathlib.Path(tempfile.mkdtemp()) / "t.csv")
    >>> p.read_text().splitlines()[0]
    'a'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        try:
            df.to_parquet(tmp, index=False)
            os.chmod(tmp, _umask_mode())
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    else:
        atomic_write_text(path, df.to_csv(index=False))
    return path


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if x is pd.NA or x is pd.NaT:
        return None
    return x


def write_values(values: dict, path: str | os.PathLike) -> Path:
    """Write the paper's scalar values as JSON (non-finite floats become ``null``).

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.json"
    >>> _ = write_values({"a": np.float64(1.5), "b": float("nan")}, p); json.loads(p.read_text())
    {'a': 1.5, 'b': None}
    """
    atomic_write_text(path, json.dumps(_jsonable(values), indent=2, sort_keys=True))
    return Path(path)
