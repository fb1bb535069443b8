"""Figures of an audit report (and of ``discbias plot``): scores by group, against measures, models.

Every function takes tidy frames and writes SVG files sized at their printed width with the
report's style (:mod:`discbias.report.style`: Okabe-Ito colours, fonts >= 7 pt).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["score_by_group", "score_vs_measures", "model_comparison", "audit_figures"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..report.style import apply_style

    apply_style()
    return plt


def _lab(labels: dict, key: str) -> str:
    from ..report.labels import DEFAULT_LABELS, label

    return label(key, {**DEFAULT_LABELS, **(labels or {})})


def _spec_name(spec: str, labels: dict | None) -> str:
    """A comparison specification as the report's tables name it ("OLS, clustered by Region")."""
    if spec == "main":
        return "Main model"
    if spec == "ols_hc3":
        return "OLS, HC3"
    if spec.startswith("cluster:"):
        return f"OLS, clustered by {_lab(labels, spec.split(':', 1)[1])}"
    return spec


def _levels(s: pd.Series) -> list:
    return sorted(s.dropna().unique(), key=lambda v: (str(type(v)), v))


def score_by_group(df: pd.DataFrame, group: str, out: Path, *, y: str = "score", labels: dict | None = None):
    """Distribution of ``y`` per level of ``group`` (box plot with the points), with n per group.

    Examples
    --------
    >>> import tempfile
    >>> d = pd.DataFrame({"score": [0.1, 0.4, -0.2, 0.3], "group": ["a", "a", "b", "b"]})
    >>> p = score_by_group(d, "group", Path(tempfile.mkdtemp()) / "f.svg"); p.suffix
    '.svg'
    """
    from ..report.style import colours, figsize

    plt = _plt()
    levels = _levels(df[group])
    data = [df.loc[df[group] == g, y].dropna().to_numpy(float) for g in levels]
    fig, ax = plt.subplots(figsize=figsize(0.8, 0.5))
    ax.boxplot(data, showfliers=False, widths=0.5, medianprops=dict(color="black"))
    rng = np.random.default_rng(0)
    col = colours(levels)
    for i, (g, v) in enumerate(zip(levels, data), start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=6, alpha=0.6, color=col[g], linewidths=0)
    ax.set_xticks(range(1, len(levels) + 1), [f"{g}\n(n = {len(v)})" for g, v in zip(levels, data)])
    ax.set_xlabel(_lab(labels, group))
    ax.set_ylabel(_lab(labels, y))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def score_vs_measures(df: pd.DataFrame, measures: list[str], out: Path, *, by: str | None = None, y: str = "score",
                      labels: dict | None = None, ncols: int = 3):
    """``y`` against each measure, one panel per measure, coloured by ``by``, with a least-squares line per group.

    Examples
    --------
    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"score": rng.normal(size=20), "luma_709": rng.uniform(size=20), "g": ["a", "b"] * 10})
    >>> score_vs_measures(d, ["luma_709"], Path(tempfile.mkdtemp()) / "f.svg", by="g").name
    'f.svg'
    """
    from ..report.style import colours, figsize

    plt = _plt()
    n = len(measures)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize(1.0 if ncols > 1 else 0.6, 0.32 * nrows * 3 / max(ncols, 1)
                                                          if ncols > 1 else 0.7), squeeze=False, sharey=True)
    levels = _levels(df[by]) if by else [None]
    col = colours(levels)
    for k, m in enumerate(measures):
        ax = axes[k // ncols][k % ncols]
        for g in levels:
            d = df if g is None else df[df[by] == g]
            d = d[[m, y]].apply(pd.to_numeric, errors="coerce").dropna()
            ax.scatter(d[m], d[y], s=5, alpha=0.6, color=col[g], linewidths=0,
                       label=None if g is None else f"{g} (n = {len(d)})")
            if len(d) > 2 and d[m].std() > 0:
                b = np.polyfit(d[m], d[y], 1)
                xs = np.linspace(d[m].min(), d[m].max(), 20)
                ax.plot(xs, np.polyval(b, xs), color=col[g], lw=1)
        ax.set_xlabel(_lab(labels, m))
        if k % ncols == 0:
            ax.set_ylabel(_lab(labels, y))
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    if by:
        h, lab = axes[0][0].get_legend_handles_labels()
        fig.legend(h, lab, loc="outside lower center", ncols=min(len(levels), 4), title=_lab(labels, by))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def model_comparison(models: pd.DataFrame, model_id: str, out: Path, *, labels: dict | None = None):
    """Estimates and intervals of one model's fixed effects under every specification (a dot-and-whisker plot).

    Examples
    --------
    >>> import tempfile
    >>> m = pd.DataFrame({"model": "m", "term": ["x", "x"], "estimate": [1.0, 1.1], "conf_low": [0.5, 0.4],
    ...                   "conf_high": [1.5, 1.8], "specification": ["main", "ols_hc3"]})
    >>> model_comparison(m, "m", Path(tempfile.mkdtemp()) / "m.svg").name
    'm.svg'
    """
    from ..report.style import colours, figsize

    plt = _plt()
    d = models[(models["model"] == model_id) & ~models["term"].astype(str).str.startswith("sd(")
               & (models["term"] != "Intercept")]
    terms = list(dict.fromkeys(d["term"]))
    specs = list(dict.fromkeys(d["specification"]))
    col = colours(specs)
    fig, ax = plt.subplots(figsize=figsize(0.8, max(0.25, 0.1 + 0.08 * len(terms) * max(1, len(specs)) / 2)))
    step = 0.7 / max(len(specs), 1)
    for j, s in enumerate(specs):
        e = d[d["specification"] == s].set_index("term").reindex(terms)
        ys = np.arange(len(terms)) + (j - (len(specs) - 1) / 2) * step
        ax.errorbar(e["estimate"], ys, xerr=[e["estimate"] - e["conf_low"], e["conf_high"] - e["estimate"]],
                    fmt="o", ms=3, color=col[s], label=_spec_name(s, labels), capsize=0, lw=1)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_yticks(range(len(terms)), [_lab(labels, t) for t in terms])
    ax.invert_yaxis()
    ax.set_xlabel("Estimate (95% interval)")
    fig.legend(*ax.get_legend_handles_labels(), title="Specification", loc="outside right upper")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def audit_figures(cfg, paths, images: pd.DataFrame, models: pd.DataFrame, reliability: pd.DataFrame) -> dict:
    """Every figure of the audit report; returns ``{figure name: file name}``."""
    from ..measures.image import IMAGE_MEASURES

    from ..safeio import safe_name

    labels = dict(cfg.labels)
    out = {}
    for g in cfg.data.groups:  # a column name is data: one file name inside figures/ (safe_name)
        out[f"score_by_{g}"] = score_by_group(images, g, paths.figures / f"{safe_name(f'score_by_{g}')}.svg",
                                              labels=labels).name
    measures = [c for c in images.columns if c in IMAGE_MEASURES]
    if measures:
        by = cfg.data.groups[0] if cfg.data.groups else None
        out["score_vs_measures"] = score_vs_measures(images, measures, paths.figures / "score_vs_measures.svg", by=by,
                                                     labels=labels).name
    for m in cfg.models:
        out[f"model_{m.id}"] = model_comparison(models, m.id, paths.figures / f"{safe_name(f'model_{m.id}')}.svg",
                                                labels=labels).name
    return out
