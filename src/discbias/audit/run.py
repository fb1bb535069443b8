"""``discbias audit run``: an audit is a study like the replication, built by the same engine.

Its steps are made with the study factories of :mod:`discbias.stages` (:func:`steps`) and put in
the sequence every study shares by :func:`discbias.stages.build_steps` (:func:`definition`):
the shared ``measure:data_issues``, ``publish:results`` (``build/<name>/results/*.csv``),
``fit:values`` (``build/<name>/values.json``) and ``render`` steps around them. The engine derives
the order from the declarations and reruns only what changed. Tables live in the study's store
(:class:`~discbias.paths.ProjectPaths` with the audit's name: ``build/<name>/measures/`` and
``build/<name>/engine/store/``), the report in ``build/<name>/report/<name>.{qmd,html,pdf}``.

=================================  =====================  ==============================================
table                              written by             content
=================================  =====================  ==============================================
``measures/inputs``                ``audit:inputs``       the manifest: one row per image with its metadata
``results/ratings_long``           ``audit:ratings``      item, image, rater, value (valid ratings only)
``issues/audit:ratings``           ``audit:ratings``      every invalid rating value (file, line, column...)
``results/scores``                 ``audit:score``        one row per image x network x protocol
``results/score_failures``         ``audit:score``        images that could not be scored, with the reason
``measures/score_provenance``      ``audit:score``        weights sha256, networks, protocols, conditioning
``measures/image_measures``        ``audit:measure``      image measures, one row per image
``results/measure_failures``       ``audit:measure``      images that could not be measured
``results/images``                 ``audit:join``         image level: metadata + measures + scores + ratings
``measures/rating_rows``           ``audit:join``         rating level: one row per image x rater
``results/data_issues``            ``measure:data_issues``  every measure step's issues (shared step)
``results/reliability``            ``audit:reliability``  ICC(2,k), ICC(1,k), Krippendorff's alpha per item
``results/models``                 ``audit:models``       tidy estimates of every model and specification
``results/claims``                 ``audit:claims``       one verdict per claim; ``claim_specs`` per spec.
``values``                         ``fit:values``         ``values.json`` (and the publication tables)
``figures/audit:figures``          ``audit:figures``      the figure files written
``report/render``                  ``render``             the report files written
=================================  =====================  ==============================================
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..engine import Engine, Step
from ..paths import ProjectPaths
from ..errors import ConfigError, UserError
from .config import AuditConfig, input_digests as _input_digests, load_audit_config
from ..safeio import describe_columns
from .common import (_FORMULA_FUNCS, _WORD, AuditError, _score_column, formula_columns,  # noqa: F401 (re-exported)
                     score_columns)

__all__ = ["audit", "audit_engine", "AuditError", "VERDICT_READING"]

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

def measure_inputs(ctx):
    """The manifest (one row per image with its metadata): measure ``inputs``."""
    df, _ = read_manifest(ctx.config)
    return {"inputs": df}, None


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
    return bool(ctx.extra.get("progress", False))


def _log(ctx):
    return ctx.extra.get("log") or (lambda line: None)


def _condition_text(net) -> str:
    return (f"each image's class from column '{net.label_column}'" if net.label_column
            else f"class {net.class_}" if net.class_ is not None
            else "mean over all classes" if net.average_classes else "none (unconditional network)")


def measure_score(ctx, tables):
    """Score every image with every network and protocol: ``scores``, ``score_failures`` and the
    scoring's provenance (``score_provenance``)."""
    from ..scoring.cache import ScoreCache
    from ..scoring.protocols import ProtocolError, ScoringProtocol
    from ..scoring.scorer import score_by_label

    cfg: AuditConfig = ctx.config
    s = cfg.scoring
    inputs = tables["measures/inputs"]
    cache = ScoreCache(ctx.paths.score_cache)
    tables, fails, prov, nets = [], [], [], []
    log = _log(ctx)
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
    provenance = dict(network=nets[0], networks=nets, protocols=prov, condition=nets[0]["condition"],
                      device=s.device, engine=s.engine, n_images=int(len(inputs)), discbias_version=__version__,
                      stand_in_weights=bool(cfg.audit.stand_in_weights))
    return {"scores": scores, "score_failures": pd.concat(fails, ignore_index=True),
            "score_provenance": provenance}, None


