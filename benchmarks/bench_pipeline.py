"""Wall time of each pipeline stage (fetch, measure, fit, figures, render).

Runs on the released data when DISCBIAS_DATA_MIRROR is set, else on a synthetic study of the
same schema. Writes benchmarks/results/bench_pipeline.json and prints a table; stage shares are
ratios measured in the same run.

    python benchmarks/bench_pipeline.py [--synthetic]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", action="store_true", help="use a synthetic study even if the mirror is set")
    args = ap.parse_args()
    from discbias import pipeline
    from discbias.config import load_config
    from discbias.paths import project_paths
    from discbias.report.render import render

    root = Path(tempfile.mkdtemp(prefix="discbias-bench-"))
    if args.synthetic or not os.environ.get("DISCBIAS_DATA_MIRROR"):
        from discbias.studies.synthetic import make_synthetic_study

        cfg_path = make_synthetic_study(root, n_ffhq=70000, n_per_cell=90)
        os.environ["DISCBIAS_DATA_MIRROR"] = str(root / "mirror")
        data = "synthetic (70,000 + 1,080 rows)"
    else:
        cfg_path = REPO / "analysis" / "grissom2024.toml"
        data = f"released data from {os.environ['DISCBIAS_DATA_MIRROR']}"
    os.environ.setdefault("DISCBIAS_TEMPLATES", str(REPO / "report"))
    config, paths = load_config(cfg_path), project_paths(root)
    stages = [("fetch", lambda: pipeline.run_fetch(config, paths, allow_download=False)),
              ("measure", lambda: pipeline.run_measure(config, paths, force=True)),
              ("fit", lambda: pipeline.run_fit(config, paths, force=True)),
              ("figures", lambda: pipeline.run_figures(config, paths)),
              ("render", lambda: render(config, paths))]
    times = {}
    for name, fn in stages:
        t0 = time.perf_counter()
        fn()
        times[name] = time.perf_counter() - t0
    total = sum(times.values())
    print(f"data: {data}")
    print(f"{'stage':<10}{'seconds':>10}{'share':>9}")
    for k, v in times.items():
        print(f"{k:<10}{v:>10.1f}{v / total:>9.1%}")
    print(f"{'total':<10}{total:>10.1f}")
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_pipeline.json").write_text(json.dumps({"data": data, "seconds": times, "total": total}, indent=2))


if __name__ == "__main__":
    main()
