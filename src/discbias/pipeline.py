"""The pipeline's stages: fetch -> measure -> fit -> figures -> render.

Each stage reads the files the previous one wrote, so each can be run alone
(``discbias <stage>``) and ``make`` only reruns what changed. Analysis modules in
:mod:`discbias.analyses` plug into the ``measure``, ``fit`` and ``figures`` stages; see
:class:`FitContext` and :class:`FigureContext` for what they receive.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__
from .config import StudyConfig, load_config
from .fetch import fetch_all, sha256_file
from .paths import ProjectPaths, project_paths
from .results import write_table, write_values
from .studies.validation import ISSUE_COLUMNS

DEFAULT_CONFIG = "analysis/grissom2024.toml"
PACKAGES = ["discbias", "numpy", "pandas", "scipy", "statsmodels", "pingouin", "pymc", "arviz", "scikit-learn",
            "matplotlib", "jinja2", "pyarrow", "torch", "pypandoc-binary", "typst"]


def _log(msg: str) -> None:
    print(f"[discbias] {msg}", file=sys.stderr, flush=True)


@dataclass
class MeasureContext:
    """What a measure builder receives: configuration, paths, and the invalid-value policy."""

    config: StudyConfig
    paths: ProjectPaths
    on_invalid: str = "report"

    def raw(self, role: str) -> Path:
        """Path in ``data/raw`` of the source a role points at."""
        return self.paths.raw / self.config.role(role).file

    def expected_rows(self, role: str) -> int | None:
        return self.config.role(role).rows


@dataclass
class FitContext:
    """What an analysis's ``fit(ctx)`` receives and fills.

    Attributes
    ----------
    measures : dict of str to DataFrame
        Every table in ``build/measures`` (by file stem).
    results : dict of str to DataFrame
        Result tables to write to ``build/results/<name>.csv``; analyses add to it.
    values : dict
        Nested scalars for ``build/values.json``; each analysis writes under its own key.
    models : list of dict
        One entry per fitted model (id, description, formula, n_obs, converged, warnings).
    """

    config: StudyConfig
    paths: ProjectPaths
    measures: dict[str, pd.DataFrame]
    results: dict[str, pd.DataFrame] = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    models: list[dict] = field(default_factory=list)

    def add_model(self, model: str, description: str, formula: str, tidy: pd.DataFrame | None = None, **extra) -> None:
        """Record a model in ``build/results/models.csv`` (n, convergence and warnings from ``tidy``)."""
        row = dict(model=model, description=description, formula=formula)
        if tidy is not None and len(tidy):
            row["n_obs"] = tidy["n_obs"].dropna().max() if tidy["n_obs"].notna().any() else None
            row["converged"] = bool(tidy["converged"].fillna(False).astype(bool).all())
            ws = sorted({w for ws in tidy["warnings"].fillna("") for w in str(ws).split("; ") if w})
            row["warnings"] = "; ".join(ws)
            row["method"] = tidy["method"].iloc[0]
        row.update(extra)
        self.models.append(row)


@dataclass
class FigureContext:
    """What an analysis's ``figures(ctx)`` receives: results, measures, values and writers."""

    config: StudyConfig
    paths: ProjectPaths
    measures: dict[str, pd.DataFrame]
    results: dict[str, pd.DataFrame]
    values: dict

    def save_figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure as ``build/figures/<name>.png`` (and ``.pdf``) and close it."""
        import matplotlib.pyplot as plt

        self.paths.figures.mkdir(parents=True, exist_ok=True)
        out = self.paths.figures / f"{name}.png"
        fig.savefig(out, dpi=200, bbox_inches="tight")
        fig.savefig(self.paths.figures / f"{name}.pdf", bbox_inches="tight")
        plt.close(fig)
        return out

    def save_table(self, df: pd.DataFrame, name: str, *, digits: dict[str, int] | int = 2,
                   rename: dict[str, str] | None = None) -> None:
        """Write a publication table: ``build/tables/<name>.csv`` (unrounded), ``.tex`` and ``.md``."""
        from .report.tables import write_publication_table

        write_publication_table(df, self.paths.tables, name, digits=digits, rename=rename)


def _analyses():
    from .analyses import ANALYSES

    return ANALYSES


def analysis_claims():
    """Every claim the registered analyses declare (their ``CLAIMS``), in pipeline order."""
    from .claims import collect_claims

    return collect_claims(_analyses())


def run_fetch(config: StudyConfig, paths: ProjectPaths, *, allow_download: bool = True) -> None:
    """Fetch every source into ``data/raw`` (mirror or download, sha256-verified)."""
    paths.raw.mkdir(parents=True, exist_ok=True)
    for r in fetch_all(config, paths.raw, allow_download=allow_download):
        _log(f"fetch {r.path.name}: {r.origin}")
    for analysis in _analyses():
        if hasattr(analysis, "fetch"):
            analysis.fetch(config, paths)


def run_measure(config: StudyConfig, paths: ProjectPaths, *, on_invalid: str | None = None) -> dict[str, pd.DataFrame]:
    """Run every adapter; write ``build/measures/*.parquet``, data issues and provenance."""
    paths.ensure()
    on_invalid = on_invalid or config.study.get("on_invalid", "report")
    ctx = MeasureContext(config, paths, on_invalid)
    tables: dict[str, pd.DataFrame] = {}
    issues = [pd.DataFrame(columns=ISSUE_COLUMNS)]
    for analysis in _analyses():
        if hasattr(analysis, "measure"):
            t0 = time.perf_counter()
            made, found = analysis.measure(ctx)
            tables.update(made)
            issues.append(found)
            _log(f"measure {analysis.__name__.rsplit('.', 1)[-1]}: {len(made)} tables in {time.perf_counter() - t0:.1f}s")
    for name, df in tables.items():
        write_table(df, paths.measures / f"{name}.parquet")
    write_table(pd.concat(issues, ignore_index=True), paths.results / "data_issues.csv")
    rows = []
    for src in config.sources.values():
        f = paths.raw / src.file
        rows.append(dict(source=src.name, file=src.file, url=src.url, sha256_expected=src.sha256,
                         sha256=sha256_file(f) if f.exists() else None, rows_expected=src.rows,
                         description=src.description))
    write_table(pd.DataFrame(rows), paths.results / "provenance.csv")
    return tables


def load_measures(paths: ProjectPaths) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(paths.measures.glob("*.parquet"))}


def load_results(paths: ProjectPaths) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in sorted(paths.results.glob("*.csv"))}


def software_versions() -> dict[str, str]:
    """Installed versions of the packages the pipeline uses (and Python)."""
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def run_fit(config: StudyConfig, paths: ProjectPaths) -> FitContext:
    """Run every analysis's ``fit``, evaluate the claims, write results and ``values.json``."""
    from .claims import evaluate_claims

    paths.ensure()
    ctx = FitContext(config, paths, load_measures(paths))
    if not ctx.measures:
        raise FileNotFoundError(f"no tables in {paths.measures}; run `discbias measure` first")
    timings = {}
    for analysis in _analyses():
        if hasattr(analysis, "fit"):
            t0 = time.perf_counter()
            analysis.fit(ctx)
            timings[analysis.__name__.rsplit(".", 1)[-1]] = time.perf_counter() - t0
            _log(f"fit {analysis.__name__.rsplit('.', 1)[-1]}: {timings[analysis.__name__.rsplit('.', 1)[-1]]:.1f}s")
    claims, specs = evaluate_claims(ctx, analysis_claims())
    ctx.results["claims"] = claims
    ctx.results["claims_specifications"] = specs
    ctx.results["models"] = pd.DataFrame(ctx.models)
    for name, df in ctx.results.items():
        write_table(df, paths.results / f"{name}.csv")
    prov = pd.read_csv(paths.results / "provenance.csv")
    issues = pd.read_csv(paths.results / "data_issues.csv")
    ctx.values["meta"] = dict(
        study_id=config.id, title=config.title, paper=config.study.get("paper", ""),
        discbias_version=__version__, software=software_versions(),
        build_date=time.strftime("%Y-%m-%d"),
        upstream=config.upstream, n_sources=len(prov), n_data_issues=int(len(issues)),
        fit_seconds=timings,
    )
    ctx.values["claims"] = {r["claim_id"]: r for r in claims.to_dict("records")}
    for cid, c in ctx.values["claims"].items():
        c["specifications"] = {r["specification"]: r for r in specs[specs["claim_id"] == cid].to_dict("records")}
    ctx.values["verdict_counts"] = claims["verdict"].value_counts().to_dict()
    write_values(ctx.values, paths.values)
    return ctx


def run_figures(config: StudyConfig, paths: ProjectPaths) -> None:
    """Run every analysis's ``figures`` on the written results."""
    import matplotlib

    matplotlib.use("Agg")
    paths.ensure()
    values = json.loads(paths.values.read_text())
    fctx = FigureContext(config, paths, load_measures(paths), load_results(paths), values)
    from .report.tables import common_tables

    common_tables(fctx)
    from .report.speccurve import spec_curve_figures

    spec_curve_figures(fctx)
    for analysis in _analyses():
        if hasattr(analysis, "figures"):
            analysis.figures(fctx)


def run_all(config_path: str | Path = DEFAULT_CONFIG, root=None, formats=("html", "pdf")) -> None:
    """Every stage in order (what ``make report`` runs, without make's skipping)."""
    from .report.render import render

    config = load_config(config_path)
    paths = project_paths(root)
    run_fetch(config, paths)
    run_measure(config, paths)
    run_fit(config, paths)
    run_figures(config, paths)
    render(config, paths, formats=formats)
