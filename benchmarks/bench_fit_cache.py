"""What `make report` reruns, and how long it takes, after five kinds of edit (fit cache, figure steps).

In a scratch copy of the project (the working tree's files, the synthetic study in the released
schema; set ``--released`` to use the released data through ``DISCBIAS_DATA_MIRROR``), after a cold
``make report`` it times, side by side in one run:

1. a no-op ``make report``;
2. a change to one figure's colour (``src/discbias/report/figures/models.py``), made and timed
   ``--repeats`` times (default 3; the median is kept: timings on a shared machine vary);
3. a template edit (a sentence added to ``report/sections/``), also repeated;
4. a change to one analysis module's non-fit code (a constant in ``analyses/study2.py``): measure
   and fit rerun, the MCMC fits come from the fit cache;
5. a data change (one ``red_mean`` value of one image in the Study 2 file, its sha256 updated in the
   configuration): every stage reruns; only the fits that read that column of that file refit.

For each it records the wall time, the stages ``make`` ran, the fit-cache lookups (hits and
misses from ``build/cache/fits/log.jsonl``), the figure steps that ran, the load average and the
process CPU time. Writes ``benchmarks/results/bench_fit_cache.json`` and prints a table.

    python benchmarks/bench_fit_cache.py [--released] [--keep] [--repeats N]

It prints whether issue 13's targets are met (figure edit < 20 s, template edit < 10 s) and each
edit's time as a share of the cold build's in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix) if (Path(sys.prefix) / "bin" / "discbias").exists() else REPO / ".venv"


def _copy_project(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for f in files:
        src = REPO / f
        if src.is_file() and not f.startswith(("benchmarks/results/", "data/", "build/")):
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise SystemExit(f"bench_fit_cache: {path} no longer contains {old!r}; update the benchmark's edit")
    path.write_text(text.replace(old, new, 1))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _make(root: Path, config: str, env: dict) -> dict:
    log = root / "build" / "cache" / "fits" / "log.jsonl"
    n0 = len(log.read_text().splitlines()) if log.exists() else 0
    load0, cpu0, t0 = os.getloadavg()[0], _cpu(), time.perf_counter()
    # -o: never let make "set up" the scratch copy into VENV (its copied pyproject.toml is newer than
    # VENV/.installed, which would reinstall the package from the scratch folder into this venv)
    proc = subprocess.run(["make", "report", f"CONFIG={config}", f"VENV={VENV}", "-o", f"{VENV}/.installed"],
                          cwd=root, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode:
        raise SystemExit(f"bench_fit_cache: make report failed in {root}:\n{out[-4000:]}")
    events = [json.loads(x) for x in log.read_text().splitlines()[n0:]] if log.exists() else []
    steps = re.findall(r"figures (\S+): ran in", out)  # the engine's log line per figure step that ran
    return dict(seconds=round(wall, 1), cpu_seconds=round(_cpu() - cpu0, 1),
                # the groups in which the engine ran a step (make calls `discbias report`; the engine decides);
                # fit:values and publish:results run whenever values.json or a CSV is due, so "fit" may show alone
                stages=list(dict.fromkeys(re.findall(r"(measure|fit|figures|render) \S+: ran in", out))),
                fits_refitted=sorted(e["model"] for e in events if e["status"] != "hit"),
                fits_reused=sorted(e["model"] for e in events if e["status"] == "hit"),
                figure_steps_ran=steps,
                load_before=round(load0, 2), load_after=round(os.getloadavg()[0], 2))


#: Issue 13's targets: `make report` after the edit, wall seconds (median of --repeats runs).
TARGETS = {"figure colour edit": 20.0, "template edit": 10.0}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time, with every run's wall time in ``seconds_all``."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return dict(ordered[(len(ordered) - 1) // 2], seconds_all=[r["seconds"] for r in runs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--released", action="store_true", help="the released data (DISCBIAS_DATA_MIRROR) instead of "
                                                            "the synthetic study")
    ap.add_argument("--keep", action="store_true", help="keep the scratch project")
    ap.add_argument("--repeats", type=int, default=3, choices=range(1, 6), metavar="N",
                    help="times the figure and template edits are made and timed (median kept; default 3)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="discbias-bench-fitcache-"))
    _copy_project(root)
    env = dict(os.environ, PYTHONPATH=str(root / "src"), DISCBIAS_NO_QUARTO="1")
    env.pop("DISCBIAS_NO_FIT_CACHE", None)
    if args.released:
        if not os.environ.get("DISCBIAS_DATA_MIRROR"):
            raise SystemExit("bench_fit_cache --released: set DISCBIAS_DATA_MIRROR to the released files")
        config, data = "analysis/grissom2024.toml", f"released data ({os.environ['DISCBIAS_DATA_MIRROR']})"
        study2_file = Path(os.environ["DISCBIAS_DATA_MIRROR"]) / "Study2_GoogleFaces_full_unbalanced.csv"
        mirror = root / "mirror"
        mirror.mkdir()
        for f in Path(os.environ["DISCBIAS_DATA_MIRROR"]).iterdir():
            (mirror / f.name).symlink_to(f)
        (mirror / study2_file.name).unlink()
        shutil.copy2(study2_file, mirror / study2_file.name)
        study2_file = mirror / study2_file.name
    else:
        sys.path.insert(0, str(root / "src"))
        from discbias.studies.synthetic import make_synthetic_study

        make_synthetic_study(root, n_ffhq=2000, n_per_cell=20)
        mirror = root / "mirror"
        config, data = "analysis/synthetic.toml", "synthetic study (2,000 FFHQ rows, 20 images per Study 2 cell)"
        study2_file = mirror / "study2.csv"
    env["DISCBIAS_DATA_MIRROR"] = str(mirror)
    results = {}
    print(f"scratch project: {root}\ndata: {data}", flush=True)
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)

    def save(results):  # after every scenario, so a failure later keeps what was measured
        doc = dict(data=data, cpus=os.cpu_count(), date=time.strftime("%Y-%m-%d %H:%M"), scenarios=results,
                   note="seconds: wall time of `make report` after the edit; cpu_seconds: CPU time of its processes; "
                        "load: 1-minute load average before and after (other work on the machine slows every scenario)")
        (out / "bench_fit_cache.json").write_text(json.dumps(doc, indent=2))
        last = list(results)[-1]
        print(last, results[last], flush=True)

    results["cold build"] = _make(root, config, env)
    save(results)
    results["no-op"] = _make(root, config, env)
    save(results)

    # the two edits with targets are repeated (a different edit each time) and their median kept:
    # single timings on a shared 2-core machine vary by a quarter
    fig, colours = root / "src/discbias/report/figures/models.py", ["grey", "0.3", "0.4", "0.5", "0.6", "0.7"]
    runs = []
    for i in range(args.repeats):
        _edit(fig, f'ax.axvline(0, color="{colours[i]}", lw=0.8)', f'ax.axvline(0, color="{colours[i + 1]}", lw=0.8)')
        runs.append(_make(root, config, env))
    results["figure colour edit"] = _median_run(runs)
    save(results)

    section = sorted((root / "report" / "sections").glob("*.qmd.j2"))[0]
    runs = []
    for i in range(args.repeats):
        section.write_text(section.read_text().rstrip("\n") + f"\n\nSentence {i + 1} added by the benchmark.\n")
        runs.append(_make(root, config, env))
    results["template edit"] = _median_run(runs)
    save(results)

    _edit(root / "src/discbias/analyses/study2.py", 'ANOVA = "score ~ race * hair + luminance"',
          'ANOVA = "score ~ race * hair + luminance"  # edited by the benchmark')
    results["analysis non-fit edit"] = _make(root, config, env)
    save(results)

    # one value of one used column of one file; the configuration's sha256 follows
    lines = study2_file.read_text().splitlines(keepends=True)
    head = lines[0].rstrip("\n").split(",")
    col = head.index("red_mean")
    cells = lines[1].rstrip("\n").split(",")
    cells[col] = repr(float(cells[col]) + 1.0)
    lines[1] = ",".join(cells) + "\n"
    old_sha = hashlib.sha256(study2_file.read_bytes()).hexdigest()
    study2_file.write_text("".join(lines))
    new_sha = hashlib.sha256(study2_file.read_bytes()).hexdigest()
    _edit(root / config, old_sha, new_sha)
    (root / "data" / "raw" / study2_file.name).unlink()  # fetch never replaces an installed file; it refetches a missing one
    results["data change (one red_mean value)"] = _make(root, config, env)
    save(results)

    print(f"\n{'scenario':<36}{'seconds':>8}{'CPU s':>7}  stages run / fits refitted / figure steps run")
    for k, v in results.items():
        print(f"{k:<36}{v['seconds']:>8.1f}{v['cpu_seconds']:>7.1f}  {'+'.join(v['stages']) or '-'} / "
              f"{', '.join(v['fits_refitted']) or '-'} / {', '.join(v['figure_steps_ran']) or '-'}")
    cold = results["cold build"]["seconds"]
    for name, target in TARGETS.items():
        r = results[name]
        print(f"{name}: median {r['seconds']:.1f} s of {r['seconds_all']} (target < {target:g} s: "
              f"{'met' if r['seconds'] < target else 'NOT met'}; {r['seconds'] / cold:.1%} of the cold build's "
              f"{cold:.0f} s in this run; load average {r['load_before']}-{r['load_after']})")
    doc = json.loads((out / "bench_fit_cache.json").read_text())
    doc["targets"] = {k: dict(target_seconds=t, median_seconds=results[k]["seconds"], met=results[k]["seconds"] < t,
                              ratio_to_cold_build=results[k]["seconds"] / cold) for k, t in TARGETS.items()}
    (out / "bench_fit_cache.json").write_text(json.dumps(doc, indent=2))
    print(f"wrote {out / 'bench_fit_cache.json'}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
