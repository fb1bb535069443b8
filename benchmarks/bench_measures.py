"""Benchmark: image measures (images/s) at 1024 px, with and without face regions, serial vs parallel.

Run: ``PYTHONPATH=src python benchmarks/bench_measures.py [--n 16]``. Prints a table and writes
``benchmarks/results/bench_measures.json``.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from discbias.measures import image_measures, measure_images
from discbias.measures.faces import face_measures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--size", type=int, default=1024)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (a.size, a.size, 3), dtype=np.uint8)
    rows = []
    t = time.perf_counter()
    for _ in range(a.n):
        image_measures(img)
    rows.append(("image_measures (in memory)", a.n / (time.perf_counter() - t)))
    t = time.perf_counter()
    for _ in range(a.n):
        face_measures(img)
    rows.append(("face_measures, template (in memory)", a.n / (time.perf_counter() - t)))
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.n):
            Image.fromarray(rng.integers(0, 256, (a.size, a.size, 3), dtype=np.uint8)).save(Path(d) / f"{i:05d}.png")
        for w in (1, os.cpu_count() or 1):
            t = time.perf_counter()
            measure_images(d, workers=w, progress=False)
            rows.append((f"measure_images from PNG, {w} worker(s)", a.n / (time.perf_counter() - t)))
        t = time.perf_counter()
        measure_images(d, workers=os.cpu_count() or 1, faces="template", progress=False)
        rows.append((f"measure_images + faces, {os.cpu_count()} workers", a.n / (time.perf_counter() - t)))
    print(f"{'benchmark (' + str(a.size) + ' px)':50s} images/s")
    for name, v in rows:
        print(f"{name:50s} {v:8.2f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_measures.json").write_text(json.dumps({"size": a.size, "n": a.n, "cpus": os.cpu_count(),
                                                          "images_per_s": dict(rows)}, indent=2))


if __name__ == "__main__":
    main()
