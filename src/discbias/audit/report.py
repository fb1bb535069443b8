"""The audit report: publication tables, ``values.json`` and the shipped template, rendered by the paper's renderer.

The template (``discbias/audit/templates/audit.qmd.j2``) ships in the package, so an audit needs
no ``report/`` folder of its own. Rendering reuses :mod:`discbias.report.render` (pandoc + Typst,
the same Jinja environment and the same render checks as the paper).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["audit_values", "render_audit", "TEMPLATE_DIR", "model_table", "own_ids"]

TEMPLATE_DIR = Path(__file__).with_name("templates")
#: Data issues printed in the report (all of them are in ``results/data_issues.csv``).
MAX_ISSUES_SHOWN = 100


def _f(x) -> bool:
    return x is not None and not (isinstance(x, float) and np.isnan(x))


def _bool(x) -> bool:
    if isinstance(x, str):
        return x.strip().lower() == "true"
    return bool(x) if _f(x) else False


def model_table(models: pd.DataFrame, model_id: str) -> tuple[pd.DataFrame, list[str]]:
    """One model's terms (rows) beside its specifications (estimate and interval columns per specification).

    Examples
    --------
    >>> m = pd.DataFrame({"model": "m", "term": ["x", "x"], "estimate": [1.0, 1.1], "conf_low": [0.5, 0.4],
    ...                   "conf_high": [1.5, 1.8], "specification": ["main", "ols_hc3"]})
    >>> t, specs = model_table(m, "m"); specs, t.columns.tolist()
    (['main', 'ols_hc3'], ['term', 'est_main', 'lo_main', 'hi_main', 'est_ols_hc3', 'lo_ols_hc3', 'hi_ols_hc3'])
    """
    d = models[models["model"] == model_id]
    specs = list(dict.fromkeys(d["specification"]))
    terms = list(dict.fromkeys(d["term"]))
    out = pd.DataFrame({"term": terms})
    for s in specs:
        e = d[d["specification"] == s].set_index("term").reindex(terms)
        out[f"est_{s}"] = e["estimate"].to_numpy(float)
        out[f"lo_{s}"] = e["conf_low"].to_numpy(float)
        out[f"hi_{s}"] = e["conf_high"].to_numpy(float)
    return out, specs


def _label(id_: str) -> str:
    """The active label dictionary's label (the study's ``[labels]`` over the package defaults)."""
    from ..report.labels import label

    return label(id_)


def _warning_list(ws) -> list[str]:
    """Warnings as stored (a list, an array or one ``"; "``-joined string), one string each."""
    if isinstance(ws, str):
        return [w for w in ws.split("; ") if w]
    if ws is None or (isinstance(ws, float) and np.isnan(ws)):
        return []
    return [str(w) for w in ws if str(w)]


def _spec_label(s: str) -> str:
    if s == "main":
        return "Main model"
    if s == "ols_hc3":
        return "OLS, HC3"
    if s.startswith("cluster:"):
        return f"OLS, clustered by {_label(s.split(':', 1)[1])}"
    return s


def _tables(cfg, paths, t: dict, prov: dict) -> dict:
    """Write every publication table; return facts for values.json."""
    from ..report.escape import md_code, md_text
    from ..report.tables import Col, write_publication_table
    from ..safeio import safe_name

    out = paths.tables
    facts: dict = {}
    net = prov["network"]
    nets = prov.get("networks", [net])
    rows = []
    for n in nets:
        who = f"Network {n['id']}: " if n.get("id") else ""
        rows += [(f"{who}weights", str(n.get("weights", ""))), (f"{who}weights sha256", n.get("weights_sha256", "")),
                 (f"{who}architecture", f"resolution {n.get('resolution')}, c_dim {n.get('c_dim')}"),
                 (f"{who}class conditioning", n.get("condition", prov["condition"]))]
        for p in prov["protocols"]:
            if p.get("network", "") != n.get("id", ""):
                continue
            rows.append((f"{who}protocol {p['protocol']}",
                         f"{p['label']}: {p['scored']} scored now, {p['from_cache']} from the cache, {p['failed']} "
                         f"failed, {p['converted']} converted" + (f" ({p['conversions']})" if p["conversions"] else "")))
    rows = [(k[0].upper() + k[1:], v) for k, v in rows]
    rows.append(("Scoring engine", prov.get("engine", "local")))
    rows += [("discbias version", prov["discbias_version"])]
    rows = [(k, v if "sha256" not in k else v[:16] + "…") for k, v in rows]
    write_publication_table(pd.DataFrame(rows, columns=["field", "value"]), out, "provenance",
                            columns=[Col("field", "Item", fmt="text", relabel=False),
                                     Col("value", "Value", fmt="text", relabel=False)],
                            caption="Provenance: weights, scoring protocol, conversions and failures (the full "
                                    "sha256 of every input is listed below the table).")
    facts["hashes"] = [dict(what=f"weights {n['id']}" if n.get("id") else "weights",
                            sha256=n.get("weights_sha256", "")) for n in nets]
    facts["hashes"].append(dict(what="configuration", sha256=cfg.sha256))
    facts["networks"] = [dict(id=n.get("id", ""), sha=n.get("weights_sha256", "")[:16],
                              column=f"score_{n['id']}" if n.get("id") else "score") for n in nets]
    facts["hashes"] += [dict(what=name.split(":", 1)[1] if ":" in name else name, sha256=sha)
                        for name, sha in prov.get("files", {}).items() if not name.startswith("weights")]
    fails = pd.concat([t["score_failures"].assign(stage="score"),
                       t["measure_failures"].assign(stage="measure", protocol="")], ignore_index=True)
    facts["n_failures"] = int(fails["image"].nunique())
    if len(fails):
        write_publication_table(fails[["stage", "protocol", "image", "reason"]].head(50), out, "failures",
                                columns=[Col("stage", "Stage", fmt="text"), Col("protocol", "Protocol", fmt="text"),
                                         Col("image", "Image", fmt="code"), Col("reason", "Reason", fmt="text",
                                                                                 relabel=False)],
                                caption=f"Images that could not be scored or measured ({len(fails)}; at most 50 "
                                        f"listed).")
    issues = t.get("data_issues", pd.DataFrame())
    facts["n_data_issues"] = int(len(issues))
    facts["n_data_issues_shown"] = int(min(len(issues), MAX_ISSUES_SHOWN))
    if len(issues):
        shown = issues.head(MAX_ISSUES_SHOWN)
        write_publication_table(shown[["file", "line", "item", "column", "value", "problem", "action"]], out,
                                "data_issues",
                                columns=[Col("file", "File", fmt="code"), Col("line", "Line", fmt="int"),
                                         Col("item", "Item", fmt="text"), Col("column", "Column", fmt="code"),
                                         Col("value", "Value", fmt="code"),
                                         Col("problem", "Problem", fmt="text", relabel=False),
                                         Col("action", "Action", fmt="text", relabel=False)],
                                caption=f"Invalid rating values ({len(issues)}"
                                        + (f"; the first {MAX_ISSUES_SHOWN} listed, all in `results/data_issues.csv`"
                                           if len(issues) > MAX_ISSUES_SHOWN else "")
                                        + "): each was left out of the analysis.", label="tbl-data-issues")
    img = t["images"]
    if len(nets) > 1:  # the networks' scores side by side: summary and agreement with the first network
        first = img[facts["networks"][0]["column"] if facts["networks"][0]["id"] else "score"]
        rows = []
        for n in facts["networks"]:
            v = img[n["column"]]
            ok = v.notna() & first.notna()
            rows.append(dict(network=n["id"], n=int(v.notna().sum()), mean=float(v.mean()), sd=float(v.std()),
                             pearson=float(np.corrcoef(v[ok], first[ok])[0, 1]) if ok.sum() > 2 else np.nan,
                             spearman=float(v[ok].rank().corr(first[ok].rank())) if ok.sum() > 2 else np.nan))
        write_publication_table(pd.DataFrame(rows), out, "networks",
                                columns=[Col("network", "Network", fmt="code"), Col("n", "n", fmt="int"),
                                         Col("mean", "Mean", sig=3), Col("sd", "SD", sig=3),
                                         Col("pearson", "Pearson r with the first", digits=3),
                                         Col("spearman", "Spearman \u03c1 with the first", digits=3)],
                                caption=f"The {len(nets)} networks' scores (primary protocol) on the same images, "
                                        f"and their agreement with the first network's.", label="tbl-networks")
    facts["groups"] = []
    for g in cfg.data.groups:
        levels = sorted(img[g].dropna().unique(), key=str)
        s = img.groupby(g, observed=False)["score"].agg(["count", "mean", "std", "median"]).reindex(levels)
        s = s.reset_index().rename(columns={g: "level", "count": "n"})
        s["level"] = s["level"].astype(str)
        slug = safe_name(g).replace("_", "-").replace(".", "-")  # a column name is data: ids and files from safe_name
        write_publication_table(s, out, f"scores_{g}", label=f"tbl-scores-{slug}",
                                columns=[Col("level", _label(g), fmt="text"), Col("n", "n", fmt="int"),
                                         Col("mean", "Mean", digits=3), Col("std", "SD", digits=3),
                                         Col("median", "Median", digits=3)],
                                caption=f"Discriminator score by {md_text(_label(g))} (primary protocol "
                                        f"{md_code(cfg.scoring.protocols[0])}).")
        facts["groups"].append(dict(column=g, name=_label(g), levels=len(levels), table=f"scores_{g}",
                                    figure=f"score_by_{g}", label=f"tbl-scores-{slug}",
                                    fig_label=f"fig-score-by-{slug}"))
    rel = t["reliability"]
    facts["has_reliability"] = bool(len(rel))
    if len(rel):
        r = rel.copy()
        r["k"] = r["k"].astype(float)
        write_publication_table(r, out, "reliability",
                                columns=[Col("item", "Item", fmt="text"), Col("coefficient", "Coefficient", fmt="text"),
                                         Col("estimate", "Estimate", digits=3),
                                         Col("conf_low", "95% CI", fmt="interval", high="conf_high", digits=3),
                                         Col("n_images", "Images", fmt="int"), Col("n_ratings", "Ratings", fmt="int")],
                                caption="Inter-rater reliability per rated item: Krippendorff's alpha (interval "
                                        "level, bootstrap interval over images) and ICC(2,k), ICC(1,k) on the images "
                                        "rated by every rater.")
        facts["reliability_warnings"] = sorted({w for ws in rel["warnings"].fillna("") for w in _warning_list(ws)})
    models = t["models"]
    facts["models"] = []
    for m in cfg.models:
        _, specs = model_table(models, m.id)
        long = models[models["model"] == m.id][["term", "specification", "estimate", "conf_low", "conf_high"]].copy()
        order = {t: i for i, t in enumerate(dict.fromkeys(long["term"]))}
        long = long.assign(_t=long["term"].map(order), _s=long["specification"].map({x: i for i, x in enumerate(specs)}))
        long = long.sort_values(["_t", "_s"]).drop(columns=["_t", "_s"])
        long["specification"] = long["specification"].map(_spec_label)
        long.loc[long["term"].duplicated(), "term"] = ""
        cols = [Col("term", "Term", fmt="text"), Col("specification", "Specification", fmt="text", relabel=False),
                Col("estimate", "Estimate", sig=3),
                Col("conf_low", "95% interval", fmt="interval", high="conf_high", sig=3)]
        d = models[models["model"] == m.id]
        main = d[d["specification"] == "main"]
        conv = bool(main["converged"].map(_bool).all()) if len(main) else False
        near = main.get("re_near_zero", pd.Series(dtype=object)).map(_bool)
        flagged = [_label(str(x)) for x in main.loc[near.fillna(False).astype(bool), "term"]] if len(near) else []
        warns = sorted({w for ws in d["warnings"].fillna("") for w in _warning_list(ws)})
        method = str(main["method"].iloc[0]) if len(main) else ""
        n_obs = int(main["n_obs"].iloc[0]) if len(main) and _f(main["n_obs"].iloc[0]) else 0
        notes = (f"Main model: {method}; n = {n_obs}; converged: {'yes' if conv else 'NO'}."
                 + (f" Near-zero random-effect variance: {', '.join(flagged)}." if flagged else "")
                 + (" Warnings (quoted as the fitting library wrote them): "
                    + "; ".join(f"\u201c{w}\u201d" for w in warns) + "." if warns else ""))
        label = f"tbl-model-{m.id.replace('_', '-')}"
        write_publication_table(long, out, f"model_{m.id}", columns=cols,
                                caption=f"Model {md_text(_label(m.id))} ({md_code(m.formula)}, {md_text(m.level)} level"
                                        + (f", standardized: {md_text(', '.join(map(_label, m.standardize)))}"
                                           if m.standardize else "")
                                        + ") beside its comparison specifications.", label=label, notes=notes)
        diag = {}
        if "r_hat" in main.columns and main["r_hat"].notna().any():
            diag = dict(max_rhat=float(main["r_hat"].max()), min_ess=float(main[["ess_bulk", "ess_tail"]].min().min()),
                        divergences=int(main["divergences"].max()))
        facts["models"].append(dict(id=m.id, name=_label(m.id), formula=m.formula, level=m.level, engine=m.engine, converged=conv,
                                    near_zero=flagged, n_obs=n_obs, method=method, table=f"model_{m.id}",
                                    label=label, figure=f"model_{m.id}",
                                    fig_label=f"fig-model-{m.id.replace('_', '-')}",
                                    specs=[_spec_label(s) for s in specs], n_warnings=len(warns), **diag))
    claims = t["claims"]
    facts["claims"] = claims[["claim_id", "verdict", "reading"]].to_dict("records")
    if len(claims):
        c = claims.copy()
        c["term"] = [next(x.term for x in cfg.claims if x.id == i) for i in c["claim_id"]]
        write_publication_table(c, out, "claims",
                                columns=[Col("claim_id", "Claim", fmt="code"), Col("description", "Hypothesis",
                                                                                   fmt="text", relabel=False),
                                         Col("term", "Term", fmt="code"), Col("estimate", "Estimate", digits=3),
                                         Col("conf_low", "95% interval", fmt="interval", high="conf_high", digits=3),
                                         Col("n_supporting", "Supporting", fmt="int"),
                                         Col("n_specifications", "Specifications", fmt="int"),
                                         Col("reading", "Verdict", fmt="text", relabel=False)],
                                caption="Claims: the main model's estimate and the verdict over every "
                                        "specification.")
    return facts


def audit_values(cfg, paths, tables: dict, provenance: dict) -> dict:
    """The audit's ``values.json`` (every fact the report prints); writes the publication tables
    (``build/<name>/tables``) with the study's ``[labels]``."""
    from ..report.labels import set_labels
    from .config import input_digests as _input_digests

    prov = dict(provenance, files=_input_digests(cfg))
    set_labels(dict(cfg.labels))  # the study's [labels] in every table cell and header, caption and note
    try:
        facts = _tables(cfg, paths, tables, prov)
    finally:
        set_labels()
    img = tables["images"]
    return dict(meta=dict(build_date=time.strftime("%Y-%m-%d"), name=cfg.audit.name,
                          title=cfg.audit.title or f"Discriminator audit: {cfg.audit.name}",
                          stand_in=bool(cfg.audit.stand_in_weights), config=cfg.path.name if cfg.path else "",
                          config_sha256=cfg.sha256),
                provenance=prov, n_images=int(len(img)), n_listed=int(prov["n_images"]),
                n_ratings=int(len(tables["ratings_long"])),
                items=list(cfg.ratings), measures=[c for c in img.columns if c in _measure_names()],
                primary_protocol=cfg.scoring.protocols[0], **facts)


