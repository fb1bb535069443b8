"""``discbias <stage>``: one entry point for every stage of the pipeline.

Progress and logs go to stderr (``logging``; ``-v/--verbose``, ``-q/--quiet``); ``--json`` prints
machine-readable results to stdout. Exit status: 0 done, 2 a user error (one line on stderr: a
configuration key, a missing file, a stale build...), 1 a bug (its traceback on stderr); some
commands add their own (``discbias score``: 3 when inputs failed; ``discbias verify``: 1 when the
rebuild differs).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__
from .config import load_config
from .defaults import DEFAULT_CONFIG
from .errors import EXIT_BUG, EXIT_USER_ERROR, UserError
from .log import setup_logging
from .paths import project_paths


def common_options(p: argparse.ArgumentParser) -> None:
    """Add ``--config`` and ``--root``, the options every pipeline stage takes (plugins use it too).

    Examples
    --------
    >>> p = argparse.ArgumentParser(); common_options(p)
    >>> p.parse_args([]).config
    'analysis/grissom2024.toml'
    """
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
    common_options(p)
    p.add_argument("--offline", action="store_true", help="never use the network")
    p = sub.add_parser("measure", help="turn raw files into tidy tables (build/measures)")
    common_options(p)
    p.add_argument("--on-invalid", choices=["report", "error"], default=None,
                   help="invalid values: set missing and list them (report) or stop (error)")
    p = sub.add_parser("fit", help="fit every model; write build/results and build/values.json")
    common_options(p)
    p.add_argument("--json", action="store_true", help="print the claims table as JSON on stdout")
    p = sub.add_parser("figures", help="figures and publication tables (build/figures, build/tables)")
    common_options(p)
    p = sub.add_parser("render", help="render build/report/paper.{qmd,html,pdf}")
    common_options(p)
    p.add_argument("--to", default="html,pdf", help="comma-separated formats: html, pdf (default both), latex (a standalone paper.tex), docx, jats (through pandoc)")
    p.add_argument("--templates", default=None, help="template folder (default: report/)")
    p.add_argument("--no-quarto", action="store_true", help="use pandoc + Typst even if quarto is installed")
    p.add_argument("--draft", action="store_true",
                   help="render checks that fail print warnings instead of failing the render (while drafting)")
    p = sub.add_parser("report", help="run every stage (fetch, measure, fit, figures, render)")
    common_options(p)
    p = sub.add_parser("steps", help="list the engine's steps in run order: group, reads, writes, and why each would rerun")
    common_options(p)
    p.add_argument("--json", action="store_true", help="print the declarations (one row per step x table) as JSON")
    import importlib

    for mod in PLUGINS:
        importlib.import_module(mod).register(sub)
    _add_verbosity(parser, top=True)
    for sp in _each_subparser(parser):
        if not any("--verbose" in a.option_strings or "--quiet" in a.option_strings for a in sp._actions):
            _add_verbosity(sp, top=False)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` (counted), accepted before and after the subcommand."""
    default = 0 if top else argparse.SUPPRESS  # a subcommand's flag must not reset the top-level one
    parser.add_argument("-v", "--verbose", action="count", default=default,
                        help="more progress and diagnostics on stderr (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="count", default=default,
                        help="only warnings and errors on stderr")


def _each_subparser(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                yield sp
                yield from _each_subparser(sp)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    A :class:`~discbias.errors.UserError` (a mistake the user can fix: a configuration key, a
    missing file, a stale build) prints one line and returns 2; any other exception is a bug:
    its traceback is printed to stderr and the status is 1.

    Examples
    --------
    >>> main(["fit", "--config", "no/such/study.toml"])
    2
    """
    args = build_parser().parse_args(argv)
    setup_logging(int(getattr(args, "verbose", 0) or 0) - int(getattr(args, "quiet", 0) or 0))
    import os

    from .progress import QUIET_ENV, set_quiet

    quiet_before = os.environ.get(QUIET_ENV)
    if int(getattr(args, "quiet", 0) or 0) > 0:
        set_quiet(True)  # every progress bar (and those of the processes this run starts)
    stage = args.stage
    try:
        return _run(args)
    except UserError as exc:
        print(f"discbias {stage}: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"discbias {stage}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: show where it happened
        traceback.print_exc(file=sys.stderr)
        print(f"discbias {stage}: internal error ({type(exc).__name__}): this is a bug in discbias, not a problem "
              "with your input; the traceback is above (please report it)", file=sys.stderr)
        return EXIT_BUG
    finally:  # a -q run called in-process (tests, notebooks) does not silence the caller's later bars
        if quiet_before is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = quiet_before


def _run(args) -> int:
    if getattr(args, "func", None) is not None:
        return int(args.func(args) or 0)
    from . import pipeline

    paths = project_paths(args.root)
    if args.stage in ("report", "steps"):  # any study: the replication or an audit
        return _run_study(args, paths)
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
    return 0


def _run_study(args, paths) -> int:
    """``report`` and ``steps`` for a study of any kind (:func:`discbias.studies.kind.open_study`)."""
    import logging

    from .studies.kind import open_study

    study = open_study(paths.config(args.config), args.root)
    if args.stage == "report":
        log = logging.getLogger("discbias")
        study.run(log=lambda line: log.info(f"{study.id} {line}"))
        return 0
    engine = study.engine()
    if args.json:
        print(engine.declarations().to_json(orient="records", indent=2))
        return 0
    st = engine.status().set_index("step")["reason"]
    for name in engine.order():
        s = engine.step(name)
        why = st[name] or "up to date"
        print(f"{s.group:8s} {name:22s} {why}\n{'':31s}reads:  {', '.join(s.inputs) or '-'}\n"
              f"{'':31s}writes: {', '.join(s.outputs) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
