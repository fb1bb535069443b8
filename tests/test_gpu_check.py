"""benchmarks/gpu_check.py: its CPU dry run works end to end, and without CUDA it stops with a clear message."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_dry_run_writes_the_full_report(tmp_path):
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--seconds", "0.05",
                          "--e2e-images", "6"], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["dry_run"] is True and r["ok"] is True and r["resolution"] == 64
    for name in ("fp32", "fp16"):  # on the CPU both paths are float32: identical to the reference
        p = r["parity"][name]
        assert p["max_rel_diff"] == 0.0 and p["ok"] and p["finite"] and len(p["logits"]) == 4
    cells = {(t["precision"], t["batch"]) for t in r["throughput"]}
    assert cells == {(p, b) for p in ("fp32", "fp16") for b in (1, 2, 4)}
    assert all(t["images_per_s"] > 0 and t["finite"] for t in r["throughput"])
    e2e = r["end_to_end"]
    assert e2e["n_images"] == 6 and e2e["fp32"]["images_per_s"] > 0 and e2e["fp16"]["finite"]
    assert e2e["fp32"]["protocol"] == "nvidia/single/stretch-lanczos"
    assert r["env"]["torch"] == torch.__version__ and r["peak_gpu_mib"] is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run for real")
def test_gpu_check_without_cuda_fails_clearly(tmp_path):
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "no CUDA device is available" in res.stderr and "--dry-run" in res.stderr
    assert not out.exists()
