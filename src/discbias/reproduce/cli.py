"""``discbias bundle`` and ``discbias verify`` (registered through :data:`discbias.cli.PLUGINS`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: Exit statuses of ``discbias verify``.
EXIT_MATCH, EXIT_DIFFERENT, EXIT_BAD_BUNDLE = 0, 1, 2


def _err(stage: str, msg: str) -> None:
    print(f"discbias {stage}: error: {msg}", file=sys.stderr)


def register(sub) -> None:
    """Add the ``bundle`` and ``verify`` subcommands."""
    from ..cli import common_options

    p = sub.add_parser("bundle", help="write build/bundle/<study>-<commit>.zip: results, values, claims, provenance, "
                                      "configuration, paper, environment lock, sha256 manifest, RO-Crate metadata")
    common_options(p)
    p.add_argument("--out", default=None, help="zip to write (default: build/bundle/<study>-<git short hash>.zip)")
    p.add_argument("--templates", default=None, help="template folder the paper was rendered from (default: report/)")
    p.set_defaults(func=run_bundle)
    p = sub.add_parser("verify", help="compare a rebuild with a bundle number by number (exit 0 match, 1 differs, "
                                      "2 bundle unreadable, tampered or from another study)")
    common_options(p)
    p.add_argument("bundle", help="the bundle zip written by `discbias bundle`")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--build", default=None, help="build folder to compare (default: build/ of --root)")
    g.add_argument("--rebuild", action="store_true",
                   help="run fetch, measure and fit into build/verify/rebuild/ first and compare that")
    p.add_argument("--out", default=None, help="report folder (default: build/verify)")
    p.add_argument("--templates", default=None, help="template folder, to compare its hash (default: report/)")
    p.set_defaults(func=run_verify)


def run_bundle(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..paths import project_paths
    from ..studies.kind import open_study
    from .bundle import make_bundle

    try:
        paths = project_paths(args.root)
        study = open_study(paths.config(args.config), args.root,
                           template_dir=paths.resolve(args.templates) if args.templates else None)
        path = make_bundle(study, out=paths.resolve(args.out) if args.out else None)
    except UserError as exc:
        _err("bundle", exc.one_line())
        return 2
    from .bundle import read_bundle

    meta = read_bundle(path).meta
    if meta["dirty"]:
        print(f"discbias bundle: warning: the results were fitted with uncommitted changes; the bundle records "
              f"commit {meta['commit_short']}, which does not hold them (commit, rebuild and bundle again)",
              file=sys.stderr)
    if meta["bundled_at_commit"] and meta["commit"] and meta["bundled_at_commit"] != meta["commit"]:
        print(f"discbias bundle: note: the results were fitted at commit {meta['commit_short']}, the code is now at "
              f"{meta['bundled_at_commit'][:7]}; the bundle names the fitting commit", file=sys.stderr)
    print(path)
    return 0


def rebuild_into(study) -> Path:
    """Rebuild a study's results and values into ``<its build>/verify/rebuild`` (the raw data and
    the score cache shared through a link to ``data/``); returns the new build folder."""
    import shutil

    root = study.paths.build / "verify" / "rebuild"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return study.rebuild(root)


def run_verify(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..errors import UserError
    from ..paths import project_paths
    from ..studies.kind import open_study
    from .bundle import BundleError, read_bundle
    from .verify import Tolerances, verify_build, write_report

    try:
        bundle = read_bundle(args.bundle)
    except BundleError as exc:
        _err("verify", str(exc))
        return EXIT_BAD_BUNDLE
    paths = project_paths(args.root)
    try:
        study = open_study(paths.config(args.config), args.root,
                           template_dir=paths.resolve(args.templates) if args.templates else None)
        tol = Tolerances.from_config(study.config)
    except ConfigError as exc:
        _err("verify", exc.one_line() if hasattr(exc, "one_line") else str(exc))
        return EXIT_BAD_BUNDLE
    if bundle.meta.get("study_id") != study.id:
        _err("verify", f"bundle {args.bundle} is from study '{bundle.meta.get('study_id')}', the configuration "
                       f"{args.config} is study '{study.id}': pass the study's configuration with --config")
        return EXIT_BAD_BUNDLE
    try:
        build = paths.resolve(args.build) if args.build else (rebuild_into(study) if args.rebuild else study.paths.build)
        values = build / "values.json"
        if values.exists():
            import json

            vmeta = json.loads(values.read_text()).get("meta", {})
            built_for = vmeta.get("study_id", vmeta.get("name"))
            if built_for not in (None, study.id):
                _err("verify", f"{values} is a build of study '{built_for}', the bundle {args.bundle} is study "
                               f"'{study.id}': compare a build of the same study")
                return EXIT_BAD_BUNDLE
        result = verify_build(bundle, build, tol, template_dir=study.template_dir)
        out = paths.resolve(args.out) if args.out else study.paths.build / "verify"
        written = write_report(result, tol, out)
    except UserError as exc:  # anything else is a bug: traceback and exit 1 (discbias.cli.main)
        _err("verify", exc.one_line())
        return EXIT_BAD_BUNDLE
    t = result.tables
    print(f"discbias verify: {int(t['compared'].fillna(0).sum())} rows compared in {len(t)} tables; "
          f"{int(t['differing'].fillna(0).sum())} differing, {int(t['missing'].fillna(0).sum())} missing, "
          f"{int(t['extra'].fillna(0).sum())} extra; {len(result.boundary)} decision(s) at a decision boundary; "
          f"{len(result.verdicts)} verdict(s) changed; "
          f"{len(result.environment)} environment difference(s). Report: {written[0]}", file=sys.stderr)
    def t(x) -> str:  # text from the bundle: no control characters (terminal escapes) reach the terminal
        return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(x))[:300]

    for _, v in result.verdicts.iterrows():
        why = f" (at a decision boundary: {t(v['at_boundary'])})" if v.get("at_boundary") else ""
        print(f"  verdict changed: {t(v['claim_id'])}: {t(v['verdict_bundle'])} -> {t(v['verdict_rebuild'])}{why}",
              file=sys.stderr)
    for _, d in result.boundary.head(20).iterrows():
        print(f"  at a boundary: {t(d['table'])} [{t(d['key'])}] {t(d['column'])}: {t(d['bundle'])} -> "
              f"{t(d['rebuild'])} ({t(d['rule'])})", file=sys.stderr)
    for _, d in result.differences.head(20).iterrows():
        m = d.get("mcse_multiple")
        moved = f", moved {m:.1f} MCSE" if isinstance(m, float) and m == m else ""
        print(f"  {t(d['table'])} [{t(d['key'])}] {t(d['column'])}: {t(d['bundle'])} -> {t(d['rebuild'])} "
              f"({t(d['rule'])}{moved})", file=sys.stderr)
    return result.exit_code
