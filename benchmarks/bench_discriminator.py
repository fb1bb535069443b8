"""Throughput, peak memory and achieved GFLOP/s of discbias.nets.Discriminator.

Usage::

    python benchmarks/bench_discriminator.py            # 256 and 1024, batch 1/4/8 (~5 min on 2 CPU cores)
    python benchmarks/bench_discriminator.py --quick    # 256 b1/b4 and 1024 b1 (< 1 min)
    python benchmarks/bench_discriminator.py --variants # speed ablations (channels_last, FIR, grad modes, compile)

Networks use the official configurations with random weights (the speed does
not depend on the values): 256 = ``stylegan3-r-ffhqu-256x256`` (channel_base
16384), 1024 = ``stylegan3-r-ffhq-1024x1024`` (channel_base 32768). Each
(resolution, batch) runs in a fresh subprocess so that its peak resident
memory is its own. Results are printed as a table and written to
``benchmarks/results/bench_discriminator.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from discbias.nets import Discriminator, discriminator_flops  # noqa: E402

CONFIGS = {
    256: dict(c_dim=0, img_resolution=256, img_channels=3, channel_base=16384, channel_max=512, num_fp16_res=4,
              conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4)),
    1024: dict(c_dim=0, img_resolution=1024, img_channels=3, channel_base=32768, channel_max=512, num_fp16_res=4,
               conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4)),
}


_CLOCK = time.perf_counter


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(res: int, batch: int, device_name: str, reps: int, force_fp32: bool, channels_last: bool) -> dict:
    """Time one (resolution, batch) configuration in this process."""
    device = torch.device(device_name)
    torch.manual_seed(0)
    D = Discriminator(**CONFIGS[res]).eval().requires_grad_(False).to(device)
    if channels_last:
        D = D.to(memory_format=torch.channels_last)
    img = torch.rand(batch, 3, res, res, device=device) * 2 - 1
    if channels_last:
        img = img.contiguous(memory_format=torch.channels_last)
    flops = discriminator_flops(D)["total"]
    with torch.inference_mode():
        D(img[:1], force_fp32=force_fp32)  # warm-up (thread pools, kernel selection, cuDNN autotune)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rss_before = _rss_bytes()
        times = []
        for _ in range(reps):
            t0 = _CLOCK()
            out = D(img, force_fp32=force_fp32)
            _sync(device)
            times.append(_CLOCK() - t0)
    assert out.shape == (batch, 1) and torch.isfinite(out).all()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    best = min(times)
    rec = dict(
        resolution=res, batch=batch, device=device_name, dtype="fp32" if (force_fp32 or device.type != "cuda") else "mixed",
        reps=reps, seconds=times, best_s=best, images_per_s=batch / best, gflop_per_image=flops / 1e9,
        gflop_per_s=flops * batch / best / 1e9, peak_rss_mib=peak_rss / 2**20,
        forward_rss_increase_mib=max(peak_rss - rss_before, 0) / 2**20,
    )
    if device.type == "cuda":
        rec["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return rec


_CLOCK_NAME = "wall"


def _subprocess(res: int, batch: int, device: str, reps: int, force_fp32: bool, channels_last: bool) -> dict:
    cmd = [sys.executable, __file__, "--one", str(res), str(batch), "--device", device, "--reps", str(reps),
           "--clock", _CLOCK_NAME, "--threads", str(torch.get_num_threads())]
    if force_fp32:
        cmd.append("--force-fp32")
    if channels_last:
        cmd.append("--channels-last")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_variants(res: int, batch: int, reps: int) -> list[dict]:
    """Ablation of implementation choices, measured interleaved in one process (min over reps)."""
    import discbias.nets.fir as fir_mod
    import discbias.nets.layers as layers_mod

    torch.manual_seed(0)
    D = Discriminator(**CONFIGS[res]).eval().requires_grad_(False)
    img = torch.rand(batch, 3, res, res) * 2 - 1
    D_nchw = Discriminator(**CONFIGS[res]).eval().requires_grad_(False)
    D_nchw.load_state_dict(D.state_dict())
    D_nchw.channels_last_cpu = False
    orig_fir = fir_mod.fir_filter2d

    def separable_fir(x, f, padding=(0, 0, 0, 0), down=1, impl="auto", factors=None):
        return orig_fir(x, f, padding, down=down, impl="separable", factors=factors)

    def use_fir(fn):
        layers_mod.fir_filter2d = fn

    variants = {
        "default (channels_last, strided 2-D FIR, inference_mode)": lambda: (use_fir(orig_fir), D(img)),
        "NCHW memory format": lambda: (use_fir(orig_fir), D_nchw(img)),
        "separable FIR (two strided 1-D passes)": lambda: (use_fir(separable_fir), D(img)),
    }

    def no_grad_run():
        use_fir(orig_fir)
        with torch.inference_mode(False), torch.no_grad():
            D(img)

    variants["torch.no_grad instead of inference_mode"] = no_grad_run
    compiled = None
    try:
        compiled = torch.compile(D)
        with torch.inference_mode():
            t0 = time.perf_counter()
            compiled(img)
            compile_s = time.perf_counter() - t0
        variants["torch.compile (inductor)"] = lambda: (use_fir(orig_fir), compiled(img))
    except Exception as exc:  # noqa: BLE001 - report why compile is unavailable
        compile_s = None
        print(f"torch.compile unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.inference_mode():
        for fn in variants.values():
            fn()
        names = list(variants)
        for rep in range(reps):
            order = names[rep % len(names):] + names[:rep % len(names)]  # rotate: no position bias
            for name in order:
                fn = variants[name]
                t0 = _CLOCK()
                fn()
                times[name].append(_CLOCK() - t0)
    use_fir(orig_fir)
    base = min(times[next(iter(times))])
    out = []
    for name, t in times.items():
        out.append(dict(variant=name, resolution=res, batch=batch, best_s=min(t), seconds=t,
                        relative_to_default=min(t) / base))
    if compile_s is not None:
        out.append(dict(variant="torch.compile first call (compile time)", resolution=res, batch=batch,
                        best_s=compile_s, seconds=[compile_s], relative_to_default=compile_s / base))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 b1/b4 and 1024 b1 only (< 1 min)")
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (cpu, plus cuda when present)")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per configuration")
    ap.add_argument("--variants", action="store_true", help="run the implementation ablation instead")
    ap.add_argument("--variant-res", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall: perf_counter; cpu: process CPU time (robust on a shared machine; use with --threads 1)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_discriminator.json")
    ap.add_argument("--one", nargs=2, type=int, metavar=("RES", "BATCH"), help=argparse.SUPPRESS)
    ap.add_argument("--force-fp32", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global _CLOCK, _CLOCK_NAME
    if args.threads:
        torch.set_num_threads(args.threads)
    _CLOCK_NAME = args.clock
    _CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.clock == "cpu" and args.device == "cuda":
        ap.error("--clock cpu measures CPU time; use --clock wall for CUDA")

    if args.one:
        res, batch = args.one
        print(json.dumps(run_one(res, batch, args.device, args.reps or 1, args.force_fp32, args.channels_last)))
        return 0

    meta = dict(clock=args.clock, torch=torch.__version__, python=platform.python_version(), machine=platform.machine(),
                processor=platform.processor(), cpu_threads=torch.get_num_threads(),
                load_average=os.getloadavg() if hasattr(os, "getloadavg") else None,
                cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    results: dict = {}
    if args.variants:
        reps = args.reps or 3
        print(f"clock={args.clock} threads={torch.get_num_threads()} load_average={meta['load_average']}")
        rows = run_variants(args.variant_res, 1, reps)
        results["variants"] = dict(meta=meta, rows=rows)
        print(f"{'variant':50s} {'best s':>8s} {'vs default':>10s}")
        for r in rows:
            print(f"{r['variant']:50s} {r['best_s']:8.3f} {r['relative_to_default']:10.2f}")
    else:
        devices = ["cpu"] if args.device == "auto" else [args.device]
        if args.device == "auto" and torch.cuda.is_available() and args.clock == "wall":
            devices.append("cuda")
        plan = [(256, 1), (256, 4), (1024, 1)] if args.quick else [(r, b) for r in (256, 1024) for b in (1, 4, 8)]
        rows = []
        header = (f"{'device':6s} {'dtype':5s} {'res':>5s} {'batch':>5s} {'img/s':>8s} {'s/batch':>8s} "
                  f"{'GFLOP/img':>9s} {'GFLOP/s':>8s} {'peak MiB':>9s} {'fwd +MiB':>9s}")
        print(f"clock={args.clock} threads={torch.get_num_threads()} load_average={meta['load_average']}"
              + (" (rates are per CPU-second)" if args.clock == "cpu" else ""))
        print(header)
        for device in devices:
            modes = [False] if device == "cpu" else [False, True]
            for force_fp32 in modes:
                for res, batch in plan:
                    reps = args.reps or (2 if (res == 256 or device == "cuda") else 1)
                    if device == "cuda":
                        reps = max(reps, 10)
                    r = _subprocess(res, batch, device, reps, force_fp32, False)
                    rows.append(r)
                    peak = r.get("peak_cuda_mib", r["peak_rss_mib"])
                    print(f"{device:6s} {r['dtype']:5s} {res:5d} {batch:5d} {r['images_per_s']:8.3f} {r['best_s']:8.3f} "
                          f"{r['gflop_per_image']:9.1f} {r['gflop_per_s']:8.1f} {peak:9.0f} "
                          f"{r['forward_rss_increase_mib']:9.0f}", flush=True)
        results["quick" if args.quick else "runs"] = dict(meta=meta, rows=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = {}
    if args.out.exists():
        try:
            existing = json.loads(args.out.read_text())
        except json.JSONDecodeError:
            existing = {}
    existing.update(results)
    args.out.write_text(json.dumps(existing, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
