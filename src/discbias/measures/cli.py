"""``discbias measure-images``: image (and face) measures of a folder, manifest or FFHQ tree.

Kept apart from ``discbias measure`` (the pipeline stage that turns released files into tables):
this command measures pixels. Its default output, ``build/measures/image_measures.parquet``, is
read by the ``fit`` stage like every other measures table.
"""

from __future__ import annotations

import json
import sys


def _run(args) -> int:
    from .io import ImageSourceError, measure_images
    from ..paths import project_paths

    out = args.out or (project_paths(args.root).measures / "image_measures.parquet")
    try:
        df, errors = measure_images(args.source, out=out, workers=args.workers, faces=args.faces,
                                    mask_dir=args.mask_dir, on_error=args.on_error, progress=not args.quiet)
    except (ImageSourceError, ValueError, ImportError) as exc:
        print(f"discbias measure-images: error: {exc}", file=sys.stderr)
        return 2
    if len(errors):
        err_path = str(out) + ".errors.csv"
        errors.to_csv(err_path, index=False)
        print(f"[discbias] {len(errors)} bad files skipped; listed in {err_path}", file=sys.stderr)
    print(f"[discbias] measured {len(df)} images -> {out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"out": str(out), "n_images": len(df), "n_errors": len(errors)}))
    return 0


def register(sub) -> None:
    """Add ``measure-images`` to the ``discbias`` command line."""
    p = sub.add_parser("measure-images", help="colour/luminance/face measures of image files (one row per image)")
    p.add_argument("source", help="folder (recursive; FFHQ layout works), manifest CSV with a 'path' column, or an image")
    p.add_argument("--out", default=None, help="Parquet output (default: build/measures/image_measures.parquet)")
    p.add_argument("--root", default=None, help="project root (default: cwd)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    p.add_argument("--faces", choices=["template", "mediapipe", "haar"], default=None,
                   help="also face measures and skin/background regions (template: FFHQ-aligned images, no model; "
                        "mediapipe/haar need discbias[faces])")
    p.add_argument("--mask-dir", default=None, help="folder of <image>.png skin masks (white = skin)")
    p.add_argument("--on-error", choices=["report", "error"], default="report",
                   help="bad files: list in <out>.errors.csv and skip (report) or stop (error)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run)