def render_audit(cfg, paths, tables: dict, values: dict, figures: dict, *, formats=("html", "pdf"),
                 draft: bool = False) -> list[Path]:
    """Write ``build/<name>/report/<name>.{qmd,html,pdf}`` from ``values`` (:func:`audit_values`)
    and the figures, and run the render checks.

    Raises
    ------
    discbias.report.render.RenderError
        A value, table or figure is missing, pandoc or Typst fails, or (unless ``draft``) a
        render check finds a problem.
    """
    from ..report.labels import set_labels

    labels = dict(cfg.labels)
    set_labels(labels)
    try:
        return _render(cfg, paths, tables, dict(values, figures=figures), labels, formats=formats, draft=draft)
    finally:
        set_labels()


def own_ids(cfg, tables: dict) -> list[str]:
    """The study's own column ids: what the raw-identifier check looks for in the report's body text.

    Manifest columns (with the wide rating columns and the class-label column), the measures, the
    rated items, the score columns and ``rater``; not file names, formulas or model ids, which the
    report prints as code.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> cfg = NS(ratings={"hair_length": NS(columns=None)}, scoring=NS(label_column=None), data=NS(groups=["region"]))
    >>> own_ids(cfg, {"images": pd.DataFrame(columns=["image", "region", "luma_709", "score", "hair_length"])})
    ['hair_length', 'luma_709', 'region', 'score']
    """
    ids = set(tables["images"].columns) | set(cfg.ratings) | set(cfg.data.groups)
    for rc in cfg.ratings.values():
        ids |= set(rc.columns or [])
    for net in cfg.scoring.network_list() if hasattr(cfg.scoring, "network_list") else [cfg.scoring]:
        if net.label_column:
            ids.add(net.label_column)
    if "rating_rows" in tables:
        ids |= set(tables["rating_rows"].columns)
    return sorted(str(i) for i in ids - {"image", "_path"})


