"""Print the numerical-kernel settings this machine supports, one per line, for `make test-kernels`.

Each line is an environment assignment that changes which floating-point code paths run:

* ``OPENBLAS_CORETYPE=<core>``: another OpenBLAS kernel family than the one it picks by itself
  (the machine must support the core's instructions: a newer core would crash with SIGILL, so only
  cores whose required CPU flags are present are listed, and only those that resolve to a kernel
  other than the default, as threadpoolctl reports it);
* ``NPY_DISABLE_CPU_FEATURES=<features>``: numpy's SIMD dispatch turned off for every optional
  extension it found (AVX2/AVX-512 ...), so its ufuncs (cbrt, hypot, exp, summation) take the
  baseline path.

A test that passes under the default settings only is tuned to one machine's rounding; `.ci/run`
runs the numerically sensitive tests again under the first setting of each kind, and
`make test-kernels` under all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: OpenBLAS core type -> CPU flags (as in /proc/cpuinfo) its kernels need.
CORES = {
    "Prescott": {"pni"},  # SSE3 (/proc/cpuinfo calls it pni)
    "Nehalem": {"sse4_2"},
    "Sandybridge": {"avx"},
    "Haswell": {"avx2", "fma"},
    "SkylakeX": {"avx512f", "avx512bw", "avx512vl", "avx512dq"},
}
#: Preferred order for the one alternative that CI runs: a kernel family many machines have.
PREFERENCE = ["Haswell", "SkylakeX", "Sandybridge", "Nehalem", "Prescott"]

PROBE = ("import json, numpy; from threadpoolctl import threadpool_info;"
         "print(json.dumps([i.get('architecture') for i in threadpool_info() if i['user_api'] == 'blas']))")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def blas_architecture(coretype: str | None) -> str | None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE",)}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)
    if out.returncode != 0:
        return None
    archs = json.loads(out.stdout.strip().splitlines()[-1])
    return archs[0] if archs else None


def numpy_optional_features() -> list[str]:
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]


def settings() -> list[str]:
    flags = cpu_flags()
    default = blas_architecture(None)
    seen = {default}
    lines = []
    for core in PREFERENCE:
        if not CORES[core] <= flags:
            continue
        arch = blas_architecture(core)
        if arch is None or arch in seen:
            continue
        seen.add(arch)
        lines.append(f"OPENBLAS_CORETYPE={core}")
    feats = numpy_optional_features()
    if feats:
        lines.append("NPY_DISABLE_CPU_FEATURES=" + " ".join(feats))
    return lines


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    lines = settings()
    if which == "ci":  # the first OpenBLAS alternative and the numpy one
        lines = [next((s for s in lines if s.startswith("OPENBLAS_")), None),
                 next((s for s in lines if s.startswith("NPY_")), None)]
        lines = [s for s in lines if s]
    print("\n".join(lines))
