"""The shared progress utility: count/rate/ETA on stderr, silent with -q, polling a background job."""

import io
import os
import subprocess
import sys
import time

import pytest

from discbias import progress as P


@pytest.fixture(autouse=True)
def _not_quiet(monkeypatch):
    monkeypatch.delenv(P.QUIET_ENV, raising=False)


def test_bar_shows_count_rate_and_eta_on_the_given_stream():
    err = io.StringIO()
    with P.progress(total=4, desc="bootstrap", unit="fit", file=err, mininterval=0, maxinterval=0, miniters=1,
                    delay=0) as bar:
        for _ in range(2):
            bar.update(1)
            time.sleep(0.01)
        text = err.getvalue()
        bar.update(2)
    assert "bootstrap" in text and "2/4" in text and "fit/s" in text and "<" in text  # count, rate, ETA
    assert "4/4" in err.getvalue()
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and len(lines) >= 3  # a log gets whole lines
    assert len(lines) == len(set(lines))  # the final state once, not again on close


def test_quiet_env_silences_and_set_quiet_restores(monkeypatch):
    P.set_quiet(True)
    assert os.environ[P.QUIET_ENV] == "1" and P.is_quiet()
    err = io.StringIO()
    for _ in P.progress(range(5), desc="x", file=err):
        pass
    assert err.getvalue() == ""
    P.set_quiet(False)
    assert not P.is_quiet()


def test_follow_progress_counts_a_background_job_and_survives_its_errors():
    import threading

    err, state = io.StringIO(), {"n": 0}

    def job():
        for _ in range(6):
            time.sleep(0.02)
            state["n"] += 1

    t = threading.Thread(target=job)
    t.start()
    P.follow_progress(lambda: state["n"], lambda: not t.is_alive(), 6, desc="draws", every=0.005, file=err,
                      delay=0, mininterval=0, miniters=1)
    lines = err.getvalue().splitlines()
    assert any("3/6" in ln or "2/6" in ln or "4/6" in ln for ln in lines), lines  # counted while running
    assert "6/6" in lines[-1]

    def broken():
        raise RuntimeError("sampler gone")

    t = threading.Thread(target=job)
    t.start()
    err = io.StringIO()
    P.follow_progress(broken, lambda: not t.is_alive(), 6, desc="draws", every=0.005, file=err, delay=0)
    assert not t.is_alive() and "6/6" in err.getvalue()  # waited to the end; the bar closed at the total


@pytest.mark.slow  # imports the whole CLI in a child process
def test_cli_quiet_flag_silences_bars_in_child_processes(tmp_path):
    """`discbias -q` silences the bars of the processes its run starts; a -q run called in-process does
    not silence the caller's later bars."""
    code = ("import subprocess, sys; from discbias import cli, progress\n"
            "def run(args):\n"
            "    child = subprocess.run([sys.executable, '-c', 'from discbias import progress; print(progress.is_quiet())'],"
            " capture_output=True, text=True)\n"
            "    print('child', child.stdout.strip()); return 0\n"
            "cli._run = run\n"
            "cli.main(['-q', 'fit', '--config', 'no/such.toml']); print('after', progress.is_quiet())")
    env = {k: v for k, v in os.environ.items() if k != "DISCBIAS_QUIET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**env, "PYTHONPATH": os.pathsep.join(sys.path)})
    lines = out.stdout.strip().splitlines()
    assert "child True" in lines and lines[-1] == "after False", (out.stdout, out.stderr)


def test_short_loops_print_nothing():
    err = io.StringIO()
    for _ in P.progress(range(3), desc="quick", file=err):
        pass
    assert err.getvalue() == ""
