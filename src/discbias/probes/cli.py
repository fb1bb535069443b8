"""``discbias probe`` (generate, measure and score the probe images of a study configuration's
``[probes]`` table, through the score cache) and ``discbias probes-demo`` (the watermarked demo)."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def _probe(args) -> int:
    from ..analyses import probes as analysis
    from ..config import load_config
    from ..errors import UserError
    from ..paths import project_paths
    from ..pipeline import MeasureContext
    from ..results import write_table

    try:
        paths = project_paths(args.root).ensure()
        config = load_config(paths.config(args.config))
        s = analysis.settings(config, paths)
        if not s["available"]:
            print(f"discbias probe: cannot run: {s['reason']}.\n{s['how_to']}", file=sys.stderr)
            return 2
        made, _ = analysis.measure(MeasureContext(config, paths))
    except UserError as exc:
        print(f"discbias probe: error: {exc.one_line()}", file=sys.stderr)
        return 2
    for name, df in made.items():
        write_table(df, paths.measures / f"{name}.parquet")
        log.info("wrote %s (%d rows)", paths.measures / f"{name}.parquet", len(df))
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(args.config, args.root, tuple(f for f in args.to.split(",") if f))
    return 0


def register(sub) -> None:
    """Add ``probe`` and ``probes-demo`` to the ``discbias`` command line."""
    from ..pipeline import DEFAULT_CONFIG
    from .demo import DEFAULT_CONFIG as DEMO_CONFIG

    p = sub.add_parser("probe", help="controlled colour/luminance probes of D (needs weights; scores are cached)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="study configuration with a [probes] table")
    p.add_argument("--root", default=None, help="project root (default: cwd)")
    p.set_defaults(func=_probe)
    p = sub.add_parser("probes-demo", help="watermarked mechanics demo of the probes with an untrained D")
    p.add_argument("--config", default=DEMO_CONFIG)
    p.add_argument("--root", default=None)
    p.add_argument("--to", default="html,pdf")
    p.set_defaults(func=_demo)
