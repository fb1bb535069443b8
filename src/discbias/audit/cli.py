"""``discbias audit init|run`` and ``discbias plot`` (registered through :data:`discbias.cli.PLUGINS`)."""

from __future__ import annotations

import sys
from pathlib import Path


def _err(cmd: str, exc: BaseException) -> int:
    msg = exc.one_line() if hasattr(exc, "one_line") else str(exc)
    print(f"discbias {cmd}: error: {msg}", file=sys.stderr)
    return 2


def cmd_init(args) -> int:
    from .init import starter_config

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"discbias audit init: error: {out} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    manifest = Path(args.manifest)
    if not manifest.is_file():
        print(f"discbias audit init: error: manifest {manifest} does not exist", file=sys.stderr)
        return 2
    if args.ratings and not Path(args.ratings).is_file():
        print(f"discbias audit init: error: ratings file {args.ratings} does not exist", file=sys.stderr)
        return 2
    text = starter_config(manifest, out, weights=args.weights, name=args.name, ratings=args.ratings)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"discbias audit init: wrote {out}; read every commented guess, then run "
          f"`discbias audit run --config {out}`", file=sys.stderr)
    return 0


def cmd_run(args) -> int:
    from ..errors import UserError
    from ..report.render import RenderError
    from .run import audit

    try:
        out = audit(args.config, root=args.root, formats=tuple(f.strip() for f in args.to.split(",") if f.strip()),
                    draft=args.draft, force=args.force, on_invalid=args.on_invalid,
                    progress=not int(getattr(args, "quiet", 0) or 0),
                    log=lambda line: print(f"[discbias audit] {line}", file=sys.stderr))
    except (UserError, RenderError) as exc:  # anything else is a bug: its traceback is what a maintainer needs
        return _err("audit run", exc)
    for p in out["report"]:
        print(f"[discbias audit] wrote {p}", file=sys.stderr)
    claims = out["claims"]
    for r in claims.itertuples():
        print(f"  claim {r.claim_id}: {r.reading} (estimate {r.estimate:.3g} [{r.conf_low:.3g}, {r.conf_high:.3g}])")
    return 0


def cmd_plot(args) -> int:
    from ..errors import UserError
    from .plot import plot_scores

    try:
        summary = plot_scores(args.scores, x=args.x, by=args.by, y=args.y, out=args.out)
    except UserError as exc:
        return _err("plot", exc)
    print(summary)
    return 0


def register(sub) -> None:
    """Add ``audit`` (``init``, ``run``) and ``plot`` to the ``discbias`` command line."""
    p = sub.add_parser("audit", help="audit any StyleGAN-family discriminator on a labelled image set (one TOML file)")
    asub = p.add_subparsers(dest="audit_cmd", required=True)
    q = asub.add_parser("init", help="write a commented starter configuration from a manifest's columns")
    q.add_argument("manifest", help="CSV or Parquet manifest with an image column and metadata columns")
    q.add_argument("--out", required=True, help="configuration to write, e.g. analysis/my-audit.toml")
    q.add_argument("--weights", default=None, help="weights path or registry name to put in [scoring]")
    q.add_argument("--name", default=None, help="audit name (default: the file's stem)")
    q.add_argument("--ratings", default=None, help="a LONG ratings file (CSV/Parquet: one row per image x rater, or "
                                                   "x item with an item column); one [ratings.<item>] per item")
    q.add_argument("--force", action="store_true", help="overwrite an existing file")
    q.set_defaults(func=cmd_init)
    q = asub.add_parser("run", help="score, measure, join, reliability, models, claims, figures, report")
    q.add_argument("--config", required=True, help="audit configuration (TOML)")
    q.add_argument("--root", default=None, help="project root (default: the folder above analysis/, or the "
                                                "configuration's folder)")
    q.add_argument("--to", default="html,pdf", help="report formats (default html,pdf)")
    q.add_argument("--draft", action="store_true", help="render-check findings are warnings, not errors")
    q.add_argument("--force", action="store_true", help="rerun every step, changed or not")
    q.add_argument("--on-invalid", choices=("report", "error"), default=None,
                   help="invalid rating values (missing, out of the scale, unknown image, duplicate): list them in "
                        "data_issues and leave them out (report), or stop listing every one (error); default: "
                        "[audit] on_invalid, else report")
    q.set_defaults(func=cmd_run)
    q = sub.add_parser("plot", help="quick look: score against a measure (or by group); PNG and a terminal summary")
    q.add_argument("scores", help="a table with a score column (CSV/Parquet: `discbias score --out`, an audit's "
                                  "build/<name>/results/images.csv, ...)")
    q.add_argument("--x", default=None, help="measure column on the x axis (omit for a box plot by group)")
    q.add_argument("--by", default=None, help="group column (colours, and the summary's rows)")
    q.add_argument("--y", default="score", help="value column (default score)")
    q.add_argument("--out", default=None, help="PNG file (default: <scores stem>.<x or by>.png next to the table)")
    q.set_defaults(func=cmd_plot)
