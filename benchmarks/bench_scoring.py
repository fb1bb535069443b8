"""Benchmark of the scoring stage: end-to-end, decode-only, forward-only and cache-hit images/s.

Generates a folder of 1024x1024 PNG and JPEG images (half each), a random discriminator with the
official StyleGAN3 FFHQ-1024 architecture (or weights given with --weights), and measures

* end-to-end images/s and peak resident memory of a cold run (fresh cache), in a fresh process, at
  N/2 and N images (memory must not grow with the number of images);
* decode-only images/s (DataLoader workers reading, hashing, decoding and resizing);
* forward-only images/s (preloaded uint8 batches);
* cache-hit images/s (rescoring the already scored folder; target: >= 100x the cold run).

Usage::

    PYTHONPATH=src python benchmarks/bench_scoring.py --n 32 --device cpu
    PYTHONPATH=src python benchmarks/bench_scoring.py --n 512 --device cuda --batch-size 16 --workers 8

Prints a table and writes ``benchmarks/results/bench_scoring.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def make_folder(folder: Path, n: int, res: int) -> None:
    from PIL import Image

    from discbias.scoring.testing import random_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        img = Image.fromarray(random_image(rng, (res, res)))
        if k % 2:
            img.save(folder / f"{k:05d}.jpg", quality=90)
        else:
            img.save(folder / f"{k:05d}.png", compress_level=1)


def _peak_rss_mb() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(me, kids) / 1024


def child_end_to_end(args) -> None:
    """Run in a fresh process: cold scoring of a folder; print JSON."""
    import torch

    from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, discover

    if args.threads:
        torch.set_num_threads(args.threads)
    items = discover(args.folder)[: args.limit]
    cache = ScoreCache(args.cache)
    s = Scorer(args.weights, ScoringProtocol(), device=args.device, batch_size=args.batch_size,
               num_workers=args.workers)
    if s.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    run = s.score_items(items, cache, progress=False)
    dt = time.perf_counter() - t0
    out = dict(n=len(items), seconds=dt, images_per_s=len(items) / dt, scored=run.scored, peak_rss_mb=_peak_rss_mb(),
               own_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               worker_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    if s.device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="images in the folder (half PNG, half JPEG)")
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--weights", default=None, help="weights file (default: random D, official architecture)")
    ap.add_argument("--channel-base", type=int, default=32768)
    ap.add_argument("--channel-max", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--workdir", default=None, help="keep images/cache here (default: a temporary folder)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_end_to_end(args)
        return

    import torch

    from discbias.nets import Discriminator, save_discriminator
    from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, discover
    from discbias.scoring.scorer import _collate, _Files

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scoring-"))
    folder = work / "images"
    t0 = time.perf_counter()
    if not folder.exists() or len(list(folder.iterdir())) != args.n:
        make_folder(folder, args.n, args.resolution)
    gen_s = time.perf_counter() - t0
    weights = args.weights
    if weights is None:
        weights = work / "D.pt"
        if not weights.exists():
            torch.manual_seed(0)
            D = Discriminator(0, args.resolution, 3, channel_base=args.channel_base, channel_max=args.channel_max,
                              num_fp16_res=4, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4))
            save_discriminator(D, weights)
    results = dict(n=args.n, resolution=args.resolution, device=args.device, batch_size=args.batch_size,
                   workers=args.workers, threads=torch.get_num_threads(), weights=str(weights),
                   channel_base=args.channel_base, channel_max=args.channel_max, python=platform.python_version(),
                   torch=torch.__version__, cpu_count=os.cpu_count(), generate_seconds=gen_s,
                   folder_mb=sum(p.stat().st_size for p in folder.iterdir()) / 2**20)
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name(0)

    # end to end, cold, in fresh processes at N/2 and N images (peak memory must stay flat)
    for label, limit in (("half", args.n // 2), ("full", args.n)):
        cache = work / f"cache-{label}"
        if cache.exists():
            for f in cache.iterdir():
                f.unlink()
        cmd = [sys.executable, __file__, "--child", "--folder", str(folder), "--cache", str(cache), "--limit",
               str(limit), "--weights", str(weights), "--device", args.device, "--batch-size", str(args.batch_size),
               "--workers", str(args.workers)] + (["--threads", str(args.threads)] if args.threads else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[f"end_to_end_{label}"] = json.loads(out.stdout.strip().splitlines()[-1])

    items = discover(folder)
    scorer = Scorer(weights, ScoringProtocol(), device=args.device, batch_size=args.batch_size, num_workers=args.workers)
    # decode only
    ds = _Files([it.path for it in items], scorer.resolution, "stretch", "lanczos", 32)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers, collate_fn=_collate)
    t0 = time.perf_counter()
    batches = [torch.stack([b["x"] for b in batch]) for batch in loader]
    dt = time.perf_counter() - t0
    results["decode_only_images_per_s"] = len(items) / dt
    # forward only (preloaded uint8 batches; first batch is a warm-up)
    scorer.forward_uint8(batches[0])
    if scorer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in batches:
        scorer.forward_uint8(b)
    if scorer.device.type == "cuda":
        torch.cuda.synchronize()
    results["forward_only_images_per_s"] = len(items) / (time.perf_counter() - t0)
    # cache hit: rescoring the scored folder
    cache = ScoreCache(work / "cache-full")
    t0 = time.perf_counter()
    run = scorer.score_items(items, cache, progress=False)
    dt = time.perf_counter() - t0
    assert run.from_cache == len(items), run.summary()
    results["cache_hit_images_per_s"] = len(items) / dt
    cold = results["end_to_end_full"]["images_per_s"]
    results["cache_hit_speedup"] = results["cache_hit_images_per_s"] / cold
    results["peak_rss_ratio_full_over_half"] = (results["end_to_end_full"]["peak_rss_mb"]
                                                / results["end_to_end_half"]["peak_rss_mb"])

    rows = [("images", f"{args.n} x {args.resolution}^2 (PNG+JPEG, {results['folder_mb']:.0f} MiB)"),
            ("device", results.get("gpu", args.device) + f", batch {args.batch_size}, workers {args.workers}, "
                                                         f"threads {results['threads']}"),
            ("end-to-end (N/2) images/s", f"{results['end_to_end_half']['images_per_s']:.2f}"),
            ("end-to-end (N) images/s", f"{cold:.2f}"),
            ("peak RSS N/2 -> N (MiB)", f"{results['end_to_end_half']['peak_rss_mb']:.0f} -> "
                                        f"{results['end_to_end_full']['peak_rss_mb']:.0f} "
                                        f"(ratio {results['peak_rss_ratio_full_over_half']:.2f})"),
            ("decode-only images/s", f"{results['decode_only_images_per_s']:.2f}"),
            ("forward-only images/s", f"{results['forward_only_images_per_s']:.2f}"),
            ("cache-hit images/s", f"{results['cache_hit_images_per_s']:.1f}"),
            ("cache-hit / cold", f"{results['cache_hit_speedup']:.0f}x (target >= 100x: "
                                 f"{'met' if results['cache_hit_speedup'] >= 100 else 'NOT met'})")]
    if "peak_cuda_mb" in results["end_to_end_full"]:
        rows.append(("peak CUDA memory (MiB)", f"{results['end_to_end_full']['peak_cuda_mb']:.0f}"))
    w = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_scoring.json").write_text(json.dumps(results, indent=2))
    print(f"written {out / 'bench_scoring.json'}")


if __name__ == "__main__":
    main()
