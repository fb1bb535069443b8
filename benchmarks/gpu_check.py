"""GPU check: the CUDA fp32 and fp16 paths against CPU fp32, throughput, end-to-end scoring, peak memory.

For whoever has a machine with an NVIDIA GPU for a few minutes (the check takes 1-3 minutes on one
GPU, budgeted to stay under 4). With the project's setup (``make setup``)::

    .venv/bin/python benchmarks/gpu_check.py                  # -> benchmarks/results/gpu_check.json
    .venv/bin/python benchmarks/gpu_check.py --out /tmp/gpu.json --device cuda:1

What it measures, on the official 1024 px discriminator configuration with random weights
(``stylegan3-r-ffhq-1024x1024``: channel_base 32768, 4 fp16 resolutions, conv_clamp 256; the
weights are drawn here, nothing is downloaded):

1. **parity**: logits of the same random images on CPU fp32 vs CUDA fp32 (``force_fp32=True``)
   and CUDA fp16 (the top four resolutions in float16, as NVIDIA's code): maximum absolute and
   relative difference (relative to the largest CPU logit), and whether they are under the
   tolerances (fp32 1e-4, fp16 5e-2 relative);
2. **throughput** in images/s at batch 1, 8, 32 and 64 at 1024 px, fp32 and fp16, with the peak
   GPU memory of each;
3. **end-to-end scoring** with ``discbias.scoring.Scorer`` (DataLoader decoding workers, the
   score cache) of generated 1024 px PNG images: images/s, scored once with cold caches;
4. the peak GPU memory of the whole check.

Everything goes into one JSON file (also printed); the exit status is 1 when a parity tolerance is
exceeded, 2 when no CUDA device is available (the message says so), else 0.

``--dry-run`` runs the same code on the CPU with a tiny 64 px network and small batches, in a few
seconds: the test suite runs it (tests/test_gpu_check.py), so the script is known to work before a
GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_discriminator import CONFIGS  # noqa: E402
from discbias.nets import Discriminator  # noqa: E402

TOL = {"fp32": 1e-4, "fp16": 5e-2}
#: The dry run's network: 64 px, small channels, the fp16 machinery switched on as in the official one.
DRY_CONFIG = dict(c_dim=0, img_resolution=64, img_channels=3, channel_base=1024, channel_max=32, num_fp16_res=2,
                  conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def make_network(config: dict, seed: int = 0) -> Discriminator:
    """The configuration with seeded random weights (reference initialisation, biases N(0, 0.2^2))."""
    torch.manual_seed(seed)
    D = Discriminator(**config).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in D.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return D


def parity(D: Discriminator, device: torch.device, n: int, res: int) -> dict:
    """CPU fp32 logits vs the device's fp32 and fp16 paths on the same random images."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(n, 3, res, res, generator=g) * 2 - 1
    with torch.inference_mode():
        ref = D.cpu()(x, None, force_fp32=True).double()
        Dd = D.to(device)
        xd = x.to(device)
        out = {"n_images": n, "cpu_logits": ref[:, 0].tolist()}
        for name, force in (("fp32", True), ("fp16", False)):
            got = Dd(xd, None, force_fp32=force).double().cpu()
            diff = (got - ref).abs().max().item()
            rel = diff / max(ref.abs().max().item(), 1e-12)
            out[name] = dict(max_abs_diff=diff, max_rel_diff=rel, tolerance_rel=TOL[name], ok=bool(rel <= TOL[name]),
                             finite=bool(torch.isfinite(got).all()), logits=got[:, 0].tolist())
    return out


def throughput(D: Discriminator, device: torch.device, res: int, batches: list[int], seconds: float) -> list[dict]:
    """Images/s and peak memory per (precision, batch); each timed for about ``seconds``."""
    rows = []
    for name, force in (("fp32", True), ("fp16", False)):
        for b in batches:
            x = torch.rand(b, 3, res, res, device=device) * 2 - 1
            _peak_reset(device)
            with torch.inference_mode():
                D(x, None, force_fp32=force)  # warm-up (cuDNN autotuning, allocations)
                _sync(device)
                t0, reps = time.perf_counter(), 0
                while True:
                    out = D(x, None, force_fp32=force)
                    reps += 1
                    _sync(device)
                    dt = time.perf_counter() - t0
                    if dt >= seconds or reps >= 200:
                        break
            rows.append(dict(precision=name, batch=b, reps=reps, images_per_s=round(b * reps / dt, 2),
                             ms_per_batch=round(1000 * dt / reps, 3), peak_mib=_peak_mib(device),
                             finite=bool(torch.isfinite(out).all())))
            print(f"  {name} batch {b:3d}: {rows[-1]['images_per_s']:9.1f} images/s, peak "
                  f"{rows[-1]['peak_mib']} MiB", file=sys.stderr)
            del x
    return rows


