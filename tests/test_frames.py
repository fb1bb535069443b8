"""Exact Parquet round trip of the engine's internal tables (discbias.frames): no pickles."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from discbias.frames import identical, read_frame, write_frame


def _rt(df, tmp_path):
    p = write_frame(df, tmp_path / "t.parquet")
    return read_frame(p)


CASES = {
    "numbers": pd.DataFrame({"i": [1, 2, 3], "f": [0.1, np.nan, -0.0], "f32": np.array([1.5, 2, 3], "float32"),
                             "b": [True, False, True], "u8": np.array([1, 2, 255], "uint8")}),
    "object strings with None and NaN": pd.DataFrame({"s": pd.Series(["a", None, np.nan], dtype=object)}),
    "object strings with pd.NA": pd.DataFrame({"s": pd.Series(["a", pd.NA, ""], dtype=object)}),
    "pandas str dtype": pd.DataFrame({"s": pd.Series(["a", None, "c"], dtype="str")}),
    "mixed object": pd.DataFrame({"m": pd.Series(["x", 1, 2.5, True, None, np.nan, np.int64(4), np.float64(0.1)],
                                                 dtype=object)}),
    "lists and dicts": pd.DataFrame({"l": pd.Series([[1, "a"], {"k": (1, 2.0)}, None], dtype=object)}),
    "categorical": pd.DataFrame({"c": pd.Categorical(["b", "a", None], categories=["b", "a", "z"], ordered=True),
                                 "ci": pd.Categorical([3, 1, 3])}),
    "nullable": pd.DataFrame({"I": pd.array([1, None, 3], dtype="Int64"), "B": pd.array([True, None, False],
                                                                                         dtype="boolean")}),
    "datetimes": pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None, "2024-03-01T12:00:00"], format="ISO8601")}),
    "column order and odd labels": pd.DataFrame([[1, 2, 3]], columns=["z", 0, "a"]),
    "duplicate labels": pd.DataFrame([[1, 2]], columns=["a", "a"]),
    "index": pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index(["r1", "r2"], name="row")),
    "multiindex": pd.DataFrame({"x": [1.0, 2.0]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)],
                                                                                  names=["k", "n"])),
    "range index offset": pd.DataFrame({"x": [1.0, 2.0]}, index=pd.RangeIndex(5, 7)),
    "empty with columns": pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype="float64")}),
    "no columns": pd.DataFrame(index=pd.RangeIndex(3)),
    "big int and inf": pd.DataFrame({"o": pd.Series([2 ** 70, float("inf"), -float("inf")], dtype=object)}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_is_exact(name, tmp_path):
    df = CASES[name]
    back = _rt(df, tmp_path)
    assert identical(df, back), (name, df.dtypes.tolist(), back.dtypes.tolist(), df, back)
    assert back.to_csv(index=False) == df.to_csv(index=False)


def test_none_and_nan_stay_apart(tmp_path):
    df = CASES["object strings with None and NaN"]
    back = _rt(df, tmp_path)
    assert back["s"].iloc[1] is None and isinstance(back["s"].iloc[2], float) and np.isnan(back["s"].iloc[2])
    assert back["s"].dtype == object


def test_attrs_survive(tmp_path):
    df = pd.DataFrame({"x": [1]})
    df.attrs["n_computed"] = 3
    assert _rt(df, tmp_path).attrs == {"n_computed": 3}


def test_identical_sees_differences():
    a = pd.DataFrame({"x": [1.0, 2.0]})
    assert not identical(a, a.astype("float32"))
    assert not identical(a, a.assign(x=[1.0, 2.0 + 1e-15]))
    assert not identical(a, pd.DataFrame({"x": [1.0, 2.0]}, index=[1, 2]))
    assert not identical(pd.DataFrame({"x": [0.0]}), pd.DataFrame({"x": [-0.0]}))
    assert not identical(pd.DataFrame({"a": [1], "b": [2]}), pd.DataFrame({"b": [2], "a": [1]}))


def test_an_unknown_object_is_an_error_naming_the_column(tmp_path):
    df = pd.DataFrame({"bad": pd.Series([object()], dtype=object)})
    with pytest.raises(TypeError, match="column 'bad'"):
        write_frame(df, tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()


def test_the_file_is_ordinary_parquet(tmp_path):
    p = write_frame(pd.DataFrame({"x": [1.5], "s": pd.Series(["a"], dtype=object)}), tmp_path / "t.parquet")
    t = pq.read_table(p)
    assert t.column_names == ["x", "s"] and t.column("x").to_pylist() == [1.5]
    assert pd.read_parquet(p)["s"].tolist() == ["a"]


def test_plain_parquet_is_read_as_pandas_reads_it(tmp_path):
    p = tmp_path / "plain.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(p)
    assert read_frame(p)["x"].tolist() == [1, 2]
