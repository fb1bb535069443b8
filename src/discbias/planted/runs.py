"""The training step of the planted-bias study (one per condition): train and save the discriminators.

Kept apart from :mod:`discbias.planted.study` (summary, figures, render) so that an edit there does
not retrain or re-audit. The training step's code version is the source of the modules that run
when a network is trained and saved (:data:`TRAINING_MODULES`), not of everything it imports.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from .data import Condition


def checkpoints_dir(paths) -> Path:
    """Where the trained discriminators are saved (``build/<id>/checkpoints``)."""
    return paths.build / "checkpoints"


def audits_dir(paths) -> Path:
    """Where each trained network's audit is built (``build/<id>/audits``)."""
    return paths.build / "audits"

__all__ = ["train_step", "train_one", "TRAINING_MODULES", "training_version"]

#: The modules whose code runs when a discriminator is trained and saved (:func:`train_one`): the
#: training step's code version (:func:`training_version`) is their source, not the whole import
#: closure of this module (which reaches the network registry, the downloader and the study
#: configuration), so an unrelated edit does not retrain every network.
#: ``tests/test_planted_version.py`` runs a training under a profiler and fails if a discbias
#: module whose functions ran is missing here: add it when the training starts to use one.
TRAINING_MODULES = (
    "discbias.planted.runs", "discbias.planted.train", "discbias.planted.data", "discbias.planted.checkpoint",
    "discbias.measures.color", "discbias.nets", "discbias.nets.discriminator", "discbias.nets.layers",
    "discbias.nets.fir", "discbias.planted.generator",
)


def training_version() -> str:
    """The training step's code version: :func:`discbias.engine.modules_version` of
    :data:`TRAINING_MODULES`.

    Examples
    --------
    >>> len(training_version())
    16
    """
    from ..engine import modules_version

    return modules_version(TRAINING_MODULES)

def _condition(c) -> Condition:
    return Condition(c.id, luminance_shift=c.luminance_shift, redness_shift=c.redness_shift,
                     minority_share=c.minority_share, fake_share=c.fake_share, fake=getattr(c, "fake", "fixed"))


def _seeds(p) -> list[int]:
    return list(range(p.first_seed, p.first_seed + p.seeds))


# ------------------------------------------------------------------------------------------ training

