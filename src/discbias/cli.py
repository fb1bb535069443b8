"""``discbias <stage>``: one entry point for every stage of the pipeline.

Progress and logs go to stderr; ``--json`` prints machine-readable results to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .config import ConfigError, load_config
from .fetch import FetchError
from .paths import project_paths
from .pipeline import DEFAULT_CONFIG


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"study configuration (default: {DEFAULT_CONFIG})")
    p.add_argument("--root", default=None, help="project root holding data/ and build/ (default: cwd)")


#: Modules that add subcommands. Each defines ``register(subparsers)``, which adds its parsers and
#: sets ``func=<callable(args) -> int>`` with ``set_defaults``; a new stage is one line here.
PLUGINS: list[str] = [
    "discbias.scoring.cli",
    "discbias.measures.cli",
    "discbias.probes.cli",
    "discbias.reproduce.cli",
    "discbias.audit.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="discbias", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"discbias {__version__}")
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("fetch", help="download released data (or copy from $DISCBIAS_DATA_MIRROR), sha256-verified")
    _common(p)
    p.add_argument("--offline", action="store_true", help="never use the network")
    p = sub.add_parser("measure", help="turn raw files into tidy tables (build/measures)")
    _common(p)
    p.add_argument("--on-invalid", choices=["report", "error"], default=None,
                   help="invalid values: set missing and list them (report) or stop (error)")
    p = sub.add_parser("fit", help="fit every model; write build/results and build/values.json")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the claims table as JSON on stdout")
    p = sub.add_parser("figures", help="figures and publication tables (build/figures, build/tables)")
    _common(p)
    p = sub.add_parser("render", help="render build/report/paper.{qmd,html,pdf}")
    _common(p)
    p.add_argument("--to", default="html,pdf", help="comma-separated formats: html, pdf (default both)")
    p.add_argument("--templates", default=None, help="template folder (default: report/)")
    p.add_argument("--no-quarto", action="store_true", help="use pandoc + Typst even if quarto is installed")
    p.add_argument("--draft", action="store_true",
                   help="render checks that fail print warnings instead of failing the render (while drafting)")
    p = sub.add_parser("report", help="run every stage (fetch, measure, fit, figures, render)")
    _common(p)
    import importlib

    for mod in PLUGINS:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    from . import pipeline
    from .engine import StepError
    from .report.render import RenderError

    if getattr(args, "func", None) is not None:
        return int(args.func(args) or 0)
    try:
        paths = project_paths(args.root)
        config = load_config(paths.config(args.config))
        if args.stage == "fetch":
            pipeline.run_fetch(config, paths, allow_download=not args.offline)
        elif args.stage == "measure":
            pipeline.run_measure(config, paths, on_invalid=args.on_invalid)
        elif args.stage == "fit":
            ctx = pipeline.run_fit(config, paths)
            if args.json:
                print(ctx.results["claims"].to_json(orient="records", indent=2))
        elif args.stage == "figures":
            pipeline.run_figures(config, paths)
        elif args.stage == "render":
            pipeline.run_render(config, paths, formats=tuple(f.strip() for f in args.to.split(",") if f.strip()),
                                template_dir=paths.resolve(args.templates) if args.templates else None,
                                use_quarto=False if args.no_quarto else None, draft=args.draft)
        elif args.stage == "report":
            pipeline.run_all(paths.config(args.config), args.root)
    except (ConfigError, FetchError, RenderError, pipeline.StaleBuildError, FileNotFoundError, KeyError,
            ValueError, StepError) as exc:  # DeclarationError is a ValueError, MissingInputError a FileNotFoundError
        print(f"discbias {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
