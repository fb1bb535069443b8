"""``discbias plot``: a quick look at a score table (PNG and a terminal summary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError

__all__ = ["plot_scores", "PlotError"]


class PlotError(UserError, ValueError):
    """The score table or a column given to ``discbias plot`` does not exist."""


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise PlotError(f"score table {path} does not exist")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path)
    raise PlotError(f"{path}: give a .csv or .parquet table")


def plot_scores(scores, *, x: str | None = None, by: str | None = None, y: str = "score", out=None) -> str:
    """Plot ``y`` against ``x`` (coloured by ``by``) or by group; write a PNG; return a text summary.

    The summary has one line per group: n, mean and SD of ``y`` and, with ``x``, the Pearson
    correlation and least-squares slope of ``y`` on ``x``.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> pd.DataFrame({"score": rng.normal(size=30), "luma_709": rng.uniform(size=30),
    ...               "group": ["a", "b", "c"] * 10}).to_csv(d / "s.csv", index=False)
    >>> print(plot_scores(d / "s.csv", x="luma_709", by="group").splitlines()[1])  # doctest: +ELLIPSIS
    group      n      mean  ...
    >>> (d / "s.luma_709.png").exists()
    True
    """
    from .figures import score_by_group, score_vs_measures

    path = Path(scores)
    df = _read(path)
    for role, c in (("--y", y), ("--x", x), ("--by", by)):
        if c is not None and c not in df.columns:
            raise PlotError(f"{path.name} has no column {c!r} (given as {role}); its columns are "
                             f"{', '.join(map(str, df.columns))}")
    if x is None and by is None:
        raise PlotError("give --x MEASURE, --by GROUP, or both")
    out = Path(out) if out else path.with_name(f"{path.stem}.{x or by}.png")
    if x is not None:
        score_vs_measures(df, [x], out, by=by, y=y)
    else:
        score_by_group(df, by, out, y=y)
    groups = [(None, df)] if by is None else [(g, df[df[by] == g]) for g in sorted(df[by].dropna().unique(), key=str)]
    head = f"{by or 'all':<8} {'n':>4} {'mean':>9} {'sd':>9}" + (f" {'r':>7} {'slope':>9}" if x else "")
    lines = [f"# {y} in {path.name}" + (f" against {x}" if x else "") + (f" by {by}" if by else ""), head]
    for g, d in groups:
        v = pd.to_numeric(d[y], errors="coerce")
        line = f"{'all' if g is None else str(g):<8} {int(v.notna().sum()):>4} {v.mean():>9.4g} {v.std():>9.4g}"
        if x:
            xy = pd.DataFrame({"x": pd.to_numeric(d[x], errors="coerce"), "y": v}).dropna()
            if len(xy) > 2 and xy["x"].std() > 0:
                r = float(np.corrcoef(xy["x"], xy["y"])[0, 1])
                b = float(np.polyfit(xy["x"], xy["y"], 1)[0])
                line += f" {r:>7.3f} {b:>9.4g}"
            else:
                line += f" {'n/a':>7} {'n/a':>9}"
        lines.append(line)
    lines.append(f"wrote {out}")
    return "\n".join(lines)
