"""``discbias measure-images``: image (and face) measures of a folder, manifest or FFHQ tree.

Kept apart from ``discbias measure`` (the pipeline stage that turns released files into tables):
this command measures pixels. Its default output, ``build/measures/image_measures.parquet``, is
read by the ``fit`` stage like every other measures table.

Sources, decoding and failures follow ``discbias score``: the same image discovery (folder or
manifest CSV with an ``image`` column), the same decoding and conversion rules, bad files listed
(``image, image_sha256, reason``) on stderr and in ``<out stem>.failures.csv``. Exit status: 0 when
every image was measured, 3 when some failed, 2 on a usage or setup error.
"""

from __future__ import annotations

import json
import sys


def _run(args) -> int:
    from ..paths import project_paths
    from ..scoring.cli import EXIT_FAILED_INPUTS
    from ..errors import UserError
    from .io import measure_images

    out = project_paths(args.root).resolve(args.out) if args.out else (project_paths(args.root).measures / "image_measures.parquet")
    try:
        df, failures = measure_images(args.source, out=out, workers=args.workers, faces=args.faces,
                                      mask_dir=args.mask_dir, on_error=args.on_error, progress=not args.quiet,
                                      min_side=args.min_side)
    except UserError as exc:  # bad input or a missing extra; anything else is a bug (traceback, exit 1)
        print(f"discbias measure-images: error: {exc.one_line()}", file=sys.stderr)
        return 2
    s = {"out": str(out), "measured": len(df), "failed": len(failures)}
    fpath = out.with_name(out.stem + ".failures.csv")
    if len(failures):
        failures.to_csv(fpath, index=False)
        s["failures_out"] = str(fpath)
    elif fpath.exists():
        fpath.unlink()  # a stale list from an earlier run would mislead
    print(f"discbias measure-images: {len(df)} measured, {len(failures)} failed -> {out}", file=sys.stderr)
    for r in failures.itertuples():
        print(f"  failed: {r.image}: {r.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(s, indent=2))
    return EXIT_FAILED_INPUTS if len(failures) else 0


def register(sub) -> None:
    """Add ``measure-images`` to the ``discbias`` command line."""
    from ..scoring.images import DEFAULT_MIN_SIDE

    p = sub.add_parser("measure-images", help="colour/luminance/face measures of image files (one row per image)",
                       description="Measure every image that `discbias score` would score: same discovery, decoding "
                                   "and failure rules.")
    p.add_argument("source", help="folder (recursive; png/jpg/jpeg/webp; FFHQ layout works) or manifest CSV with an "
                                  "'image' column")
    p.add_argument("--out", default=None, help="Parquet output (default: build/measures/image_measures.parquet)")
    p.add_argument("--root", default=None, help="project root (default: cwd)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    p.add_argument("--faces", choices=["template", "mediapipe", "haar"], default=None,
                   help="also face measures and skin/background regions (template: FFHQ-aligned images, no model; "
                        "mediapipe/haar need discbias[faces])")
    p.add_argument("--mask-dir", default=None, help="folder of <image_id>.png skin masks (white = skin)")
    p.add_argument("--min-side", type=int, default=DEFAULT_MIN_SIDE, help="smaller images are recorded as failures")
    p.add_argument("--on-error", choices=["report", "error"], default="report",
                   help="bad files: list in <out stem>.failures.csv and skip (report; exit 3) or stop (error; exit 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run)