def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def train_one(cond: dict, settings: dict, seed: int, out: str, checkpoint: str) -> tuple[dict, pd.DataFrame]:
    """Train one seed's discriminator of a condition and save it; plain data in and out (it runs in
    a worker process when ``[planted] workers`` > 1, see :mod:`discbias.planted.parallel`).

    Fixed mode: a discriminator against the fixed fake set. Generator mode (``cond["fake"] ==
    "generator"``): a GAN (:func:`discbias.planted.generator.train_gan`) on the real set; besides D's
    NVIDIA pickle it saves, beside it, the generator as a plain ``state_dict`` (``s<seed>_G.pt``,
    loadable with ``weights_only=True``) and uint8 arrays in ``s<seed>_samples.npz``: 16 samples
    (``generated``), 16 real training images (``real``) and the ``n_gan_measure`` samples whose
    attributes are recorded (``measured``; the audit's training-distribution comparison uses them as
    the fake set). The run row then names them (``generator``, ``samples``).

    Parameters
    ----------
    cond : dict
        The condition (``ConditionConfig.model_dump()``).
    settings : dict
        The ``[planted]`` settings (``PlantedMeta.model_dump(mode="json")``).
    seed : int
    out : str
        Where to save the checkpoint (NVIDIA's pickle layout).
    checkpoint : str
        Its name in the run table (relative to the build folder).

    Returns
    -------
    run : dict
        The seed's row of ``planted/runs/<cond>``.
    log : DataFrame
        Its training log (``planted/train_log/<cond>``).
    """
    from .checkpoint import save_nvidia_pickle
    from .data import training_sets
    from .train import network_kwargs, train_discriminator

    p = settings
    c = Condition(cond["id"], luminance_shift=cond["luminance_shift"], redness_shift=cond["redness_shift"],
                  minority_share=cond["minority_share"], fake_share=cond["fake_share"],
                  fake=cond.get("fake", "fixed"))
    net = network_kwargs(p["resolution"], **p["network"])
    t0, c0 = time.perf_counter(), time.process_time()
    real, fake, attrs = training_sets(c, p["n_train"], p["resolution"], seed, exposure_sd=p["exposure_sd"],
                                      red_sd=p["red_sd"])
    out = Path(out)
    extra = {}
    if c.fake == "generator":
        import torch

        from .generator import sample_attributes, train_gan

        steps = p["gan_steps"]
        D, G, tl, samples, g_attrs, measured = train_gan(
            real, network=net, generator=p["generator"], steps=steps, batch_size=p["gan_batch_size"], lr=p["lr"],
            r1_gamma=p["r1_gamma"], r1_interval=p["r1_interval"], seed=seed, log_every=max(1, steps // 20),
            threads=p["threads"], n_samples=16, n_measure=p["n_gan_measure"])
        out.parent.mkdir(parents=True, exist_ok=True)
        g_path, s_path = out.with_name(f"s{seed}_G.pt"), out.with_name(f"s{seed}_samples.npz")
        torch.save({k: v.detach().clone() for k, v in G.state_dict().items()}, g_path)
        np.savez_compressed(s_path, generated=samples, real=real[:16], measured=measured)
        rel = checkpoint.rsplit("/", 1)[0] + "/" if "/" in checkpoint else ""
        r_attrs = sample_attributes(real)
        extra = dict(generator=rel + g_path.name, samples=rel + s_path.name,
                     generator_params=int(sum(t.numel() for t in G.parameters())),
                     final_loss_g=float(tl.iloc[-1]["loss_g"]),
                     **{f"real_{k}": float(v) for k, v in r_attrs.items()},
                     **{f"gen_{k}": float(v) for k, v in g_attrs.items()})
    else:
        steps = p["steps"]
        D, tl = train_discriminator(real, fake, network=net, steps=steps, batch_size=p["batch_size"], lr=p["lr"],
                                    r1_gamma=p["r1_gamma"], r1_interval=p["r1_interval"], seed=seed,
                                    log_every=max(1, steps // 20), threads=p["threads"])
    save_nvidia_pickle(D, out, training_set_kwargs=dict(
        class_name="discbias.planted.data.training_sets", condition=c.id, seed=seed,
        resolution=p["resolution"], n=p["n_train"], luminance_shift=c.luminance_shift,
        redness_shift=c.redness_shift, minority_share=c.minority_share, fake_share=c.fake_share,
        **({"fake": c.fake} if c.fake != "fixed" else {})))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = attrs.groupby("set")[["exposure", "red_gain"]].mean()
    dark = attrs.assign(d=attrs["group"] == "dark").groupby("set")["d"].mean()
    last = tl.iloc[-1]
    nan = float("nan")
    run = dict(condition=c.id, seed=seed, fake=c.fake, checkpoint=checkpoint, sha256=_sha256(out), steps=steps,
               seconds=secs, cpu_seconds=cpu, load_average=_load_average(),
               params=int(sum(t.numel() for t in D.parameters())),
               final_loss_real=float(last["loss_real"]), final_loss_fake=float(last["loss_fake"]),
               final_accuracy=float(last["accuracy"]),
               real_exposure=float(m.loc["real", "exposure"]), fake_exposure=float(m["exposure"].get("fake", nan)),
               real_red_gain=float(m.loc["real", "red_gain"]), fake_red_gain=float(m["red_gain"].get("fake", nan)),
               real_dark_share=float(dark["real"]), fake_dark_share=float(dark.get("fake", nan)), **extra)
    return run, tl.assign(condition=c.id, seed=seed)


def _load_average() -> float:
    """The machine's 1-minute load average now (NaN where the platform has none): with the worker
    count, it says whether other jobs shared the CPUs while the networks were timed."""
    import os

    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def _done_key(version: str, cond: dict, settings: dict, seed: int) -> str:
    import hashlib
    import json

    keep = {k: v for k, v in settings.items() if k not in ("workers", "conditions")}
    return hashlib.sha256(json.dumps([version, cond, keep, seed], sort_keys=True).encode()).hexdigest()


def _reuse(done: Path, key: str, out: Path):
    """A seed finished by an earlier run of this step that failed on another seed (its record
    ``s<seed>.done.json`` beside the checkpoint, same code version and settings, checkpoint bytes
    unchanged): its run row and log; else None."""
    import json

    try:
        rec = json.loads(done.read_text())
        if rec.get("key") != key or not out.is_file() or _sha256(out) != rec["run"]["sha256"]:
            return None
        return rec["run"], pd.DataFrame(rec["log"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def train_step(cond_cfg):
    def run(ctx) -> None:
        import json

        from .parallel import map_seeds, resolve_workers

        p = ctx.config.planted
        cond = cond_cfg.model_dump(mode="json")
        settings = p.model_dump(mode="json", exclude={"conditions"})
        log = getattr(ctx, "log", None) or (lambda s: None)
        folder = checkpoints_dir(ctx.paths) / cond["id"]
        version = getattr(getattr(ctx, "step", None), "version", "") or ""
        results, tasks = {}, []
        for seed in _seeds(p):
            out = folder / f"s{seed}.pkl"
            done = folder / f"s{seed}.done.json"
            key = _done_key(version, cond, settings, seed)
            old = _reuse(done, key, out)
            if old is not None:
                results[seed] = old
                log(f"reusing {cond['id']} seed {seed}: trained by an earlier run of this step that stopped on "
                    f"another seed")
                continue
            tasks.append((seed, (cond, settings, seed, str(out), out.relative_to(ctx.paths.build).as_posix())))

        def finished(seed, res):
            r, tl = res
            # a record that lets a rerun after another seed's failure reuse this seed (removed on success)
            (folder / f"s{seed}.done.json").write_text(json.dumps(
                dict(key=_done_key(version, cond, settings, seed), run=r, log=tl.to_dict("list"))))
            log(f"trained {cond['id']} seed {seed} in {r['seconds']:.1f}s, {r['cpu_seconds']:.1f}s CPU "
                f"(accuracy {r['final_accuracy']:.2f})")

        workers = resolve_workers(p.workers, seeds=len(tasks), threads=p.threads)
        out = map_seeds(train_one, tasks, workers=workers, threads=p.threads, label=ctx.step.name,
                        on_result=finished)
        results.update({seed: res for (seed, _), res in zip(tasks, out)})
        order = _seeds(p)
        for seed in order:
            for key in ("checkpoint", "generator", "samples"):  # the last two: generator mode only
                if isinstance(results[seed][0].get(key), str):
                    ctx.wrote_file(ctx.paths.build / results[seed][0][key])
        ctx.write(f"planted/train_log/{cond['id']}", pd.concat([results[s][1] for s in order], ignore_index=True))
        ctx.write(f"planted/runs/{cond['id']}", pd.DataFrame([results[s][0] for s in order]))
        for seed in order:
            (folder / f"s{seed}.done.json").unlink(missing_ok=True)

    return run


# ------------------------------------------------------------------------------------------ auditing
