"""The pipeline's stages: fetch -> measure -> fit -> figures -> render.

Each stage reads the files the previous one wrote, so each can be run alone
(``discbias <stage>``) and ``make`` only reruns what changed. Analysis modules in
:mod:`discbias.analyses` plug into the ``measure``, ``fit`` and ``figures`` stages; see
:class:`FitContext` and :class:`FigureContext` for what they receive.
"""

from __future__ import annotations

import logging
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__, provenance
from .config import StudyConfig, load_config, write_resolved
from .defaults import DEFAULT_CONFIG
from .errors import MissingInputError, UserError
from .fetch import ChecksumError, ContentDigestError, FetchError, MissingFileError, fetch_all, sha256_file, verify_tree
from .paths import ProjectPaths, project_paths
from .results import write_table, write_values
from .studies.validation import ISSUE_COLUMNS

log = logging.getLogger(__name__)
#: Distributions recorded even when this process did not import them (plus all that it did).
PACKAGES = provenance.ALWAYS


class StaleBuildError(UserError, RuntimeError):
    """``build/`` was made by another configuration (or an earlier version of this one)."""


class RawFileChangedError(ChecksumError):
    """A file in ``data/raw`` no longer has the configured sha256 (or content digest)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        RuntimeError.__init__(self, f"{len(problems)} raw file(s) differ from the configuration; nothing was "
                                    "measured:\n- " + "\n- ".join(problems))


def config_stamp(config: StudyConfig) -> dict:
    """What identifies a configuration's build: its path, the sha256 of its bytes and its id.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg = load_config(make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3))
    >>> sorted(config_stamp(cfg))
    ['config', 'sha256', 'study_id']
    """
    path = Path(config.path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
    return dict(config=str(path.resolve()), sha256=digest, study_id=config.id)


def read_stamp(paths: ProjectPaths) -> dict | None:
    """The stamp of the configuration that made ``build/`` (None if there is none)."""
    try:
        return json.loads(paths.stamp.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def require_current_build(config: StudyConfig, paths: ProjectPaths) -> None:
    """Raise :class:`StaleBuildError` unless ``build/`` was measured with this configuration as it is now.

    Fit, figures and render call this, so a switch of ``--config`` never reports the tables of
    the previous configuration.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.paths import project_paths
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg = load_config(make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3))
    >>> require_current_build(cfg, project_paths(tempfile.mkdtemp()))
    Traceback (most recent call last):
    ...
    discbias.pipeline.StaleBuildError: ...
    """
    now, made = config_stamp(config), read_stamp(paths)
    if made == now:
        return
    redo = f"run `discbias measure --config {config.path}` (or `make report CONFIG={config.path}`)"
    if made is None:
        raise StaleBuildError(f"{paths.build} has no record of the configuration that made it ({paths.stamp} is "
                              f"missing); {redo} first")
    if made.get("config") == now["config"]:
        raise StaleBuildError(f"{now['config']} changed since {paths.build} was measured with it; {redo} again")
    raise StaleBuildError(f"{paths.build} was made with {made.get('config')} (study '{made.get('study_id')}'), "
                          f"not {now['config']}; {redo}")


def _clear_derived(paths: ProjectPaths) -> None:
    for d in paths.derived():
        if d.is_dir():
            shutil.rmtree(d)
        elif d.exists():
            d.unlink()
    paths.stamp.unlink(missing_ok=True)


_MEMO = "raw-verified.json"


def verify_raw(config: StudyConfig, paths: ProjectPaths) -> dict[str, str]:
    """Check every configured source in ``data/raw`` against the configuration; return its sha256.

    A file of kind ``"file"`` must have the configured sha256; a ``"json_tree"`` archive its
    sha256 or, failing that, the configured content digest over its member files. Hashes of files
    whose path, size and modification time are unchanged since they last matched come from a memo
    (``build/cache/raw-verified.json``), so a large archive is not reread by every measure.

    Raises
    ------
    RawFileChangedError
        Naming each differing file, the expected and the actual hash, and the fix.
    MissingFileError
        A configured file is not in ``data/raw``.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.paths import project_paths
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> cfg_path = make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3)
    >>> cfg, paths = load_config(cfg_path), project_paths(cfg_path.parent.parent)
    >>> _ = fetch_all(cfg, paths.raw, mirror=cfg_path.parent.parent / "mirror", allow_download=False, progress=False)
    >>> len(verify_raw(cfg, paths))
    8
    """
    memo_path = paths.cache / _MEMO
    try:
        memo = json.loads(memo_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        memo = {}
    hashes, problems, missing = {}, [], []
    fix = (f"Delete it and run `discbias fetch --config {config.path}` to install the configured file again, "
           f"or, if the new file is intended, correct sha256 in {config.path}")
    for src in config.sources.values():
        f = paths.raw / src.file
        if not f.exists():
            missing.append(src.file)
            continue
        st = f.stat()
        key = str(f.resolve())
        want = [src.sha256, src.content_digest]
        m = memo.get(key)
        if m and m.get("size") == st.st_size and m.get("mtime_ns") == st.st_mtime_ns and m.get("matched") == want:
            hashes[src.name] = m["sha256"]
            continue
        actual = sha256_file(f)
        hashes[src.name] = actual
        if actual != src.sha256:
            if src.kind != "json_tree":
                problems.append(f"{f}: sha256 {actual}, the configuration expects {src.sha256}. {fix}.")
                continue
            try:
                verify_tree(f, src, str(f))
            except (ContentDigestError, FetchError) as exc:
                problems.append(f"{f}: neither its sha256 ({actual}, expected {src.sha256}) nor its content digest "
                                f"matches ({exc}). {fix} (or content_digest).")
                continue
        memo[key] = dict(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=actual, matched=want)
    if missing:
        raise MissingFileError(f"not in {paths.raw}: {', '.join(missing)}; run `discbias fetch --config {config.path}`")
    if problems:
        raise RawFileChangedError(problems)
    paths.cache.mkdir(parents=True, exist_ok=True)
    tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(memo, indent=1, sort_keys=True))
    os.replace(tmp, memo_path)
    return hashes


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
        """Save a figure as ``build/figures/<name>.svg`` (HTML and Typst), ``.pdf`` and ``.png``; close it.

        The figure is first made printable (:func:`discbias.report.style.fit_to_print`: at most
        the text width, fonts >= 7 pt); scatters of many points are rasterized inside the vector
        files. It is saved at its own size (no tight bounding box), which is its printed size.
        """
        import matplotlib.pyplot as plt
        from matplotlib.collections import Collection

        from .report.style import fit_to_print

        fit_to_print(fig)
        for c in fig.findobj(Collection):
            if len(c.get_offsets()) > 3000:
                c.set_rasterized(True)
        self.paths.figures.mkdir(parents=True, exist_ok=True)
        out = self.paths.figures / f"{name}.svg"
        for ext in ("svg", "pdf", "png"):
            fig.savefig(self.paths.figures / f"{name}.{ext}", dpi=300 if ext != "png" else 200,
                        metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)
        return out

    def save_table(self, df, name: str, *, digits: dict[str, int] | int = 2,
                   rename: dict[str, str] | None = None, **table):
        """Write a publication table to ``build/tables/<name>.{csv,tex,typ,html,md}``.

        ``df`` is a frame or a ready :class:`~discbias.report.tables.PubTable`. Keywords
        ``caption``, ``label``, ``notes``, ``columns`` (list of :class:`~discbias.report.tables.Col`),
        ``spanners`` and ``landscape`` go to ``PubTable``; the CSV is unrounded.
        """
        from .report.tables import PubTable, write_publication_table

        if isinstance(df, PubTable):
            df.write(self.paths.tables, name)
            return df
        return write_publication_table(df, self.paths.tables, name, digits=digits, rename=rename, **table)

    def label(self, id_: str) -> str:
        """The readable label of an id (the study's ``[labels]`` over the package defaults)."""
        from .report.labels import label

        return label(id_)


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
        log.info(f"fetch {r.path.name}: {r.origin}")
    for analysis in _analyses():
        if hasattr(analysis, "fetch"):
            analysis.fetch(config, paths)


def run_measure(config: StudyConfig, paths: ProjectPaths, *, on_invalid: str | None = None) -> dict[str, pd.DataFrame]:
    """Verify the raw files, run every adapter; write ``build/measures/*.parquet``, data issues,
    provenance and the configuration stamp.

    Every file in ``data/raw`` is checked against the configuration first (:func:`verify_raw`):
    a changed file stops the stage before anything is written. When the configuration differs
    from the one that made ``build/`` (see :func:`require_current_build`), that configuration's
    outputs (measures, results, values, figures, tables, report) are removed once the adapters have
    succeeded, so no later stage can report them; ``build/cache`` is kept (content-keyed).
    """
    hashes = verify_raw(config, paths)
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
            log.info(f"measure {analysis.__name__.rsplit('.', 1)[-1]}: {len(made)} tables in {time.perf_counter() - t0:.1f}s")
    stamp = config_stamp(config)
    if read_stamp(paths) != stamp:
        _clear_derived(paths)
    paths.ensure()
    for name, df in tables.items():
        write_table(df, paths.measures / f"{name}.parquet")
    for old in paths.measures.glob("*.parquet"):
        if old.stem not in tables:  # a table this configuration (or this code) no longer makes
            old.unlink()
    write_table(pd.concat(issues, ignore_index=True), paths.results / "data_issues.csv")
    rows = []
    for src in config.sources.values():
        rows.append(dict(source=src.name, file=src.file, url=src.url, sha256_expected=src.sha256,
                         sha256=hashes.get(src.name), rows_expected=src.rows,
                         description=src.description))
    write_table(pd.DataFrame(rows), paths.results / "provenance.csv")
    paths.stamp.write_text(json.dumps(stamp, indent=1))
    return tables


def load_measures(paths: ProjectPaths) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(paths.measures.glob("*.parquet"))}