def measure_images(ctx, tables):
    """The image measures, once for every network: ``image_measures`` and ``measure_failures``."""
    from ..measures.image import IMAGE_MEASURES
    from ..measures.io import measure_file

    cfg: AuditConfig = ctx.config
    inputs = tables["measures/inputs"]
    want = list(IMAGE_MEASURES) if cfg.measures.image == ["all"] else list(cfg.measures.image)
    unknown = [m for m in want if m not in IMAGE_MEASURES]
    if unknown:
        raise ConfigError(f"[measures] unknown image measure(s) {unknown}; choose from {', '.join(IMAGE_MEASURES)} "
                          f"or [\"all\"]", file=cfg.path, table="measures", key="image")
    faces = None if cfg.measures.faces == "none" else cfg.measures.faces
    rows, fails = [], []
    _log(ctx)(
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
    return {"image_measures": pd.DataFrame(rows),
            "measure_failures": pd.DataFrame(fails, columns=["image", "reason"])}, None


def measure_ratings(ctx, tables):
    """Every rating as one long table (``ratings_long``); every invalid value is an issue (the shared
    ``measure:data_issues`` step lists them in ``results/data_issues``)."""
    from .ratings import collect_ratings

    cfg: AuditConfig = ctx.config
    manifest = cfg.resolve(cfg.data.manifest) if cfg.data.manifest else None
    long, issues = collect_ratings(cfg, tables["measures/inputs"], manifest)
    return {"ratings_long": long}, issues


def measure_join(ctx, tables):
    """The image-level table (``images``: metadata, measures, scores, mean ratings) and the rating-level
    one (``rating_rows``)."""
    cfg: AuditConfig = ctx.config
    inputs, measures, scores = tables["measures/inputs"], tables["measures/image_measures"], tables["results/scores"]
    ratings = tables["results/ratings_long"]
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
    if items:
        wide = ratings.pivot_table(index=["image", "rater"], columns="item", values="value", aggfunc="first")
        rr = wide.reset_index().merge(img.drop(columns=items), on="image", how="inner")
    else:
        rr = pd.DataFrame(columns=["image", "rater"])
    return {"images": img, "rating_rows": rr}, None


def fit_reliability(ctx) -> None:
    """ICC(2,k), ICC(1,k) and Krippendorff's alpha per rated item (``results/reliability``)."""
    from ..stats.reliability import item_reliability

    ratings = ctx.results["ratings_long"]
    ctx.values["reliability"] = dict(items=sorted(map(str, ratings["item"].unique())) if len(ratings) else [])
    if not len(ratings):
        ctx.results["reliability"] = pd.DataFrame(columns=["model", "term", "estimate"])
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
    ctx.results["reliability"] = pd.concat(parts, ignore_index=True)


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


def fit_models(ctx) -> None:
    """Every ``[[models]]`` entry with its comparison specifications (``results/models``)."""
    cfg: AuditConfig = ctx.config
    images, rr = ctx.results["images"], ctx.measures["rating_rows"]
    parts = [fit_model(cfg, m, _model_data(cfg, m, images, rr)) for m in cfg.models]
    if parts:
        df = pd.concat(parts, ignore_index=True)
    else:
        df = pd.DataFrame(columns=["model", "term", "estimate", "specification"])
    for c in ("warnings", "method", "formula", "engine", "group_levels", "standardized", "formula_spec", "degenerate"):
        if c in df.columns:
            df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    ctx.results["models"] = df
    ctx.values["models"] = dict(ids=[m.id for m in cfg.models])


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


def fit_claims(ctx) -> None:
    """One verdict per ``[[claims]]`` entry (``results/claims``; ``results/claim_specs`` per specification)."""
    from ..claims import evaluate_claims

    cfg: AuditConfig = ctx.config
    models = ctx.results["models"]
    table, specs = evaluate_claims({"models": models}, audit_claims(cfg, models))
    table["reading"] = table["verdict"].map(VERDICT_READING)
    ctx.results["claims"] = table
    ctx.results["claim_specs"] = specs
    ctx.values["claims"] = dict(verdicts={str(k): int(v) for k, v in table["verdict"].value_counts().items()})


def figures(ctx) -> None:
    """Every figure of the audit report (``build/<name>/figures``)."""
    from .figures import audit_figures

    files = audit_figures(ctx.config, ctx.paths, ctx.results["images"], ctx.results["models"],
                          ctx.results["reliability"])
    ctx.saved += [f"figure:{Path(f).stem}" for f in files.values()]


#: The tables the report prints (its name for each, and the store's).
REPORT_TABLES = {"images": "results/images", "scores": "results/scores", "score_failures": "results/score_failures",
                 "measure_failures": "results/measure_failures", "ratings_long": "results/ratings_long",
                 "data_issues": "results/data_issues", "reliability": "results/reliability", "models": "results/models",
                 "claims": "results/claims", "claim_specs": "results/claim_specs"}


def _values(cfg, fit_steps):
    """The audit's ``fit:values`` step: ``values.json`` and the publication tables it describes."""
    def run(ctx) -> None:
        import time

        from .report import audit_values

        started = time.time_ns() - 1_000_000_000  # the file system's clock is coarser than time_ns
        tables = {n: ctx.read(t) for n, t in REPORT_TABLES.items()}
        values = audit_values(ctx.config, ctx.paths, tables, ctx.read_value("measures/score_provenance"))
        for f in sorted(ctx.paths.tables.glob("*")):  # the publication tables this run wrote
            if f.is_file() and f.stat().st_mtime_ns >= started:
                ctx.wrote_file(f)
        ctx.write_value("values", values)

    conf = cfg.model_dump(mode="json", by_alias=True)
    conf.get("audit", {}).pop("on_invalid", None)
    # values.json prints the configuration's title, labels, groups, items, models and claims
    return run, [*REPORT_TABLES.values(), "measures/score_provenance"], ["values"], conf


def _render(formats=("html", "pdf"), draft: bool = False):
    def render(cfg, paths):
        def run(ctx) -> None:
            from .report import render_audit

            tables = {n: ctx.read(t) for n, t in REPORT_TABLES.items()}
            figs = {}  # each figure the figure steps saved, by its file's stem
            for t in ctx.step.inputs:
                if t.startswith("figures/") and ctx.has(t):
                    figs.update({i.split(":", 1)[1]: f"{i.split(':', 1)[1]}.svg" for i in ctx.read_value(t)["saved"]
                                 if i.startswith("figure:")})
            outs = render_audit(ctx.config, ctx.paths, tables, ctx.read_value("values"), figs,
                                formats=ctx.extra.get("formats", formats), draft=ctx.extra.get("draft", draft))
            for o in outs:
                ctx.wrote_file(o)
            ctx.write_value("report/render", dict(files=[Path(o).name for o in outs]))

        conf = cfg.model_dump(mode="json", by_alias=True)
        return run, list(REPORT_TABLES.values()), dict(template=_template_digest(), formats=list(formats),
                                                       draft=bool(draft), labels=conf.get("labels"))

    return render


#: Measure-step tables the audit publishes (``build/<name>/results/<t>.csv``, bundled and verified
#: number by number): the per-image and per-rating tables, not only the fits.
PUBLISHED = {t: f"results/{t}" for t in ("scores", "score_failures", "measure_failures", "ratings_long", "images")}


def steps(cfg: AuditConfig, paths: ProjectPaths) -> list[Step]:
    """The audit's steps, built with the study factories (:mod:`discbias.stages`).

    Each step's parameters are the configuration tables it depends on and the digests of its local
    files (not the whole configuration, which the replication's steps read): a change of networks,
    protocols or conditioning reuses the measures, a new model reuses the scores.
    """
    from ..stages import figure_step, fit_step, measure_step

    conf = cfg.model_dump(mode="json", by_alias=True)
    conf.get("audit", {}).pop("on_invalid", None)  # a parameter of the ratings step only (not of scoring)
    files = _input_digests(cfg)

    def P(*keys, files_of=()):  # a step's settings: its configuration tables and the digests of its local files
        return {k: conf.get(k) for k in keys} | {"files": {k: v for k, v in files.items()
                                                          if k.split(":")[0] in files_of}}

    own = dict(external=())  # no configuration stamp: each step declares its sections in params
    return [
        measure_step("audit:inputs", measure_inputs, writes=["inputs"], params=P("data", files_of=("manifest",)),
                     **own),
        # the ratings before scoring: with on_invalid = "error" a bad value stops the run before any expensive step
        measure_step("audit:ratings", measure_ratings, reads=["measures/inputs"], writes=["ratings_long"],
                     rename=PUBLISHED,
                     params=P("ratings", files_of=("ratings",)) | {"on_invalid": getattr(cfg.audit, "on_invalid",
                                                                                            "report")}, **own),
        measure_step("audit:score", measure_score, reads=["measures/inputs"],
                     writes=["scores", "score_failures", "score_provenance"], rename=PUBLISHED,
                     params=P("scoring", "audit", files_of=("weights",)), **own),
        # the measures depend on the images and [measures] only (and min_side)
        measure_step("audit:measure", measure_images, reads=["measures/inputs"],
                     writes=["image_measures", "measure_failures"], rename=PUBLISHED,
                     params=P("measures") | {"min_side": conf.get("scoring", {}).get("min_side")}, **own),
        measure_step("audit:join", measure_join, reads=["measures/inputs", "measures/image_measures", "results/scores",
                                                        "results/ratings_long"],
                     writes=["images", "rating_rows"], rename=PUBLISHED, params=P("scoring", "ratings"), **own),
        fit_step("audit:reliability", fit_reliability, section="reliability", results=["ratings_long"],
                 writes=["reliability"], params=P("audit"), **own),
        fit_step("audit:models", fit_models, section="models", measures=["rating_rows"], results=["images"],
                 writes=["models"],
                 params=P("models", "audit"), **own),
        fit_step("audit:claims", fit_claims, section="claims", results=["models"], writes=["claims", "claim_specs"],
                 params=P("claims", "models"), **own),
        figure_step("audit:figures", figures, results=["images", "models", "reliability"],
                    params=P("data", "labels", "models"), **own),
    ]


def definition(formats=("html", "pdf"), draft: bool = False):
    """The audit as a study (:class:`discbias.stages.StudyDefinition`): its steps (:func:`steps`),
    the shared data-issues step, ``publish:results``, its values and its render."""
    import sys

    from ..stages import StudyDefinition

    return StudyDefinition("audit", lambda cfg: [sys.modules[__name__]], _values, _render(formats, draft),
                           external=(), shared=frozenset({"data_issues"}))


# ------------------------------------------------------------------------------------------ engine

def audit_engine(cfg: AuditConfig, paths: ProjectPaths, formats=("html", "pdf"), draft: bool = False) -> Engine:
    """The audit's engine: :func:`discbias.stages.build_steps` of its :func:`definition` (the same
    sequence of steps as every study) on its build's store.

    Examples
    --------
    >>> from discbias.audit.config import load_audit_config
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.toml").write_text('[audit]\\nname = "a"\\n[data]\\nmanifest = "m.csv"\\n'
    ...                               '[scoring]\\nweights = "D.pkl"\\n')
    >>> audit_engine(load_audit_config(d / "a.toml"), ProjectPaths(d, "a")).order()  # doctest: +NORMALIZE_WHITESPACE
    ['audit:inputs', 'audit:ratings', 'audit:score', 'audit:measure', 'audit:join', 'measure:data_issues',
     'audit:reliability', 'audit:models', 'audit:claims', 'publish:results', 'fit:values', 'audit:figures', 'render']
    """
    from ..stages import build_engine

    return build_engine(cfg, paths, definition(formats, draft))


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
    paths = project_paths(root, cfg.audit.name).ensure()
    eng = audit_engine(cfg, paths, tuple(formats), draft)
    steps = eng.run(force=force, log=log, context=dict(config=cfg, paths=paths, formats=tuple(formats), draft=draft,
                                                       log=log, progress=progress))
    store = eng.store
    return dict(build=paths.build, tables=paths.store,
                report=[paths.report / f for f in store.get_value("report/render")["files"]],
                steps=steps, claims=store.get("results/claims"))
