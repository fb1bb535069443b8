"""``discbias audit run``: score -> measure -> join -> reliability -> models -> claims -> figures -> render.

Each stage is a declared :class:`~discbias.engine.Step` on the engine (one writer per table, order
derived from the declarations, rerun only what changed); the tables live in
``build/<name>/tables/`` (Parquet), the report in ``build/<name>/report/<name>.{qmd,html,pdf}``.

Tables (one writer each):

==================  ================  ============================================================
table               written by        content
==================  ================  ============================================================
``inputs``          ``inputs``        the manifest: one row per image with its metadata
``scores``          ``score``         one row per image x protocol (the scorer's columns)
``score_failures``  ``score``         images that could not be scored, with the reason
``provenance``      ``score``         weights sha256, network, protocols, conditioning, counts
``measures``        ``measure``       image measures, one row per image
``ratings_long``    ``ratings``       item, image, rater, value (valid ratings only)
``data_issues``     ``ratings``       every invalid rating value: file, line, column, value, problem, action
``images``          ``join``          image level: metadata + measures + scores + mean ratings
``rating_rows``     ``join``          rating level: one row per image x rater (+ image columns)
``reliability``     ``reliability``   ICC(2,k), ICC(1,k), Krippendorff's alpha per item
``models``          ``models``        tidy estimates of every model and comparison specification
``claims``          ``claims``        one verdict per claim; ``claim_specs`` per specification
``figures``         ``figures``       the figure files written
``report``          ``render``        the report files written
==================  ================  ============================================================
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..engine import Engine, Step, TableStore
from ..paths import ProjectPaths
from ..errors import ConfigError, UserError
from .config import AuditConfig, input_digests as _input_digests, load_audit_config
from ..safeio import describe_columns
from .common import (_FORMULA_FUNCS, _WORD, AuditError, _score_column, formula_columns,  # noqa: F401 (re-exported)
                     score_columns)

__all__ = ["audit", "audit_engine", "AuditPaths", "AuditError", "VERDICT_READING"]

#: How the claims engine's verdicts read for an audit's own hypotheses.
VERDICT_READING = {
    "robust": "supported under every specification",
    "fragile": "supported by the main model, not under every comparison",
    "contradicted": "credible in the opposite direction",
    "negligible": "smaller than the smallest effect of interest",
    "inconclusive": "inconclusive: the main model's interval includes 0, or it could not be estimated",
    "not tested": "not tested",
    "not yet estimated": "not yet estimated",
}
@dataclass(frozen=True)
class AuditPaths(ProjectPaths):
    """Where an audit writes: :class:`~discbias.paths.ProjectPaths` with the build in ``build/<name>``.

    Every attribute of the project's paths exists (``score_cache``, ``weights``, ``templates``,
    ``engine``, ...), resolved the same way; an audit's build differs only in its folder
    (``build/<name>``), its table store (``build/<name>/tables``, Parquet) and its publication
    tables (``build/<name>/pubtables``).

    Examples
    --------
    >>> p = AuditPaths("/tmp/proj", "faces")
    >>> p.build.as_posix(), p.results.as_posix(), p.score_cache == ProjectPaths(Path("/tmp/proj")).score_cache
    ('/tmp/proj/build/faces', '/tmp/proj/build/faces/results', True)
    """

    name: str = ""

    def __init__(self, root, name: str):
        object.__setattr__(self, "root", Path(root))
        object.__setattr__(self, "name", name)

    @property
    def build(self) -> Path:
        return self.root / "build" / self.name

    @property
    def store(self) -> Path:
        """The audit's tables (Parquet) and the engine's manifests (``build/<name>/tables``)."""
        return self.build / "tables"

    @property
    def tables(self) -> Path:
        """Publication tables (``build/<name>/pubtables``)."""
        return self.build / "pubtables"

    def ensure(self) -> "AuditPaths":
        for d in (self.store, self.results, self.figures, self.tables, self.report):
            d.mkdir(parents=True, exist_ok=True)
        return self


# ------------------------------------------------------------------------------------------ inputs

def read_manifest(cfg: AuditConfig) -> tuple[pd.DataFrame, Path | None]:
    """The manifest as a frame with columns ``image`` (as written), ``_path`` (the file) and metadata."""
    d = cfg.data
    if d.folder:
        from ..scoring.sources import discover

        folder = cfg.resolve(d.folder)
        if not folder.is_dir():
            raise ConfigError(f"[data] folder {folder} does not exist; fix `folder` in {cfg.path}", file=cfg.path,
                              table="data", key="folder")
        items = discover(folder)
        return pd.DataFrame({"image": [it.image for it in items], "_path": [str(it.path) for it in items]}), None
    path = cfg.resolve(d.manifest)
    if not path.is_file():
        raise ConfigError(f"[data] manifest {path} does not exist; fix `manifest` in {cfg.path}", file=cfg.path,
                          table="data", key="manifest")
    if path.suffix.lower() == ".parquet":
        df = pd.read_parquet(path)
    elif path.suffix.lower() in (".csv", ".txt"):
        df = pd.read_csv(path)
    else:
        raise ConfigError(f"[data] manifest {path}: use a .csv or .parquet file", file=cfg.path, table="data",
                          key="manifest")
    col = d.image_column
    if col not in df.columns:
        raise ConfigError(f"[data] the manifest {path.name} has no image column {col!r} ({describe_columns(df.columns)}"
                          f"); set image_column to the column holding the image "
                          f"paths", file=cfg.path, table="data", key="image_column")
    df = df.rename(columns={col: "image"})
    bad = df["image"].isna() | (df["image"].astype(str).str.strip() == "")
    if bad.any():
        raise AuditError(f"{path}: row {int(np.flatnonzero(bad)[0]) + 2} has an empty {col!r}; fill it or drop the row")
    df["image"] = df["image"].astype(str).str.strip()
    dup = df["image"].duplicated()
    if dup.any():
        raise AuditError(f"{path}: image {df.loc[dup, 'image'].iloc[0]!r} is listed twice; list each image once")
    df["_path"] = [str(p if p.is_absolute() else path.parent / p) for p in map(Path, df["image"])]
    for g in d.groups:
        if g not in df.columns:
            raise ConfigError(f"[data] groups names {g!r}, which is not a column of {path.name} (columns: "
                              f"{', '.join(c for c in df.columns if c != '_path')}); fix `groups`", file=cfg.path,
                              table="data", key="groups")
    return df, path


def _items(inputs: pd.DataFrame, label_column: str | None = None):
    from ..scoring.sources import ImageItem

    out = []
    for r in inputs.to_dict("records"):
        p = Path(r["_path"])
        meta = {label_column: r[label_column]} if label_column else {}
        err = None if p.exists() else "file not found (listed in the manifest)"
        out.append(ImageItem(r["image"], p, p.stem, meta, error=err))
    return out


# -------------------------------------------------------------------------------------------- steps

def step_inputs(ctx) -> None:
    cfg: AuditConfig = ctx.config
    df, _ = read_manifest(cfg)
    ctx.write("inputs", df)


def _make_scorer(cfg: AuditConfig, net, weights: str, protocol):
    """A local :class:`~discbias.scoring.scorer.Scorer`, or a Ray one under ``[scoring] engine = "ray"``."""
    s = cfg.scoring
    if s.engine == "ray":
        from ..scoring.ray_engine import RayScorer

        return RayScorer(weights, protocol, device=s.device, batch_size=s.batch_size, min_side=s.min_side,
                         address=s.address, actors=s.actors)
    from ..scoring.scorer import Scorer

    return Scorer(weights, protocol, device=s.device, batch_size=s.batch_size, min_side=s.min_side)


def _score_by_label_ray(cfg, net, weights, proto, items, cache, progress: bool = False):
    """Each image under its own class, one Ray scorer per class (the local engine's score_by_label)."""
    import time

    from ..scoring.protocols import ScoringProtocol
    from ..scoring.scorer import ScoreRun, group_by_label

    s = cfg.scoring
    groups = group_by_label(items, net.label_column)
    t0, runs = time.perf_counter(), []
    for k, g in sorted(groups.items()):
        sc = _make_scorer(cfg, net, weights, ScoringProtocol(input=proto, resize=s.resize, filter=s.filter,
                                                             condition=f"class:{k}"))
        runs.append((sc, sc.score_items(g, cache, progress=progress)))
    sc = runs[0][0]
    return sc, ScoreRun(pd.concat([r.table for _, r in runs], ignore_index=True),
                        pd.concat([r.failures for _, r in runs], ignore_index=True),
                        sum(r.scored for _, r in runs), sum(r.from_cache for _, r in runs),
                        sum(r.failed for _, r in runs), time.perf_counter() - t0, sc.weights_sha256,
                        sc.protocol.with_(condition=f"label:{net.label_column}"))


def _progress(ctx) -> bool:
    """Progress bars (count, rate, ETA on stderr) unless the run asked for none (``discbias -q``)."""
    return bool(getattr(ctx, "progress", False))


def _condition_text(net) -> str:
    return (f"each image's class from column '{net.label_column}'" if net.label_column
            else f"class {net.class_}" if net.class_ is not None
            else "mean over all classes" if net.average_classes else "none (unconditional network)")


def step_score(ctx) -> None:
    from ..scoring.cache import ScoreCache
    from ..scoring.protocols import ProtocolError, ScoringProtocol
    from ..scoring.scorer import score_by_label

    cfg: AuditConfig = ctx.config
    s = cfg.scoring
    inputs = ctx.read("inputs")
    cache = ScoreCache(ctx.cache_dir)
    tables, fails, prov, nets = [], [], [], []
    log = getattr(ctx, "log", None) or (lambda line: None)
    for net in s.network_list():
        if net.label_column and net.label_column not in inputs.columns:
            raise ConfigError(f"[scoring] label_column {net.label_column!r} is not a column of the manifest (columns: "
                              f"{', '.join(c for c in inputs.columns if c != '_path')}); fix label_column",
                              file=cfg.path, table="scoring", key="label_column")
        items = _items(inputs, net.label_column)
        weights = net.weights
        wp = cfg.resolve(weights)
        if wp.exists():
            weights = str(wp)
        info = {}
        for proto in s.protocols:
            log(f"score: {len(items)} images, network {net.id or net.weights}, protocol {proto} ({s.engine} engine)")
            try:
                protocol = ScoringProtocol(input=proto, resize=s.resize, filter=s.filter, condition=net.condition)
                if net.label_column and s.engine == "ray":
                    scorer, run = _score_by_label_ray(cfg, net, weights, proto, items, cache,
                                                         progress=_progress(ctx))
                else:
                    scorer = _make_scorer(cfg, net, weights, protocol)
                    if net.label_column:
                        run = score_by_label(scorer, items, cache, net.label_column, progress=_progress(ctx))
                    else:
                        run = scorer.score_items(items, cache, progress=_progress(ctx))
            except ProtocolError as exc:
                from .conditioning import conditioning_problem

                c_dim = re.search(r"c_dim=(\d+)", str(exc))
                problem = conditioning_problem(net, int(c_dim.group(1))) if c_dim else None
                where = f"scoring.networks[{s.networks.index(net)}]" if s.networks else "scoring"
                if problem is not None:  # named as the option is spelled in the configuration
                    raise ConfigError(problem[1], file=cfg.path, table=where, key=problem[0]) from None
                raise AuditError(f"[{where}] {exc} (in {cfg.path})") from None
            except FileNotFoundError as exc:
                raise ConfigError(f"[scoring] weights: {exc}; fix `weights` in {cfg.path}", file=cfg.path,
                                  table="scoring", key="weights") from None
            probe = getattr(scorer, "probe", scorer)  # a Ray scorer keeps the network's facts on its probe
            info = dict(id=net.id, c_dim=int(probe.c_dim), resolution=int(scorer.resolution),
                        weights=str(net.weights), weights_sha256=scorer.weights_sha256,
                        condition=_condition_text(net))
            tables.append(run.table.assign(network=net.id))
            fails.append(run.failures.assign(protocol=proto, network=net.id))
            conv = run.table["conversion"].fillna("")
            prov.append(dict(network=net.id, protocol=proto, label=run.protocol.label,
                             settings=json.dumps(run.protocol.settings()),
                             scored=run.scored, from_cache=run.from_cache, failed=run.failed,
                             converted=int((conv != "").sum()),
                             conversions="; ".join(sorted({c.split(" ")[0] for c in conv if c}))))
        nets.append(info)
    scores = pd.concat(tables, ignore_index=True)
    if not len(scores):
        f = pd.concat(fails, ignore_index=True)
        first = f"; first failure: {f['image'].iloc[0]}: {f['reason'].iloc[0]}" if len(f) else ""
        raise AuditError(f"no image of {len(inputs)} could be scored{first} (smaller images need a smaller "
                         f"[scoring] min_side)")
    ctx.write("scores", scores)
    ctx.write("score_failures", pd.concat(fails, ignore_index=True))
    ctx.write_value("provenance", dict(network=nets[0], networks=nets, protocols=prov,
                                       condition=nets[0]["condition"], device=s.device, engine=s.engine,
                                       n_images=int(len(inputs)), discbias_version=__version__,
                                       stand_in_weights=bool(cfg.audit.stand_in_weights)))


def step_measure(ctx) -> None:
    from ..measures.image import IMAGE_MEASURES
    from ..measures.io import measure_file

    cfg: AuditConfig = ctx.config
    inputs = ctx.read("inputs")
    want = list(IMAGE_MEASURES) if cfg.measures.image == ["all"] else list(cfg.measures.image)
    unknown = [m for m in want if m not in IMAGE_MEASURES]
    if unknown:
        raise ConfigError(f"[measures] unknown image measure(s) {unknown}; choose from {', '.join(IMAGE_MEASURES)} "
                          f"or [\"all\"]", file=cfg.path, table="measures", key="image")
    faces = None if cfg.measures.faces == "none" else cfg.measures.faces
    rows, fails = [], []
    (getattr(ctx, "log", None) or (lambda line: None))(
        f"measure: {len(inputs)} images ({len(want)} measures{', faces: ' + faces if faces else ''}; once for every "
        f"network)")
    from ..progress import progress as _bar  # the shared bar (count, rate, ETA; silent with -q)

    bar = _bar(total=len(inputs), unit="img", desc="measuring", disable=not _progress(ctx) or None)
    for r in inputs.to_dict("records"):
        bar.update(1)
        if not Path(r["_path"]).exists():
            fails.append(dict(image=r["image"], reason="file not found (listed in the manifest)"))
            continue
        row, err = measure_file(r["image"], r["_path"], faces=faces, min_side=cfg.scoring.min_side)
        if err is not None:
            fails.append(dict(image=r["image"], reason=err["reason"]))
            continue
        keep = {k: v for k, v in row.items() if k not in ("path", "image_id", "conversion", "width", "height",
                                                             "image_sha256")}
        keep = {k: v for k, v in keep.items() if k == "image" or k in want or not k in IMAGE_MEASURES}
        rows.append(keep)
    bar.close()
    if not rows:
        first = f"; first failure: {fails[0]['image']}: {fails[0]['reason']}" if fails else ""
        raise AuditError(f"no image of {len(inputs)} could be measured{first}")
    ctx.write("measures", pd.DataFrame(rows))
    ctx.write("measure_failures", pd.DataFrame(fails, columns=["image", "reason"]))


def step_ratings(ctx) -> None:
    from .ratings import collect_ratings

    cfg: AuditConfig = ctx.config
    inputs = ctx.read("inputs")
    manifest = cfg.resolve(cfg.data.manifest) if cfg.data.manifest else None
    long, issues = collect_ratings(cfg, inputs, manifest)
    ctx.write("ratings_long", long)
    ctx.write("data_issues", issues)


def step_join(ctx) -> None:
    cfg: AuditConfig = ctx.config
    inputs, measures, scores = ctx.read("inputs"), ctx.read("measures"), ctx.read("scores")
    ratings = ctx.read("ratings_long")
    meta_cols = [c for c in inputs.columns if c != "_path"]
    items = list(cfg.ratings)
    mcols = [c for c in measures.columns if c != "image"]
    roles = {"manifest": set(meta_cols) - {"image"}, "measures": set(mcols), "ratings": set(items),
             "score": set(score_columns(cfg))}
    seen: dict[str, str] = {}
    for role, cols in roles.items():
        for c in cols:
            if c in seen:
                raise ConfigError(f"column {c!r} is both a {seen[c]} column and a {role} column; rename it in the "
                                  f"manifest (or the rating item) so that each name has one meaning",
                                  file=cfg.path)
            seen[c] = role
    primary = cfg.scoring.protocols[0]
    nets = [n.id for n in cfg.scoring.network_list()]
    if "network" not in scores.columns:
        scores = scores.assign(network="")
    sc = scores.pivot_table(index="image", columns=["network", "protocol"], values="score", aggfunc="first")
    sc.columns = [_score_column(n, p, primary, len(cfg.scoring.protocols)) for n, p in sc.columns]
    sc = sc.loc[:, ~sc.columns.duplicated()]
    for n in nets:  # several networks and protocols: score_<network> is its primary protocol's score
        if n and len(cfg.scoring.protocols) > 1:
            sc[f"score_{n}"] = sc[f"score_{n}_{primary}"]
    sc["score"] = sc[_score_column(nets[0], primary, primary, 1)]
    first = scores[(scores["protocol"] == primary) & (scores["network"] == nets[0])]
    extra = first[["image", "condition"]].set_index("image")
    img = inputs[meta_cols].merge(measures, on="image", how="inner").merge(sc.reset_index(), on="image", how="inner")
    img = img.merge(extra.rename(columns={"condition": "score_condition"}).reset_index(), on="image", how="left")
    if items:
        means = ratings.pivot_table(index="image", columns="item", values="value", aggfunc="mean")
        img = img.merge(means.reset_index(), on="image", how="left")
    ctx.write("images", img)
    if items:
        wide = ratings.pivot_table(index=["image", "rater"], columns="item", values="value", aggfunc="first")
        rr = wide.reset_index().merge(img.drop(columns=items), on="image", how="inner")
    else:
        rr = pd.DataFrame(columns=["image", "rater"])
    ctx.write("rating_rows", rr)


def step_reliability(ctx) -> None:
    from ..stats.reliability import item_reliability

    ratings = ctx.read("ratings_long")
    if not len(ratings):
        ctx.write("reliability", pd.DataFrame(columns=["model", "term", "estimate"]))
        return
    parts = []
    for item, d in ratings.groupby("item", sort=False):
        codes = {r: k + 1 for k, r in enumerate(sorted(d["rater"].unique()))}
        # an incomplete design (each rater rates some images): the ICCs use the images with at least the
        # median number of ratings per image, not only those every rater rated
        per_image = d.groupby("image")["value"].count()
        k = max(2, min(len(codes), int(per_image.median()))) if len(per_image) else len(codes)
        long = d.assign(slot=d["rater"].map(codes))
        parts.append(item_reliability(long, item="item", image="image", slot="slot", value="value", k=k,
                                      n_boot=200, seed=ctx.config.audit.seed, model="reliability"))
        per_image = d.dropna(subset=["value"]).groupby("image")["rater"].nunique()
        if len(per_image) >= 5 and (per_image < k).any():
            # an incomplete (planned-missing) design: the ICCs from the crossed rater x image variance
            # components use every rating, not only the images every rater rated
            from ..results import result_frame
            from ..stats.reliability import icc_crossed

            c = icc_crossed(d, image="image", rater="rater", value="value")
            common = dict(model="reliability", item=item, n_obs=c["n_ratings"], n_images=c["n_images"],
                          n_ratings=c["n_ratings"], converged=c["converged"], conf_level=np.nan,
                          method=(f"crossed rater x image variance components (REML) over every rating: "
                                  f"{c['n_images']} images, {c['n_raters']} raters; incomplete design"),
                          warnings="")
            parts.append(result_frame([
                dict(common, term=f"{item}: ICC(A,1) crossed", coefficient="ICC(A,1), crossed variance components",
                     estimate=c["icc1"], k=1),
                dict(common, term=f"{item}: ICC(A,k) crossed", coefficient="ICC(A,k), crossed variance components",
                     estimate=c["icck"], k=c["k"])]))
    ctx.write("reliability", pd.concat(parts, ignore_index=True))


def _model_data(cfg: AuditConfig, m, images: pd.DataFrame, rating_rows: pd.DataFrame) -> pd.DataFrame:
    data = images if m.level == "image" else rating_rows
    used, missing = formula_columns(m.formula, data)
    if missing:
        other = rating_rows if m.level == "image" else images
        hint = ""
        if any(c in other.columns for c in missing):
            hint = f" ({', '.join(c for c in missing if c in other.columns)} exist(s) at the other level: set level = " \
                   f"\"{'rating' if m.level == 'image' else 'image'}\")"
        avail = [c for c in data.columns if not c.startswith("_")]
        raise ConfigError(f"model {m.id!r}: the formula {m.formula!r} uses {missing}, which is not a column at the "
                          f"{m.level} level{hint}; columns are: {', '.join(avail)}", file=cfg.path,
                          table="models", key="formula")
    data = data.copy()
    for c in m.standardize:
        if c not in data.columns:
            raise ConfigError(f"model {m.id!r}: standardize names {c!r}, which is not a column at the {m.level} level",
                              file=cfg.path, table="models", key="standardize")
        v = pd.to_numeric(data[c], errors="coerce")
        if v.notna().sum() < data[c].notna().sum():
            raise ConfigError(f"model {m.id!r}: standardize names {c!r}, which is not numeric; drop it from "
                              f"standardize", file=cfg.path, table="models", key="standardize")
        data[c] = (v - v.mean()) / v.std(ddof=1)
    return data


def fit_model(cfg: AuditConfig, m, data: pd.DataFrame) -> pd.DataFrame:
    """The main fit and the comparison specifications of one ``[[models]]`` entry, stacked."""
    from ..stats.crossed import crossed_mixed, parse_random_effects
    from ..stats.regression import ols

    fixed, factors = parse_random_effects(m.formula)
    parts = []
    if factors:
        main = crossed_mixed(m.formula, data, model=m.id, engine=m.engine, draws=m.draws, tune=m.tune,
                             chains=m.chains, seed=cfg.audit.seed)
    else:
        main, _ = ols(fixed, data, model=m.id)
    parts.append(main.assign(specification="main"))
    for c in m.compare:
        if c == "ols_hc3":
            t, _ = ols(fixed, data, model=m.id, cov_type="HC3")
        else:
            col = c.split(":", 1)[1]
            if col not in data.columns:
                raise ConfigError(f"model {m.id!r}: compare {c!r} clusters by {col!r}, which is not a column at the "
                                  f"{m.level} level", file=cfg.path, table="models", key="compare")
            used, _ = formula_columns(fixed, data)
            d = data.dropna(subset=used + [col])
            from ..stats.cr2 import cluster_table

            _, f = ols(fixed, d, model=m.id)
            # fewer than 50 clusters: CR2 standard errors with t(G - 1) (discbias.stats.cr2), labelled
            t = cluster_table(f, d[col].to_numpy(), model=m.id, formula=fixed)
            t["method"] = t["method"].str.replace("cluster-robust SEs", f"SEs clustered by {col}", regex=False)
        parts.append(t.assign(specification=c))
    out = pd.concat(parts, ignore_index=True)
    return out.assign(level=m.level, standardized=", ".join(m.standardize), formula_spec=m.formula)


def step_models(ctx) -> None:
    cfg: AuditConfig = ctx.config
    images, rr = ctx.read("images"), ctx.read("rating_rows")
    parts = [fit_model(cfg, m, _model_data(cfg, m, images, rr)) for m in cfg.models]
    if parts:
        df = pd.concat(parts, ignore_index=True)
    else:
        df = pd.DataFrame(columns=["model", "term", "estimate", "specification"])
    for c in ("warnings", "method", "formula", "engine", "group_levels", "standardized", "formula_spec", "degenerate"):
        if c in df.columns:
            df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    ctx.write("models", df)


def audit_claims(cfg: AuditConfig, models: pd.DataFrame):
    """The configuration's ``[[claims]]`` as claims-engine :class:`~discbias.claims.Claim` objects."""
    from ..claims import Claim, Specification, result_row

    out = []
    for c in cfg.claims:
        m = next(x for x in cfg.models if x.id == c.model)
        terms = sorted(set(models.loc[models["model"] == m.id, "term"]))
        if c.term not in terms:
            raise ConfigError(f"claim {c.id!r}: model {m.id!r} has no term {c.term!r}; its terms are "
                              f"{', '.join(terms)} (a level of a categorical variable is written like group[b])",
                              file=cfg.path, table="claims", key="term")
        specs = [Specification("main", f"{m.id} (main)", result_row("models", m.id, c.term, specification="main"))]
        specs += [Specification(s, f"{m.id} ({s})", result_row("models", m.id, c.term, specification=s))
                  for s in m.compare]
        out.append(Claim(c.id, c.description, f"{'positive' if c.direction > 0 else 'negative'} {c.term} in {m.id}",
                         c.direction, specs, quantity=c.term, kind="hypothesis", primary="main",
                         estimand=f"coefficient of {c.term} in {m.id}",
                         justification="the model as configured (main); the comparisons change only the standard errors",
                         sesoi=c.sesoi, sesoi_units=c.sesoi_units, sesoi_reference=c.sesoi_reference))
    return out


def step_claims(ctx) -> None:
    from ..claims import evaluate_claims

    cfg: AuditConfig = ctx.config
    models = ctx.read("models")
    table, specs = evaluate_claims({"models": models}, audit_claims(cfg, models))
    table["reading"] = table["verdict"].map(VERDICT_READING)
    ctx.write("claims", table)
    ctx.write("claim_specs", specs)


def step_figures(ctx) -> None:
    from .figures import audit_figures

    cfg: AuditConfig = ctx.config
    files = audit_figures(cfg, ctx.paths, ctx.read("images"), ctx.read("models"), ctx.read("reliability"))
    ctx.write_value("figures", files)


def step_render(ctx) -> None:
    from .report import render_audit

    cfg: AuditConfig = ctx.config
    tables = {n: ctx.read(n) for n in ("images", "scores", "score_failures", "measure_failures", "ratings_long",
                                       "data_issues", "reliability", "models", "claims", "claim_specs")}
    outs = render_audit(cfg, ctx.paths, tables, ctx.read_value("provenance"), ctx.read_value("figures"),
                        formats=ctx.formats, draft=ctx.draft)
    ctx.write_value("report", [str(p) for p in outs])


# ------------------------------------------------------------------------------------------ engine

def audit_engine(cfg: AuditConfig, paths: AuditPaths) -> Engine:
    """The audit's declared steps on an :class:`~discbias.engine.Engine` (one writer per table).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> cfg = NS(model_dump=lambda **k: {}, sha256="x", path=None, audit=NS(name="a"), data=NS(manifest=None),
    ...          ratings={}, scoring=NS(weights="w"))
    >>> import tempfile
    >>> audit_engine(cfg, AuditPaths(tempfile.mkdtemp(), "a")).order()
    ['inputs', 'ratings', 'score', 'measure', 'join', 'reliability', 'models', 'claims', 'figures', 'render']
    """
    conf = cfg.model_dump(mode="json", by_alias=True)
    conf.get("audit", {}).pop("on_invalid", None)  # a parameter of the ratings step only (not of scoring)
    files = _input_digests(cfg)

    def P(*keys, files_of=()):  # a step's settings: its configuration tables and the digests of its local files
        return {k: conf.get(k) for k in keys} | {"files": {k: v for k, v in files.items()
                                                          if k.split(":")[0] in files_of}}

    steps = [
        Step("inputs", step_inputs, writes=["inputs"], group="data", params=P("data", files_of=("manifest",))),
        # the ratings before scoring: with on_invalid = "error" a bad value stops the run before any expensive step
        Step("ratings", step_ratings, reads=["inputs"], writes=["ratings_long", "data_issues"], group="measure",
             params=P("ratings", files_of=("ratings",)) | {"on_invalid": getattr(cfg.audit, "on_invalid", "report")}),
        Step("score", step_score, reads=["inputs"], writes=["scores", "score_failures", "provenance"],
             group="score", params=P("scoring", "audit", files_of=("weights",))),
        # the measures depend on the images and [measures] only (and min_side): a change of networks, protocols or
        # conditioning reuses them
        Step("measure", step_measure, reads=["inputs"], writes=["measures", "measure_failures"], group="measure",
             params=P("measures") | {"min_side": conf.get("scoring", {}).get("min_side")}),
        Step("join", step_join, reads=["inputs", "measures", "scores", "ratings_long"],
             writes=["images", "rating_rows"], group="join", params=P("scoring", "ratings")),
        Step("reliability", step_reliability, reads=["ratings_long"], writes=["reliability"], group="fit",
             params=P("audit")),
        Step("models", step_models, reads=["images", "rating_rows"], writes=["models"], group="fit",
             params=P("models", "audit")),
        Step("claims", step_claims, reads=["models"], writes=["claims", "claim_specs"], group="fit",
             params=P("claims", "models")),
        Step("figures", step_figures, reads=["images", "models", "reliability"], writes=["figures"],
             group="figures", params=P("data", "labels", "models")),
        Step("render", step_render, reads=["images", "scores", "score_failures", "measure_failures", "ratings_long",
                                           "data_issues", "reliability", "models", "claims", "claim_specs", "provenance",
                                           "figures"],
             writes=["report"], group="render",
             params=P("audit", "labels", "data", "scoring", "ratings", "models", "claims",
                      files_of=("manifest", "weights", "ratings")) | {"template": _template_digest()}),
    ]
    return Engine(steps, TableStore(paths.store), manifests=paths.store / ".manifests")


def _template_digest() -> str:
    from .report import TEMPLATE_DIR

    h = hashlib.sha256()
    for f in sorted(TEMPLATE_DIR.glob("*")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def audit(config, *, root=None, formats=("html", "pdf"), draft: bool = False, force: bool = False,
          log=None, on_invalid: str | None = None, progress: bool = False) -> dict:
    """Run an audit configuration end to end; return where everything went.

    Parameters
    ----------
    config : path or AuditConfig
        The audit TOML (see :mod:`discbias.audit.config`).
    root : path, optional
        Project root: outputs go to ``<root>/build/<name>/``, the score cache to
        ``<root>/data/cache`` (or ``$DISCBIAS_CACHE_DIR``). Default: the configuration's folder's
        parent when it is called ``analysis``, else the configuration's folder.
    formats : tuple of str
        Report formats (``html``, ``pdf``).
    draft : bool
        Render-check findings are warnings instead of errors.
    force : bool
        Rerun every step.
    log : callable, optional
        Called with one line per step.
    progress : bool
        Progress bars (count, rate, ETA on stderr) while scoring and measuring (the command line
        shows them unless ``-q``).
    on_invalid : {"report", "error"}, optional
        Overrides ``[audit] on_invalid``: invalid rating values are listed in ``data_issues`` and
        left out ("report"), or stop the run listing every one ("error").

    Returns
    -------
    dict
        ``build`` (folder), ``report`` (files), ``steps`` (the engine's run table), ``tables``
        (folder of the Parquet tables), ``claims`` (the claims table).

    Examples
    --------
    >>> audit("analysis/my-audit.toml")  # doctest: +SKIP
    """
    from ..paths import project_paths

    cfg = config if isinstance(config, AuditConfig) else load_audit_config(config)
    if on_invalid is not None:
        if on_invalid not in ("report", "error"):
            raise ConfigError(f"on_invalid must be 'report' or 'error', not {on_invalid!r}")
        cfg = cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"on_invalid": on_invalid})})
    if root is None:
        here = cfg.path.parent if cfg.path else Path.cwd()
        root = here.parent if here.name == "analysis" else here
    from .validate import preflight

    preflight(cfg)  # every configuration and input-header problem, at once, before scoring and measuring
    pp = project_paths(root)
    paths = AuditPaths(pp.root, cfg.audit.name).ensure()
    eng = audit_engine(cfg, paths)
    steps = eng.run(force=force, log=log, context=dict(config=cfg, paths=paths, cache_dir=pp.score_cache,
                                                       formats=tuple(formats), draft=draft, log=log,
                                                       progress=progress))
    store = eng.store
    return dict(build=paths.build, tables=paths.store, report=[Path(p) for p in store.get_value("report")],
                steps=steps, claims=store.get("claims"))
