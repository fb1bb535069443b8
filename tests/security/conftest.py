"""Helpers of the security tests: run the command line as an attacker's victim would, and check the outcome.

Every payload is written by the test that uses it (nothing hostile is committed). A CLI run happens
in a subprocess with an address-space cap (``RLIMIT_AS``) and a timeout, in a scratch project
folder, with its own integrity key (``DISCBIAS_KEY_FILE``) and cache folders, so a test proves:
no marker file (no code ran), nothing written outside the scratch folder, no traceback, exit
status 2 with the input named, and memory bounded by the cap.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
#: The address-space cap of every CLI run (torch alone maps about 1 GB; a bomb would need far more).
MEMORY_CAP = 3 * 1024 ** 3


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def _cap():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@dataclass
class Sandbox:
    """A scratch project (``root``), a folder beside it that must stay empty (``outside``) and a marker path."""

    root: Path
    outside: Path
    marker: Path
    env: dict

    def cli(self, *args, timeout: float = 60) -> Run:
        code = "import sys; from discbias.cli import main; sys.exit(main(sys.argv[1:]))"
        p = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=self.root, env=self.env,
                           capture_output=True, text=True, timeout=timeout, preexec_fn=_cap)
        return Run(p.returncode, p.stdout, p.stderr)

    def assert_refused(self, run: Run, *named: str) -> None:
        """Exit 2, one error naming every string in ``named``, no traceback, no marker, nothing outside."""
        assert run.returncode == 2, f"exit {run.returncode}, expected 2; stderr:\n{run.stderr[-3000:]}"
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
        assert "MemoryError" not in run.stderr
        errors = [line for line in run.stderr.splitlines() if ": error: " in line]
        assert errors, f"no one-line error in stderr:\n{run.stderr[-2000:]}"
        for n in named:
            assert n in errors[-1], f"the error does not name {n!r}: {errors[-1]}"
        self.assert_clean()

    def assert_clean(self) -> None:
        assert not self.marker.exists(), "the payload ran: the marker file exists"
        assert not any(self.outside.iterdir()), f"written outside the project: {list(self.outside.iterdir())}"


def _vm_size() -> int:
    """This process's address space now (bytes), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def run_capped(fn, *args, budget: int = 512 * 1024 ** 2, timeout: float = 60) -> tuple[str, str] | None:
    """Run ``fn(*args)`` in a forked child whose address space is capped at the parent's current size
    plus ``budget``: ``None`` if it returned, else ``(exception type name, message)``. A bomb that
    reads or allocates past the budget fails with ``MemoryError`` (reported as such), so a test that
    expects the package's own refusal proves the memory stayed bounded. For functions that do not
    use torch's thread pools (forking after they started is unsafe)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    cap = _vm_size() + budget

    def child():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            fn(*args)
            queue.put(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
            queue.put((type(exc).__name__, str(exc)[:2000]))

    proc = ctx.Process(target=child)
    proc.start()
    try:
        out = queue.get(timeout=timeout)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return out


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    env = dict(os.environ)
    env.update(PYTHONPATH=str(SRC) + os.pathsep + env.get("PYTHONPATH", ""),
               DISCBIAS_KEY_FILE=str(tmp_path / "key" / "integrity.key"),
               DISCBIAS_CACHE_DIR=str(root / "cache"), DISCBIAS_ROOT=str(root),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return Sandbox(root=root, outside=outside, marker=outside / "PWNED", env=env)


@pytest.fixture
def capped():
    """:func:`run_capped`: a function run in a child with a capped address space."""
    return run_capped