def load_results(paths: ProjectPaths) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in sorted(paths.results.glob("*.csv"))}


def software_versions() -> dict[str, str]:
    """Python and every distribution this run imported, with versions (see :mod:`discbias.provenance`)."""
    return provenance.software_versions(PACKAGES)


def _code_commit(paths: ProjectPaths) -> dict:
    """The git commit of the code that fits (``discbias bundle`` checks it against its own)."""
    from .reproduce.bundle import project_commit

    git = project_commit(paths.root)
    return dict(commit=git["commit"], dirty=git["dirty"])


def run_fit(config: StudyConfig, paths: ProjectPaths) -> FitContext:
    """Run every analysis's ``fit``, evaluate the claims, write results and ``values.json``."""
    from .claims import evaluate_claims
    from .scoring.protocols import describe_input

    require_current_build(config, paths)
    paths.ensure()
    ctx = FitContext(config, paths, load_measures(paths))
    if not ctx.measures:
        raise MissingInputError(f"no tables in {paths.measures}; run `discbias measure` first")
    timings = {}
    for analysis in _analyses():
        if hasattr(analysis, "fit"):
            t0 = time.perf_counter()
            analysis.fit(ctx)
            timings[analysis.__name__.rsplit(".", 1)[-1]] = time.perf_counter() - t0
            log.info(f"fit {analysis.__name__.rsplit('.', 1)[-1]}: {timings[analysis.__name__.rsplit('.', 1)[-1]]:.1f}s")
    claims, specs = evaluate_claims(ctx, analysis_claims())
    ctx.results["claims"] = claims
    ctx.results["claims_specifications"] = specs
    ctx.results["models"] = pd.DataFrame(ctx.models)
    for name, df in ctx.results.items():
        write_table(df, paths.results / f"{name}.csv")
    write_resolved(config, paths.results)
    prov = pd.read_csv(paths.results / "provenance.csv")
    issues = pd.read_csv(paths.results / "data_issues.csv")
    ctx.values["meta"] = dict(
        study_id=config.id, title=config.title, paper=config.study.get("paper", ""),
        discbias_version=__version__, software=software_versions(),
        build_date=time.strftime("%Y-%m-%d"),
        upstream=config.upstream, config=config_stamp(config), n_sources=len(prov), n_data_issues=int(len(issues)),
        released_protocol=describe_input(config.study.get("released_scores_protocol")),
        roles={role: dict(source=src.name, file=src.file, description=src.description, rows=src.rows)
               for role, src in ((r, config.role(r)) for r in config.roles)},
        fit_seconds=timings, code_commit=_code_commit(paths),
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
    require_current_build(config, paths)
    paths.ensure()
    values = json.loads(paths.values.read_text())
    fctx = FigureContext(config, paths, load_measures(paths), load_results(paths), values)
    from .report.labels import labels_from_config, set_labels
    from .report.style import apply_style
    from .report.tables import common_tables

    apply_style()
    set_labels(labels_from_config(config))

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
