"""Partial correlations (pingouin) and Holm adjustment, in the tidy results schema."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import result_frame


def holm(p: pd.Series | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (missing values stay missing).

    Examples
    --------
    >>> holm(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        from statsmodels.stats.multitest import multipletests

        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def add_holm(df: pd.DataFrame, family: str, *, mask: pd.Series | None = None) -> pd.DataFrame:
    """Add ``p_holm`` and ``holm_family`` columns, adjusting the rows in ``mask`` as one family.

    Examples
    --------
    >>> add_holm(pd.DataFrame({"p_value": [0.01, 0.04]}), "demo")["p_holm"].tolist()
    [0.02, 0.04]
    """
    df = df.copy()
    if "p_holm" not in df:
        df["p_holm"] = np.nan
        df["holm_family"] = ""
    m = pd.Series(True, index=df.index) if mask is None else mask.reindex(df.index, fill_value=False)
    m = m & df["p_value"].notna()
    df.loc[m, "p_holm"] = holm(df.loc[m, "p_value"].to_numpy())
    df.loc[m, "holm_family"] = f"Holm within {family} ({int(m.sum())} tests)"
    return df


def partial_correlations(df: pd.DataFrame, y: str, xs: list[str], covar: list[str], *, model: str,
                         method: str = "pearson") -> pd.DataFrame:
    """Partial correlation of ``y`` with each ``x`` controlling for ``covar``, Holm-adjusted.

    Parameters
    ----------
    df : DataFrame
    y : str
    xs : list of str
    covar : list of str
    model : str
    method : str
        ``"pearson"`` or ``"spearman"`` (pingouin).

    Returns
    -------
    DataFrame
        One row per ``x`` (``term``), ``estimate`` = partial r with pingouin's 95% CI and p,
        ``p_holm`` adjusted within the ``xs`` family.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"c": rng.normal(size=200)}); d["x"] = d.c + rng.normal(size=200)
    >>> d["y"] = d.x + d.c + rng.normal(size=200)
    >>> t = partial_correlations(d, "y", ["x"], ["c"], model="m")
    >>> bool(t.loc[0, "estimate"] > 0.4)
    True
    """
    import pingouin as pg

    rows = []
    for x in xs:
        d = df[[y, x, *covar]].apply(pd.to_numeric, errors="coerce")
        bad = d.isna().any(axis=1)
        d = d[~bad]
        r = pg.partial_corr(data=d, x=x, y=y, covar=list(covar), method=method).iloc[0]
        lo, hi = r["CI95"] if "CI95" in r else r["CI95%"]
        rows.append(dict(model=model, term=x, estimate=float(r["r"]), p_value=float(r["p-val"] if "p-val" in r else r["p_val"]), conf_low=float(lo),
                         conf_high=float(hi), conf_level=0.95, n_obs=int(r["n"]), converged=True,
                         method=f"{method} partial correlation with {y}, controlling for the covariates listed (pingouin)",
                         warnings=[f"{int(bad.sum())} row{'' if int(bad.sum()) == 1 else 's'} dropped for missing values"] if bad.any() else [],
                         covariates=", ".join(covar)))
    out = result_frame(rows)
    return add_holm(out, f"{model} ({len(xs)} axes)")
