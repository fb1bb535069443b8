"""``discbias score`` and ``discbias cache {ls,export,verify,merge}``.

Exit status of ``score``: 0 when every input was scored (now or from the cache), 3 when some
inputs failed (their number and reasons are in the summary and the ``failures`` output), 2 on a
usage or setup error, 130 when interrupted (every committed batch stays in the cache).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import pandas as pd

from .. import results
from ..defaults import DEFAULTS
from ..errors import UserError
from .cache import CACHE_ENV, CacheError, ScoreCache, cache_path, integrity_problems
from .images import IMAGE_SUFFIXES
from .protocols import FILTERS, GROUPINGS, INPUTS, RESIZES, ProtocolError, ScoringProtocol
from .sources import discover, parse_shard, shard

EXIT_FAILED_INPUTS = 3
#: Defaults shared with the [scoring] table and the Python API (discbias.defaults).
_S, _P = DEFAULTS["scoring"], DEFAULTS["protocol"]


def _err(stage: str, exc: BaseException) -> int:
    msg = exc.one_line() if isinstance(exc, UserError) else str(exc)
    print(f"discbias {stage}: error: {msg}", file=sys.stderr)
    return 2


def write_table(df: pd.DataFrame, out: str | Path) -> Path:
    """Write ``df`` as CSV or Parquet, chosen by the suffix, atomically (:func:`discbias.results.write_table`).

    Raises :class:`~discbias.errors.UserError` for any other suffix (``--out`` names the file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> write_table(pd.DataFrame({"a": [1]}), pathlib.Path(tempfile.mkdtemp()) / "t.xlsx")
    Traceback (most recent call last):
    ...
    discbias.errors.UserError: --out .../t.xlsx: use a .csv or .parquet file name
    """
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise UserError(f"--out {out}: use a .csv or .parquet file name")
    return results.write_table(df, out)


def _add_cache_arg(p):
    p.add_argument("--cache-dir", default=None,
                   help=f"score cache folder or .sqlite file (default: ${CACHE_ENV} or data/cache under --root)")
    p.add_argument("--root", default=None, help="project root (default: $DISCBIAS_ROOT or cwd)")


def register(sub) -> None:
    p = sub.add_parser("score", help="score images with a discriminator into the score cache",
                       description="Score a folder (recursive; " + "/".join(s[1:] for s in IMAGE_SUFFIXES)
                       + "), an FFHQ-layout folder or a manifest CSV (`image` column). Scores already in the "
                       "cache are not recomputed; rerunning an interrupted run resumes it.")
    p.add_argument("source", help="image folder or manifest CSV")
    p.add_argument("--weights", required=True, help="weights file or registry name (e.g. stylegan3-r-ffhq-1024x1024.pkl)")
    p.add_argument("--protocol", choices=INPUTS, default=_P["input"],
                   help="input scaling: nvidia = x/127.5-1 (as trained); grissom2024 = unscaled 0..255, one image per pass")
    p.add_argument("--resize", choices=RESIZES, default=_P["resize"], help="rule for non-square or wrong-size images")
    p.add_argument("--filter", choices=FILTERS, default=_P["filter"], help="resampling filter (antialiased)")
    p.add_argument("--grouping", choices=GROUPINGS, default=_P["grouping"], help="minibatch-std grouping protocol")
    p.add_argument("--reference", default=None, help="reference images (folder or CSV) for --grouping reference-group")
    p.add_argument("--draws", type=int, default=_P["draws"], help="reference draws R averaged per image (reference-group)")
    p.add_argument("--seed", type=int, default=_P["seed"], help="seed of the reference draws")
    p.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    c = p.add_argument_group("class-conditional networks (c_dim > 0); one of")
    c.add_argument("--class", dest="cond_class", type=int, default=None, metavar="K",
                   help="score every image with the one-hot label of class K")
    c.add_argument("--average-classes", action="store_true", help="mean of the scores under every class label")
    c.add_argument("--label-column", default=None, metavar="COLUMN",
                   help="score each image with its own class, read from this manifest column (integers 0..c_dim-1)")
    p.add_argument("--device", default=_S["device"], help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--fp32", action="store_true", help="on CUDA, run every block in float32 (default: fp16 blocks as NVIDIA)")
    p.add_argument("--batch-size", type=int, default=_S["batch_size"], help="images per forward pass (scores agree across batch sizes to float32 rounding, "
                   "within 1e-5 x max(1, |score|); see the README)")
    p.add_argument("--workers", type=int, default=_S["workers"], help="DataLoader decoding workers (0 = main process)")
    p.add_argument("--min-side", type=int, default=_S["min_side"], help="smaller images are recorded as failures")
    p.add_argument("--shard", default=None, help="i/N: score only shard i (0-based) of N, partitioned by image name")
    p.add_argument("--out", default=None, help="write the score table to this .csv or .parquet "
                   "(failures go to <out stem>.failures.csv)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--rehash", action="store_true",
                   help="hash every file again (default: reuse the hash of files whose path, size and mtime are unchanged)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    g = p.add_argument_group("distributed scoring (--engine ray; pip install 'discbias[ray]')")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process and its DataLoader workers; ray: decode in Ray tasks, score in a pool "
                        "of Ray actors (same keys and scores), this process writes the cache")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join: auto, ray://host:10001 (default: start a local Ray instance)")
    g.add_argument("--num-gpus-per-worker", type=float, default=0,
                   help="GPUs per scoring actor (0: CPU actors; --device cuda implies 1)")
    g.add_argument("--ray-actors", type=int, default=None,
                   help="number of scoring actors (default: the cluster's GPUs / --num-gpus-per-worker, or its "
                        "CPUs / --threads minus one for decoding)")
    _add_cache_arg(p)
    p.set_defaults(func=cmd_score)

    c = sub.add_parser("cache", help="inspect, export, verify and merge score caches")
    csub = c.add_subparsers(dest="cache_cmd", required=True)
    q = csub.add_parser("ls", help="one line per provenance, study, weights and protocol, with counts")
    _add_cache_arg(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_cache_ls)
    q = csub.add_parser("export", help="write every score (or a filtered subset) to CSV/Parquet")
    _add_cache_arg(q)
    q.add_argument("--out", required=True, help=".csv or .parquet")
    q.add_argument("--provenance", choices=["computed", "released"], default=None)
    q.add_argument("--study", default=None, help="only released scores of this study")
    q.add_argument("--weights", default=None, help="only scores from weights whose sha256 starts with this")
    q.add_argument("--failures", action="store_true", help="export the failures table instead")
    q.set_defaults(func=cmd_cache_export)
    q = csub.add_parser("verify", help="SQLite integrity check, every row's checksum and key recomputed")
    _add_cache_arg(q)
    q.add_argument("--drop-damaged", action="store_true",
                   help="delete the rows that fail their checksum or key (the next `discbias score` recomputes them)")
    q.set_defaults(func=cmd_cache_verify)
    q = csub.add_parser("merge", help="merge caches (e.g. from --shard runs) into this one")
    _add_cache_arg(q)
    q.add_argument("sources", nargs="+", help="cache folders or .sqlite files to merge in")
    q.set_defaults(func=cmd_cache_merge)


def _cache(args) -> ScoreCache:
    return ScoreCache(cache_path(args.cache_dir, args.root))


def _condition(args) -> str:
    """The protocol's condition from --class / --average-classes / --label-column (at most one)."""
    given = [x for x in (args.cond_class is not None, args.average_classes, bool(args.label_column)) if x]
    if len(given) > 1:
        raise ProtocolError("give at most one of --class, --average-classes and --label-column")
    if args.cond_class is not None:
        return f"class:{args.cond_class}"
    if args.average_classes or args.label_column:
        return "average"  # --label-column: replaced per image by score_by_label
    return ""


def cmd_score(args) -> int:
    from .scorer import Scorer

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        protocol = ScoringProtocol(input=args.protocol, resize=args.resize, filter=args.filter,
                                   grouping=args.grouping, flip=args.flip,
                                   draws=args.draws if args.grouping == "reference-group" else 1,
                                   seed=args.seed if args.grouping == "reference-group" else 0,
                                   condition=_condition(args))
        items = discover(args.source)
        sh = parse_shard(args.shard)
        if sh:
            items = shard(items, *sh)
        cache = _cache(args)
        if getattr(args, "engine", "local") == "ray":
            from .ray_engine import RayScorer

            scorer = RayScorer(args.weights, protocol, device=args.device, fp32=args.fp32, reference=args.reference,
                               batch_size=args.batch_size, min_side=args.min_side, address=args.address,
                               num_gpus_per_worker=args.num_gpus_per_worker, actors=args.ray_actors,
                               threads=args.threads)
        else:
            scorer = Scorer(args.weights, protocol, device=args.device, fp32=args.fp32, reference=args.reference,
                            batch_size=args.batch_size, num_workers=args.workers, min_side=args.min_side)
    except (UserError, OSError, pickle.UnpicklingError) as exc:
        # user errors, unreadable files and the pickle reader's refusals are one line; anything else
        # (a bug) propagates to discbias.cli.main, which prints the traceback and exits 1
        return _err("score", exc)
    done = [0]
    try:
        if getattr(args, "label_column", None):
            from .scorer import score_by_label

            run = score_by_label(scorer, items, cache, args.label_column, progress=not args.no_progress)
        else:
            run = scorer.score_items(items, cache, progress=not args.no_progress, rehash=args.rehash,
                                     on_batch=lambda n: done.__setitem__(0, done[0] + n))
    except ProtocolError as exc:
        return _err("score", exc)
    except CacheError as exc:
        print(f"discbias score: error: {exc} ({done[0]} images of this run were saved before it)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ndiscbias score: interrupted; {done[0]} images of this run are saved in {cache.path}; "
              f"rerun the same command to resume", file=sys.stderr)
        return 130
    s = run.summary()
    s.update(cache=str(cache.path), shard=args.shard)
    if args.out:
        out = write_table(run.table, args.out)
        s["out"] = str(out)
        if run.failed:
            fpath = out.with_name(out.stem + ".failures.csv")
            run.failures.to_csv(fpath, index=False)
            s["failures_out"] = str(fpath)
    print(f"discbias score: {s['scored']} scored, {s['from_cache']} from cache, {s['failed']} failed "
          f"({s['seconds']:.1f}s; {run.protocol.label}; weights {run.weights_sha256[:12]}; cache {cache.path})",
          file=sys.stderr)
    for r in run.failures.itertuples():
        print(f"  failed: {r.image}: {r.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(s, indent=2))
    return EXIT_FAILED_INPUTS if run.failed else 0


def cmd_cache_ls(args) -> int:
    try:
        cache = _cache(args)
        df = cache.summary()
        head = f"# {cache.path}: {cache.count()} scores, {len(cache.failures())} failures"
    except CacheError as exc:
        return _err("cache ls", exc)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    else:
        print(head)
        print(df.to_string(index=False) if len(df) else "(empty)")
    return 0


def cmd_cache_export(args) -> int:
    try:
        cache = _cache(args)
        if args.failures:
            df = cache.failures()
        else:
            where, params = [], []
            if args.provenance:
                where.append("provenance = ?"), params.append(args.provenance)
            if args.study:
                where.append("study = ?"), params.append(args.study)
            if args.weights:
                where.append("weights_sha256 LIKE ?"), params.append(args.weights.lower() + "%")
            df = cache.frame(" AND ".join(where), tuple(params))
        out = write_table(df, args.out)
    except UserError as exc:
        return _err("cache export", exc)
    print(f"discbias cache export: {len(df)} rows -> {out}", file=sys.stderr)
    return 0


def cmd_cache_verify(args) -> int:
    try:
        cache = _cache(args)
    except CacheError as exc:
        path = cache_path(args.cache_dir, args.root)
        found = integrity_problems(path) if path.is_file() and path.stat().st_size else []
        for pr in found[:50]:
            print(f"  {pr}", file=sys.stderr)
        _err("cache verify", exc)
        return 1 if found else 2
    problems = cache.verify()
    for pr in problems:
        print(f"  {pr}", file=sys.stderr)
    try:
        n = str(cache.count())
    except CacheError:
        n = "?"
    print(f"discbias cache verify: {n} scores, {len(problems)} problems ({cache.path})", file=sys.stderr)
    if problems and args.drop_damaged:
        try:
            dropped = cache.drop_damaged()
        except CacheError as exc:
            return _err("cache verify", exc)
        print(f"discbias cache verify: deleted {dropped} damaged rows; rerun `discbias score` to recompute them",
              file=sys.stderr)
        return 0 if not cache.verify() else 1
    return 1 if problems else 0


def cmd_cache_merge(args) -> int:
    try:
        cache = _cache(args)
        total = 0
        for src in args.sources:
            n = cache.merge_from(src)
            total += n
            print(f"discbias cache merge: {n} new scores from {cache_path(src)}", file=sys.stderr)
    except UserError as exc:
        return _err("cache merge", exc)
    print(f"discbias cache merge: {total} new scores; {cache.count()} in {cache.path}", file=sys.stderr)
    return 0
