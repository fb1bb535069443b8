"""Benchmark: probe generation (images/s) per probe at 256 and 1024 px, and cached vs uncached scoring
through the scoring stage (Scorer.score_arrays and its ScoreCache).

Run: ``PYTHONPATH=src python benchmarks/bench_probes.py``. Prints a table and writes
``benchmarks/results/bench_probes.json``.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from discbias.probes import interventions as iv
from discbias.probes.generate import base_from_array, generate_probes, probe_plan


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--score-n", type=int, default=16)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    res = {}
    print(f"{'probe':24s} {'size':>5s} {'images/s':>9s}")
    for size in [int(s) for s in a.sizes.split(",")]:
        b = [base_from_array("b", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))]
        for probe in iv.PROBES:
            plan = probe_plan(b, {probe: [1.0 if probe != "hue_rotation" else 60.0, 0.5 if probe in ("desaturation", "shuffle") else 0.25]})
            plan = plan[plan["level"] != 0]
            t = time.perf_counter()
            for _ in generate_probes(b, plan):
                pass
            v = len(plan) / (time.perf_counter() - t)
            res[f"{probe}@{size}"] = v
            print(f"{probe:24s} {size:5d} {v:9.2f}")
    # Scoring: a small random D at 256 px; the second pass reads the cache.
    import torch

    from discbias.nets import Discriminator, save_discriminator
    from discbias.scoring import ScoreCache, Scorer, ScoringProtocol

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        w = Path(d) / "d.safetensors"
        save_discriminator(Discriminator(0, 256, 3, channel_base=2048, channel_max=128, num_fp16_res=0, conv_clamp=256), w)
        imgs = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(a.score_n)]
        scorer = Scorer(w, ScoringProtocol(input="nvidia"))
        cache = ScoreCache(Path(d) / "cache")
        for label in ("score 256 px, uncached", "score 256 px, cached"):
            t = time.perf_counter()
            scorer.score_arrays(imgs, cache)
            res[label] = a.score_n / (time.perf_counter() - t)
            print(f"{label:30s} {res[label]:9.2f} images/s")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_probes.json").write_text(json.dumps({"cpus": os.cpu_count(), "images_per_s": res}, indent=2))


if __name__ == "__main__":
    main()