def end_to_end(D: Discriminator, device: torch.device, res: int, n: int, batch: int, workers: int) -> dict:
    """Score ``n`` generated PNG images through Scorer (decoding workers, cache), cold start."""
    from PIL import Image

    from discbias.nets import save_discriminator
    from discbias.scoring import ScoreCache, Scorer, ScoringProtocol, discover
    from discbias.scoring.testing import random_image

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        save_discriminator(D.cpu(), d / "D.pt")
        rng = np.random.default_rng(0)
        base = [random_image(rng, (res, res)) for _ in range(8)]
        t0 = time.perf_counter()
        for k in range(n):  # distinct files (distinct hashes) from a few base images
            img = base[k % len(base)].copy()
            img[0, 0] = (k % 256, (k // 256) % 256, 7)
            Image.fromarray(img).save(d / f"{k:05d}.png", compress_level=1)
        gen_s = time.perf_counter() - t0
        out = {}
        for precision, fp32 in (("fp16", False), ("fp32", True)):
            _peak_reset(device)
            scorer = Scorer(d / "D.pt", ScoringProtocol(), device=str(device), fp32=fp32, batch_size=batch,
                            num_workers=workers)
            run = scorer.score_items(discover(d), ScoreCache(d / f"cache-{precision}"), progress=False)
            if run.failed or run.scored != n:
                raise RuntimeError(f"end-to-end scoring: {run.scored} scored, {run.failed} failed of {n}")
            out[precision] = dict(images_per_s=round(n / run.seconds, 2), seconds=round(run.seconds, 2),
                                  peak_mib=_peak_mib(device), protocol=run.protocol.label,
                                  finite=bool(np.isfinite(run.table["score"]).all()))
            print(f"  end to end {precision}: {out[precision]['images_per_s']} images/s", file=sys.stderr)
        return dict(n_images=n, resolution=res, batch_size=batch, workers=workers,
                    generate_seconds=round(gen_s, 2), **out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="CUDA device (default cuda)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    ap.add_argument("--dry-run", action="store_true",
                    help="CPU only, tiny 64 px network, small batches: checks that the script works")
    ap.add_argument("--seconds", type=float, default=None, help="time per throughput cell (default 3; dry run 0.2)")
    ap.add_argument("--e2e-images", type=int, default=None, help="images of the end-to-end run (default 512; dry 12)")
    a = ap.parse_args(argv)
    t_start = time.perf_counter()
    if a.dry_run:
        device, config, batches = torch.device("cpu"), DRY_CONFIG, [1, 2, 4]
        seconds, n_e2e, workers, n_parity = a.seconds or 0.2, a.e2e_images or 12, 1, 4
        torch.set_num_threads(1)  # a tiny network: threads only contend
    else:
        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device is available (torch.cuda.is_available() is False; torch "
                  f"{torch.__version__}, built for CUDA {torch.version.cuda}). Run it on a machine with an NVIDIA "
                  "GPU and a CUDA build of torch, or use --dry-run to check the script on the CPU.", file=sys.stderr)
            return 2
        device, config, batches = torch.device(a.device), CONFIGS[1024], [1, 8, 32, 64]
        seconds, n_e2e, workers, n_parity = a.seconds or 3.0, a.e2e_images or 512, min(8, os.cpu_count() or 1), 4
        torch.backends.cudnn.benchmark = True
    res = config["img_resolution"]
    env = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
               cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
               cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), platform=platform.platform(),
               device=str(device),
               gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None)
    print(f"gpu_check: {'DRY RUN on CPU, ' if a.dry_run else ''}{env['gpu'] or 'cpu'}, {res} px", file=sys.stderr)
    D = make_network(config)
    _peak_reset(device)
    result = dict(dry_run=a.dry_run, resolution=res, config={k: v for k, v in config.items()}, env=env)
    print("parity (CPU fp32 vs device fp32 / fp16)...", file=sys.stderr)
    result["parity"] = parity(D, device, n_parity, res)
    D = D.to(device)
    print("throughput...", file=sys.stderr)
    result["throughput"] = throughput(D, device, res, batches, seconds)
    print("end-to-end scoring...", file=sys.stderr)
    result["end_to_end"] = end_to_end(D, device, res, n_e2e, batch=min(32, max(batches)), workers=workers)
    peaks = [r["peak_mib"] for r in result["throughput"]] + [result["end_to_end"][k]["peak_mib"] for k in ("fp16", "fp32")]
    result["peak_gpu_mib"] = max(peaks) if device.type == "cuda" else None  # the largest of the cells' peaks
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    ok = result["parity"]["fp32"]["ok"] and result["parity"]["fp16"]["ok"]
    result["ok"] = bool(ok)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    p = result["parity"]
    print(f"parity: fp32 max rel diff {p['fp32']['max_rel_diff']:.2e}, fp16 {p['fp16']['max_rel_diff']:.2e} "
          f"({'ok' if ok else 'OVER TOLERANCE'}); {result['seconds']} s; -> {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
