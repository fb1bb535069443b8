"""A content-keyed cache of model fits (``build/cache/fits/``).

A fit is stored under a key made of

* the **data** it reads: only the columns it uses (``columns=``), sorted by name, each hashed with
  its name, dtype kind and values in row order (NaN and ``-0.0`` canonicalised; the index is not
  part of the key), so adding an unrelated column to a table, or reordering the columns, does not
  refit, while changing one value of a used column does;
* its **specification and sampler settings**: every other argument of the call (formula,
  predictors, priors' spec, parametrization, model id, and the :class:`~discbias.stats.bayes.SamplerSettings`
  with draws, tune, chains, cores, target_accept, seed, init and sampler), canonicalised as JSON;
* the **code that fits it**: the engine's code version of the fitting function (the source of its
  module, e.g. ``stats/bayes.py``, and of every package module it imports, as for the engine's
  steps), plus the installed versions of the libraries that compute the fit (:data:`FIT_LIBRARIES`).

Why a hash of the module's source rather than an explicit version constant per fit function: a
constant has to be bumped by hand, and forgetting it serves a stale fit silently; a source hash
cannot be forgotten. Its cost is that any edit to the module (a docstring included) refits that
module's fits once, which is the safe direction. Library versions are part of the key because a
new PyMC, nutpie or NumPy changes the draws.

An entry is a folder ``fits/<k[:2]>/<k>/`` holding ``meta.json`` (the key's parts, the parts of
the stored value with their sha256, the fit's wall-clock seconds) and one file per part of the
returned value: DataFrames as Parquet (exact round trip of floats), ArviZ ``InferenceData`` as
netCDF (the draws), ``None`` as nothing. It is written to a temporary folder and renamed into
place, so a crash never leaves a half-written entry under the key. ``meta.json`` carries a keyed
MAC (HMAC-SHA256, :mod:`discbias.integrity`; the key lives outside the build, in the user's cache
directory), so an entry rewritten with recomputed sha256s, or copied from another machine, is
detected; part files are plain names inside the entry's folder. A read checks the MAC and every
part's sha256 first: an entry that is unreadable, corrupt or stored under another key is reported (a
warning appended to the fit's ``warnings`` column and a line on stderr), removed, and the model
is refitted; a corrupt entry never crashes the run and never returns something else.

Every lookup appends one line to ``fits/log.jsonl`` (time, function, model, key, status ``hit``,
``miss`` or ``corrupt``, seconds): the benchmark and ``discbias fit`` counts read it.
Set ``DISCBIAS_NO_FIT_CACHE=1`` to fit everything afresh (nothing is read or written).

Examples
--------
>>> import tempfile
>>> import numpy as np, pandas as pd
>>> calls = []
>>> def mean_fit(df, y, *, model):
...     calls.append(model)
...     return pd.DataFrame({"model": [model], "estimate": [df[y].mean()], "warnings": [""]})
>>> cache = FitCache(tempfile.mkdtemp())
>>> d = pd.DataFrame({"y": [1.0, 2.0, 3.0], "other": ["a", "b", "c"]})
>>> cache.fit(mean_fit, d, "y", model="m", columns=["y"])["estimate"].item()
2.0
>>> _ = cache.fit(mean_fit, d.assign(other="z"), "y", model="m", columns=["y"])  # unused column changed
>>> _ = cache.fit(mean_fit, d.assign(y=[1.0, 2.0, 4.0]), "y", model="m", columns=["y"])  # one value changed
>>> len(calls), [e["status"] for e in cache.events]
(2, ['miss', 'hit', 'miss'])
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import importlib.metadata as md
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

#: Bumped when the layout of an entry or the key's recipe changes (every entry is then refitted).
SCHEMA = 2  # 2: meta.json carries a keyed MAC (discbias.integrity)
#: Libraries whose installed versions are part of every key.
FIT_LIBRARIES = ("numpy", "scipy", "pandas", "statsmodels", "scikit-learn", "pymc", "pytensor", "nutpie", "arviz")
#: Environment variable that switches the cache off.
DISABLE_ENV = "DISCBIAS_NO_FIT_CACHE"


class FitCacheError(RuntimeError):
    """A fit cache entry could not be read (the message says why); the caller refits."""


def _log(msg: str) -> None:
    logging.getLogger(__name__).warning(msg.removeprefix("WARNING: "))


# ----------------------------------------------------------------------------------------- key
def data_digest(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """sha256 of the used columns of a table: names, dtype kinds and values in row order.

    Columns are taken in sorted order; numbers as float64 with every NaN the same and ``-0.0`` as
    ``0.0`` (so ``int`` and ``float`` columns with equal values hash alike); anything else as
    text with missing values marked. The index is not hashed.

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1.0, float("nan")], "g": ["u", None]})
    >>> data_digest(a) == data_digest(a[["g", "x"]].set_axis([5, 6]))
    True
    >>> data_digest(a, ["x"]) == data_digest(a.assign(g="other"), ["x"])
    True
    >>> data_digest(a, ["x"]) == data_digest(a.assign(x=[1.5, float("nan")]), ["x"])
    False
    """
    cols = sorted(df.columns if columns is None else columns)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"fit cache: columns {missing} are not in the data (columns: {list(df.columns)})")
    h = hashlib.sha256(f"rows={len(df)}".encode())
    for c in cols:
        s = df[c]
        h.update(b"\x00col\x00" + str(c).encode())
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            v = pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan).copy()
            v[np.isnan(v)] = np.nan
            v[v == 0] = 0.0
            h.update(b"num" + np.ascontiguousarray(v).tobytes())
        else:
            h.update(b"obj")
            for x in s.astype(object).tolist():
                h.update(b"\x01" if x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA
                         else b"\x02" + str(x).encode() + b"\x03")
    return h.hexdigest()


def _canon(x: Any) -> Any:
    """A JSON-able, order-stable form of an argument; anything unknown is an error."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {"__dataclass__": type(x).__qualname__, **{k: _canon(v) for k, v in dataclasses.asdict(x).items()}}
    if isinstance(x, dict):
        return {str(k): _canon(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
    if isinstance(x, (list, tuple)):
        return [_canon(v) for v in x]
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    raise TypeError(f"fit cache: cannot make a key from an argument of type {type(x).__name__} ({x!r:.80}); "
                    "pass data as the `data` argument and settings as plain values or dataclasses")


def _file_sha(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.lru_cache(maxsize=None)
def _library_versions() -> tuple:
    out = []
    for lib in FIT_LIBRARIES:
        try:
            out.append((lib, md.version(lib)))
        except md.PackageNotFoundError:
            out.append((lib, None))
    return tuple(out)


def code_version(func: Callable) -> dict:
    """What identifies the code that fits: the engine's code version of the function (the source of
    its module and of every package module that module imports, :func:`discbias.engine.code_version`:
    one rule for steps and fits) and the versions of :data:`FIT_LIBRARIES`.

    Examples
    --------
    >>> from discbias.stats.bayes import rgb_bayes
    >>> sorted(code_version(rgb_bayes))
    ['libraries', 'source']
    """
    from ..engine import code_version as module_version

    return dict(source=module_version(func), libraries=dict(_library_versions()))


# ---------------------------------------------------------------------------------- the cache
class FitCache:
    """Fits stored by content under ``root`` (normally ``build/cache/fits``); see the module docs.

    Parameters
    ----------
    root : path
    enabled : bool, optional
        False fits everything afresh; default: on unless ``DISCBIAS_NO_FIT_CACHE`` is set.

    Attributes
    ----------
    events : list of dict
        One per :meth:`fit` call: function, model, key, status (``hit``, ``miss``, ``corrupt``),
        seconds.
    """

    def __init__(self, root: str | os.PathLike, *, enabled: bool | None = None):
        self.root = Path(root)
        self.enabled = (not os.environ.get(DISABLE_ENV)) if enabled is None else enabled
        self.events: list[dict] = []

    @classmethod
    def for_paths(cls, paths) -> "FitCache":
        """The project's fit cache, ``build/cache/fits`` (:attr:`discbias.paths.ProjectPaths.cache`)."""
        return cls(Path(paths.cache) / "fits")

    # -- keys and locations
    def key(self, func: Callable, data: pd.DataFrame, args: tuple, kwargs: dict, columns: list[str] | None) -> tuple[str, dict]:
        """The key of a call and the document it is the sha256 of."""
        doc = dict(schema=SCHEMA, function=f"{func.__module__}.{func.__qualname__}", code=code_version(func),
                   data=data_digest(data, columns), columns=sorted(data.columns if columns is None else columns),
                   args=_canon(list(args)), kwargs=_canon(kwargs))
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest(), doc

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    # -- the one public operation
    def fit(self, func: Callable, data: pd.DataFrame, *args, columns: list[str] | None = None, **kwargs):
        """``func(data, *args, **kwargs)``, or its stored result when the key matches.

        ``columns`` lists the columns of ``data`` the fit reads (all columns when omitted). The
        result may be a DataFrame, an ``arviz.InferenceData``, ``None`` or a tuple of these.
        """
        model = kwargs.get("model", func.__name__)
        t0 = time.perf_counter()
        if not self.enabled:
            return func(data, *args, **kwargs)
        key, doc = self.key(func, data, args, kwargs, columns)
        where = self.entry(key)
        note = None
        if where.exists():
            try:
                value = self._read(where, key)
                self._event(func, model, key, "hit", t0)
                return value
            except Exception as exc:  # anything wrong with the entry: report it, remove it, refit
                note = f"fit cache entry {where} was unreadable ({type(exc).__name__}: {exc}); refitted"
                _log(f"WARNING: {note}")
                shutil.rmtree(where, ignore_errors=True)
        value = func(data, *args, **kwargs)
        seconds = time.perf_counter() - t0
        try:
            self._write(where, key, doc, value, seconds)
        except TypeError:  # a kind of value the cache cannot store: a programming error, said loudly
            raise
        except Exception as exc:  # a full disk or a column Parquet cannot hold must not lose the fit; say so with it
            msg = f"fit cache: could not store {model} in {where} ({exc})"
            _log(f"WARNING: {msg}")
            value = _with_warning(value, msg)
        if note:
            value = _with_warning(value, note)
        self._event(func, model, key, "corrupt" if note else "miss", t0)
        return value

    # -- storage
    def _write(self, where: Path, key: str, doc: dict, value, seconds: float) -> None:
        parts = value if isinstance(value, tuple) else (value,)
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:12]}-", dir=where.parent))
        try:
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; an entry gets a folder's normal mode
            described = []
            for i, part in enumerate(parts):
                kind, name = _store(part, tmp, i)
                described.append(dict(kind=kind, file=name, sha256=_file_sha(tmp / name) if name else None))
            meta = dict(key=key, key_document=doc, tuple=isinstance(value, tuple), parts=described,
                        fit_seconds=seconds, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            meta["mac"] = _meta_mac(meta)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            if where.exists():  # written meanwhile by another process: keep theirs
                shutil.rmtree(tmp)
                return
            os.rename(tmp, where)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _read(self, where: Path, key: str):
        try:
            meta = json.loads((where / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise FitCacheError(f"meta.json unreadable: {exc}") from None
        if not isinstance(meta, dict):
            raise FitCacheError("meta.json is not a JSON object")
        from ..integrity import verify

        tag = meta.pop("mac", None)
        if not verify(_canonical_meta(meta), tag, purpose="fitcache"):
            raise FitCacheError("meta.json's keyed MAC does not verify (the entry was changed, or written under "
                                "another integrity key, e.g. copied from another machine)")
        if meta.get("key") != key:
            raise FitCacheError(f"stored under key {str(meta.get('key'))[:12]}..., not {key[:12]}...")
        parts = []
        for p in meta["parts"]:
            if p["kind"] not in _KINDS or (p["file"] is None) != (p["kind"] == "none"):
                raise FitCacheError(f"part of unknown kind {p['kind']!r} or without its file")
            if p["file"] is not None:
                if not isinstance(p["file"], str) or Path(p["file"]).name != p["file"] or p["file"] in (".", ".."):
                    raise FitCacheError(f"part file {p['file']!r} is not a file name inside the entry's folder")
                f = where / p["file"]
                if not f.exists():
                    raise FitCacheError(f"{p['file']} is missing")
                if _file_sha(f) != p["sha256"]:
                    raise FitCacheError(f"{p['file']} does not match its sha256 (changed or damaged)")
            parts.append(_load(p["kind"], where, p["file"]))
        return tuple(parts) if meta.get("tuple") else parts[0]

    def _event(self, func, model, key, status, t0) -> None:
        ev = dict(time=time.strftime("%Y-%m-%dT%H:%M:%S"), pid=os.getpid(), function=func.__qualname__,
                  model=str(model), key=key, status=status, seconds=round(time.perf_counter() - t0, 3))
        self.events.append(ev)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / "log.jsonl", "a") as fh:
                fh.write(json.dumps(ev) + "\n")
        except OSError as exc:
            _log(f"WARNING: fit cache: could not append to {self.root / 'log.jsonl'} ({exc})")


_KINDS = ("none", "dataframe", "inferencedata")


def _canonical_meta(meta: dict) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


def _meta_mac(meta: dict) -> str:
    """The keyed MAC of an entry's ``meta.json`` (every field but ``mac``; the parts' sha256 cover their files)."""
    from ..integrity import mac

    return mac(_canonical_meta({k: v for k, v in meta.items() if k != "mac"}), purpose="fitcache")


def _store(part, folder: Path, i: int) -> tuple[str, str | None]:
    if part is None:
        return "none", None
    if isinstance(part, pd.DataFrame):
        name = f"part{i}.parquet"
        part.to_parquet(folder / name, index=True)
        return "dataframe", name
    if type(part).__name__ == "InferenceData":
        name = f"part{i}.nc"
        part.to_netcdf(str(folder / name))
        return "inferencedata", name
    raise TypeError(f"fit cache: cannot store a {type(part).__name__}; supported: DataFrame, InferenceData, None")


def _load(kind: str, folder: Path, name: str | None):
    if kind == "none":
        return None
    if kind == "dataframe":
        return pd.read_parquet(folder / name)
    if kind == "inferencedata":
        return LazyInferenceData(folder / name)
    raise FitCacheError(f"unknown part kind {kind!r}")


class LazyInferenceData:
    """Stored draws, read from their netCDF file (sha256-checked already) on first use.

    The pipeline's call sites keep only the tidy table, so reading a few MB of draws with
    xarray and ArviZ (seconds on a busy machine) is left until something asks for them; any
    attribute of ``arviz.InferenceData`` (``posterior``, ``sample_stats``, ...) works.
    """

    def __init__(self, path: Path):
        self._path = Path(path)
        self._idata = None

    def load(self):
        """The ``arviz.InferenceData`` itself."""
        if self._idata is None:
            import arviz as az

            idata = az.from_netcdf(str(self._path))
            idata.load()
            self._idata = idata
        return self._idata

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)

    def __repr__(self) -> str:
        return f"LazyInferenceData({str(self._path)!r})"


def _with_warning(value, note: str):
    """Append ``note`` to the ``warnings`` column of the first table in ``value``."""
    parts = list(value) if isinstance(value, tuple) else [value]
    for i, p in enumerate(parts):
        if isinstance(p, pd.DataFrame) and "warnings" in p.columns:
            p = p.copy()
            p["warnings"] = [f"{w}; {note}" if isinstance(w, str) and w else note for w in p["warnings"]]
            parts[i] = p
            break
    else:
        _log(f"WARNING: {note} (the result has no warnings column to record it in)")
    return tuple(parts) if isinstance(value, tuple) else parts[0]
