"""Exact Parquet files for the engine's internal tables: a frame read back is the frame written.

Plain :meth:`pandas.DataFrame.to_parquet` loses some of what a step wrote: an ``object`` column
of strings comes back as pandas' ``str`` dtype, ``None`` and ``NaN`` both come back as ``NaN``,
an ``object`` column mixing strings and numbers cannot be written at all, and column labels
must be unique strings. :func:`write_frame` keeps all of it, without pickles (a pickle read
back is code run):

* columns of numeric, boolean, datetime, categorical, nullable (``Int64``, ``boolean``) and
  ``str`` dtypes are stored natively (pandas' own Parquet metadata restores their dtypes);
* an ``object`` column of strings and missing values is stored as a string column, with the
  rows whose missing value is ``NaN`` or ``pd.NA`` (not ``None``) listed in the file's metadata;
* any other ``object`` column (mixed types, lists, dicts, numpy scalars) is stored as a column
  of tagged JSON strings (:func:`encode_value`), which restores every value's type; a value of
  a type it does not know (an arbitrary object) is an error naming the column and the type;
* column labels that are not unique strings, a non-default index and ``DataFrame.attrs`` are
  recorded in the metadata too.

The Parquet file stays an ordinary one: ``pandas.read_parquet`` or any Parquet reader opens
it (a tagged-JSON column then reads as strings). :func:`read_frame` undoes the encoding, and
:func:`identical` tells whether two frames are the same value for value (``None`` is not
``NaN``; dtypes, column order and the index count).

Examples
--------
>>> import tempfile, pathlib
>>> import numpy as np
>>> df = pd.DataFrame({"s": pd.Series(["a", None, np.nan], dtype=object),
...                    "mixed": pd.Series(["x", 1, 2.5], dtype=object),
...                    "c": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
...                    "x": [1.0, np.nan, -0.0]})
>>> p = write_frame(df, pathlib.Path(tempfile.mkdtemp()) / "t.parquet")
>>> back = read_frame(p)
>>> identical(df, back)
True
>>> back["s"].tolist(), back["mixed"].tolist()
(['a', None, nan], ['x', 1, 2.5])
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["write_frame", "read_frame", "frame_bytes", "identical", "encode_value", "decode_value", "FORMAT"]

#: The metadata key (in the Parquet schema) and the version of this encoding.
META_KEY = b"discbias.frame"
FORMAT = 1

_INDEX_PREFIX = "__discbias_index_"


# --------------------------------------------------------------------------------------------
# tagged JSON for the values of object columns
# --------------------------------------------------------------------------------------------

def encode_value(v: Any, column: str = "?") -> Any:
    """A JSON-able form of one value that :func:`decode_value` turns back into the same value and type.

    Strings, ``None`` and Python booleans are themselves; every other value is a one-key dict
    naming its type (``{"float": "nan"}``, ``{"int": "3"}``, ``{"np.float64": "0.1"}``, ...).

    Examples
    --------
    >>> encode_value(float("nan")), encode_value(np.int64(3)), decode_value(encode_value((1, "a")))
    ({'float': 'nan'}, {'np.int64': '3'}, (1, 'a'))
    """
    if v is None or isinstance(v, (str, bool)) and type(v) in (str, bool):
        return v
    if v is pd.NA:
        return {"NA": 1}
    if v is pd.NaT:
        return {"NaT": 1}
    if type(v) is int:
        return {"int": str(v)}
    if type(v) is float:
        return {"float": repr(v)}
    if isinstance(v, np.generic) and type(v).__name__ in _NUMPY_SCALARS:
        return {f"np.{type(v).__name__}": repr(v.item()) if isinstance(v, np.floating) else str(v.item())}
    if isinstance(v, str):  # a str subclass
        return str(v)
    if type(v) is list:
        return {"list": [encode_value(x, column) for x in v]}
    if type(v) is tuple:
        return {"tuple": [encode_value(x, column) for x in v]}
    if type(v) is dict:
        return {"dict": [[encode_value(k, column), encode_value(x, column)] for k, x in v.items()]}
    if isinstance(v, pd.Timestamp):
        return {"Timestamp": v.isoformat()}
    raise TypeError(f"column '{column}' holds a value of type {type(v).__module__}.{type(v).__qualname__} ({v!r:.60}), "
                    "which an internal table cannot store exactly; convert it to a string, a number or a list "
                    "before writing the table")


_NUMPY_SCALARS = {"float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16",
                  "uint8", "bool", "bool_", "str_"}


def decode_value(v: Any) -> Any:
    """The value :func:`encode_value` encoded (see there)."""
    if not isinstance(v, dict):
        return v
    (tag, x), = v.items()
    if tag == "NA":
        return pd.NA
    if tag == "NaT":
        return pd.NaT
    if tag == "int":
        return int(x)
    if tag == "float":
        return float(x)
    if tag == "list":
        return [decode_value(e) for e in x]
    if tag == "tuple":
        return tuple(decode_value(e) for e in x)
    if tag == "dict":
        return {decode_value(k): decode_value(e) for k, e in x}
    if tag == "Timestamp":
        return pd.Timestamp(x)
    if tag.startswith("np."):
        name = tag[3:]
        if name in ("bool", "bool_"):
            return np.bool_(x == "True")
        if name == "str_":
            return np.str_(x)
        return getattr(np, name)(x)
    raise ValueError(f"unknown tag {tag!r} in an internal table (written by a newer discbias?)")


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


# --------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------

def _default_index(idx: pd.Index) -> bool:
    return (isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1 and idx.name is None)


def _encode(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    meta: dict[str, Any] = {"format": FORMAT, "columns": {}, "rows": int(len(df))}
    labels = list(df.columns)
    if isinstance(df.columns, pd.MultiIndex) or not all(type(c) is str for c in labels) \
            or len(set(labels)) != len(labels) or any(c.startswith(_INDEX_PREFIX) for c in labels):
        meta["labels"] = [encode_value(c) for c in labels]
        if isinstance(df.columns, pd.MultiIndex):
            meta["labels_multi"] = list(df.columns.names)
        names = [f"c{i}" for i in range(len(labels))]
    else:
        names = labels
    if df.columns.name is not None:
        meta["columns_name"] = encode_value(df.columns.name)
    cols: dict[str, pd.Series] = {}
    if not _default_index(df.index):
        idx = df.index.to_frame(index=False)
        meta["index"] = dict(names=[encode_value(n) for n in df.index.names], n=idx.shape[1],
                             range=[int(df.index.start), int(df.index.stop), int(df.index.step)]
                             if isinstance(df.index, pd.RangeIndex) else None)
        for i in range(idx.shape[1]):
            cols[f"{_INDEX_PREFIX}{i}"] = idx.iloc[:, i].reset_index(drop=True)
    for name, (_, s) in zip(names, df.items()):
        cols[name] = s.reset_index(drop=True)
    out = {}
    for name, s in cols.items():
        if isinstance(s.dtype, pd.CategoricalDtype):  # pyarrow may give int categories back as plain ints
            meta["columns"][name] = dict(kind="categorical", ordered=bool(s.dtype.ordered),
                                         categories=[encode_value(c, str(name)) for c in s.dtype.categories.tolist()],
                                         categories_dtype=str(s.dtype.categories.dtype))
            out[name] = s
            continue
        if s.dtype != object:
            out[name] = s
            continue
        values = s.tolist()
        if all(v is None or _is_nan(v) or v is pd.NA or type(v) is str for v in values):
            kinds = {i: ("nan" if _is_nan(v) else "NA") for i, v in enumerate(values) if v is not None and type(v) is not str}
            meta["columns"][name] = dict(kind="strings", missing=[[i, k] for i, k in kinds.items()])
            out[name] = pd.array([v if type(v) is str else None for v in values], dtype=pd.StringDtype("pyarrow"))
        else:
            meta["columns"][name] = dict(kind="json")
            out[name] = pd.array([json.dumps(encode_value(v, str(name)), allow_nan=False) for v in values],
                                 dtype=pd.StringDtype("pyarrow"))
    if df.attrs:
        meta["attrs"] = encode_value(dict(df.attrs), "attrs")
    frame = pd.DataFrame(out, index=pd.RangeIndex(len(df)))
    if frame.shape[1] != len(cols):
        raise ValueError("internal error: columns lost while encoding a table")
    return frame, meta


def frame_bytes(df: pd.DataFrame) -> bytes:
    """The Parquet bytes :func:`write_frame` writes (deterministic for one pyarrow version)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"a table must be a pandas DataFrame, not {type(df).__name__}")
    frame, meta = _encode(df)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    md = dict(table.schema.metadata or {})
    md[META_KEY] = json.dumps(meta, sort_keys=True).encode()
    table = table.replace_schema_metadata(md)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_frame(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` to ``path`` as Parquet that :func:`read_frame` reads back exactly (atomic: temporary file, rename).

    Raises
    ------
    TypeError
        A value of an ``object`` column cannot be stored exactly (the message names the column).
    """
    from .results import _umask_mode

    data = frame_bytes(df)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, _umask_mode())
    os.replace(tmp, path)
    return path


def read_frame(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table :func:`write_frame` wrote (or any Parquet file: one without discbias metadata is read as pandas reads it)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(META_KEY)
    frame = table.to_pandas()
    if raw is None:
        return frame
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: internal table format {meta.get('format')} is not {FORMAT}; rerun the step that "
                         "writes it (delete the file)")
    cols: dict[str, pd.Series] = {}
    for name in frame.columns:
        s = frame[name]
        spec = meta["columns"].get(name)
        if spec is None:
            cols[name] = s
        elif spec["kind"] == "categorical":
            cats = pd.Index([decode_value(c) for c in spec["categories"]], dtype=spec["categories_dtype"])
            cols[name] = s.astype(pd.CategoricalDtype(cats, ordered=spec["ordered"]))
        elif spec["kind"] == "strings":
            values = [v if isinstance(v, str) else None for v in s.tolist()]
            for i, k in spec["missing"]:
                values[i] = np.nan if k == "nan" else pd.NA
            cols[name] = pd.Series(values, dtype=object, name=name)
        else:
            cols[name] = pd.Series([decode_value(json.loads(v)) for v in s.tolist()], dtype=object, name=name)
    index_spec = meta.get("index")
    index_cols = [c for c in cols if c.startswith(_INDEX_PREFIX)] if index_spec else []
    data = [cols[c] for c in cols if c not in index_cols]
    out = pd.concat(data, axis=1) if data else pd.DataFrame(index=pd.RangeIndex(meta["rows"]))
    if len(data) and out.shape[0] != len(frame):
        raise ValueError(f"{path}: rows lost while decoding")
    if "labels" in meta:
        labels = [decode_value(c) for c in meta["labels"]]
        out.columns = (pd.MultiIndex.from_tuples(labels, names=meta.get("labels_multi"))
                       if "labels_multi" in meta else pd.Index(labels, dtype=object if not labels else None))
    if "columns_name" in meta:
        out.columns.name = decode_value(meta["columns_name"])
    if index_spec:
        names = [decode_value(n) for n in index_spec["names"]]
        if index_spec.get("range"):
            idx = pd.RangeIndex(*index_spec["range"], name=names[0])
        elif len(index_cols) == 1:
            idx = pd.Index(cols[index_cols[0]], name=names[0])
        else:
            idx = pd.MultiIndex.from_arrays([cols[c] for c in index_cols], names=names)
        out.index = idx
    if "attrs" in meta:
        out.attrs.update(decode_value(meta["attrs"]))
    return out


# --------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------

def _same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if _is_nan(a):
        return _is_nan(b)
    if isinstance(a, np.floating):
        return bool(np.isnan(a) and np.isnan(b)) or bool(a == b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    if a is pd.NA or a is pd.NaT or a is None:
        return a is b
    return bool(a == b)


def identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True if two frames are the same: labels, index, dtypes and every value (``None`` is not ``NaN``).

    Examples
    --------
    >>> x = pd.DataFrame({"a": pd.Series([None], dtype=object)})
    >>> identical(x, x.copy()), identical(x, pd.DataFrame({"a": pd.Series([np.nan], dtype=object)}))
    (True, False)
    """
    if list(a.columns) != list(b.columns) or type(a.columns) is not type(b.columns) \
            or a.columns.name != b.columns.name:
        return False
    if not a.index.equals(b.index) or type(a.index) is not type(b.index) or list(a.index.names) != list(b.index.names):
        return False
    if a.attrs != b.attrs:
        return False
    for i in range(a.shape[1]):
        x, y = a.iloc[:, i], b.iloc[:, i]
        if x.dtype != y.dtype:
            return False
        if x.dtype == object:
            if not all(_same_value(u, v) for u, v in zip(x.tolist(), y.tolist())):
                return False
        else:
            try:
                pd.testing.assert_series_equal(x, y, check_exact=True, check_names=False, check_index=False)
            except AssertionError:
                return False
            if x.dtype.kind == "f" and not np.array_equal(np.signbit(x.to_numpy()), np.signbit(y.to_numpy())):
                return False
    return True