def _render(cfg, paths, tables, values, labels, *, formats, draft) -> list[Path]:
    import jinja2

    from ..report.checks import ADVISORY, checks_report, format_findings, layout_limits, run_checks
    from ..report.render import (PAGE_MARGIN, RenderError, make_environment, outputs_removed_on_failure, render_html,
                                 render_pdf)
    from ..results import atomic_write_text

    env = make_environment(TEMPLATE_DIR, paths, labels)
    try:
        text = env.get_template("audit.qmd.j2").render(values=values, page_margin=PAGE_MARGIN)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"the audit template uses a value that does not exist: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"the audit template was refused by the sandbox: {exc}") from None
    paths.report.mkdir(parents=True, exist_ok=True)
    if cfg.audit.stand_in_weights:
        _watermark(paths.report / "stand-in.png")
    qmd = paths.report / f"{cfg.audit.name}.qmd"
    atomic_write_text(qmd, text)
    outs, warnings = [qmd], []
    with outputs_removed_on_failure(qmd):  # no HTML left behind as if finished when the PDF fails
        if "html" in formats:
            outs.append(render_html(qmd, warnings))
        if "pdf" in formats:
            outs.append(render_pdf(qmd, paths.build, warnings))
    limits = layout_limits(cfg.paper.model_dump() if hasattr(cfg, "paper") else None)
    findings = run_checks(qmd=qmd, html=qmd.with_suffix(".html") if "html" in formats else None,
                          pdf=qmd.with_suffix(".pdf") if "pdf" in formats else None,
                          typ=qmd.with_suffix(".typ") if "pdf" in formats else None, root=paths.build,
                          warnings=warnings, label_keys=own_ids(cfg, tables), margin=PAGE_MARGIN, **limits)
    atomic_write_text(paths.report / "render_checks.txt", checks_report(findings, limits=limits))
    findings = [f for f in findings if f.check not in ADVISORY]
    report = format_findings(findings)
    if findings and not draft:
        raise RenderError(f"{len(findings)} render check(s) failed (see {paths.report / 'render_checks.txt'}; "
                          f"`discbias audit run --draft` downgrades them to warnings):\n{report}")
    return outs


def _watermark(out: Path) -> Path:
    """The "stand-in weights" page background, as pixels (text in the PDF would trip the overlap check)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.27, 11.69), dpi=60)
    fig.text(0.5, 0.5, "STAND-IN WEIGHTS", rotation=55, fontsize=64, color="#e4e4e4", ha="center", va="center",
             weight="bold")
    fig.savefig(out, transparent=True)
    plt.close(fig)
    return out


def _measure_names() -> list[str]:
    from ..measures.image import IMAGE_MEASURES

    return list(IMAGE_MEASURES)
