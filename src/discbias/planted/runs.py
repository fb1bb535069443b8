"""The training step of the planted-bias study (one per condition): train and save the discriminators.

Kept apart from :mod:`discbias.planted.study` (summary, figures, render) so that an edit there does
not retrain or re-audit: the engine reruns a step when the source of its module, or of a package
module it imports, changes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from .data import Condition


def checkpoints_dir(paths) -> Path:
    """Where the trained discriminators are saved (``build/<id>/checkpoints``)."""
    return checkpoints_dir_of(paths.build)


def audits_dir(paths) -> Path:
    """Where each trained network's audit is built (``build/<id>/audits``)."""
    return paths.build / "audits"

__all__ = ["train_step", "train_one"]

def _condition(c) -> Condition:
    return Condition(c.id, luminance_shift=c.luminance_shift, redness_shift=c.redness_shift,
                     minority_share=c.minority_share, fake_share=c.fake_share, fake=getattr(c, "fake", "fixed"))


def _seeds(p) -> list[int]:
    return list(range(p.first_seed, p.first_seed + p.seeds))


# ------------------------------------------------------------------------------------------ training

def train_one(cond_cfg, seed: int, p, build: Path) -> tuple[dict, pd.DataFrame, list[Path]]:
    """Train one seed of one condition and save what it produced under ``build``.

    Fixed mode: a discriminator against the fixed fake set. Generator mode: a GAN
    (:func:`discbias.planted.generator.train_gan`) on the real set; besides D's NVIDIA pickle it saves
    the generator as a plain ``state_dict`` (``s<seed>_G.pt``, loadable with ``weights_only=True``) and
    16 samples with 16 real training images (``s<seed>_samples.npz``, uint8 arrays ``generated`` and
    ``real``) and the ``n_gan_measure`` samples whose attributes are recorded (``measured``; the audit's
    training-distribution comparison uses them as the fake set).

    Returns the run's row of ``planted/runs/<cond>``, its training log and the files written.
    """
    from ..fetch import sha256_file
    from .checkpoint import save_nvidia_pickle
    from .data import training_sets
    from .train import network_kwargs, train_discriminator

    cond = _condition(cond_cfg)
    net = network_kwargs(p.resolution, **p.network.model_dump())
    t0, c0 = time.perf_counter(), time.process_time()
    real, fake, attrs = training_sets(cond, p.n_train, p.resolution, seed, exposure_sd=p.exposure_sd,
                                      red_sd=p.red_sd)
    folder = checkpoints_dir_of(build) / cond.id
    out = folder / f"s{seed}.pkl"
    files, extra = [out], {}
    gan = cond.fake == "generator"
    if gan:
        import torch

        from .generator import sample_attributes, train_gan

        steps = p.gan_steps
        D, G, tl, samples, g_attrs, measured = train_gan(
            real, network=net, generator=p.generator.model_dump(), steps=steps, batch_size=p.gan_batch_size,
            lr=p.lr, r1_gamma=p.r1_gamma, r1_interval=p.r1_interval, seed=seed, log_every=max(1, steps // 20),
            threads=p.threads, n_samples=16, n_measure=p.n_gan_measure)
        folder.mkdir(parents=True, exist_ok=True)
        g_path, s_path = folder / f"s{seed}_G.pt", folder / f"s{seed}_samples.npz"
        torch.save({k: v.detach().clone() for k, v in G.state_dict().items()}, g_path)
        np.savez_compressed(s_path, generated=samples, real=real[:16], measured=measured)
        files += [g_path, s_path]
        r_attrs = sample_attributes(real)
        extra = dict(generator=g_path.relative_to(build).as_posix(), samples=s_path.relative_to(build).as_posix(),
                     generator_params=int(sum(t.numel() for t in G.parameters())),
                     final_loss_g=float(tl.iloc[-1]["loss_g"]),
                     **{f"real_{k}": v for k, v in r_attrs.items()}, **{f"gen_{k}": v for k, v in g_attrs.items()})
    else:
        steps = p.steps
        D, tl = train_discriminator(real, fake, network=net, steps=steps, batch_size=p.batch_size, lr=p.lr,
                                    r1_gamma=p.r1_gamma, r1_interval=p.r1_interval, seed=seed,
                                    log_every=max(1, steps // 20), threads=p.threads)
    save_nvidia_pickle(D, out, training_set_kwargs=dict(
        class_name="discbias.planted.data.training_sets", condition=cond.id, seed=seed,
        resolution=p.resolution, n=p.n_train, luminance_shift=cond.luminance_shift,
        redness_shift=cond.redness_shift, minority_share=cond.minority_share, fake_share=cond.fake_share,
        fake=cond.fake))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = attrs.groupby("set")[["exposure", "red_gain"]].mean()
    dark = attrs.assign(d=attrs["group"] == "dark").groupby("set")["d"].mean()
    last = tl.iloc[-1]
    row = dict(condition=cond.id, seed=seed, fake=cond.fake, checkpoint=out.relative_to(build).as_posix(),
               sha256=sha256_file(out), steps=steps, seconds=secs, cpu_seconds=cpu,
               params=int(sum(t.numel() for t in D.parameters())),
               final_loss_real=last["loss_real"], final_loss_fake=last["loss_fake"],
               final_accuracy=last["accuracy"],
               real_exposure=m.loc["real", "exposure"], fake_exposure=m["exposure"].get("fake", float("nan")),
               real_red_gain=m.loc["real", "red_gain"], fake_red_gain=m["red_gain"].get("fake", float("nan")),
               real_dark_share=dark["real"], fake_dark_share=dark.get("fake", float("nan")), **extra)
    return row, tl.assign(condition=cond.id, seed=seed), files


def checkpoints_dir_of(build: Path) -> Path:
    return Path(build) / "checkpoints"


def train_step(cond_cfg):
    def run(ctx) -> None:
        p = ctx.config.planted
        logs, runs = [], []
        for seed in _seeds(p):
            row, tl, files = train_one(cond_cfg, seed, p, ctx.paths.build)
            for f in files:
                ctx.wrote_file(f)
            logs.append(tl)
            runs.append(row)
            (getattr(ctx, "log", None) or (lambda s: None))(
                f"trained {cond_cfg.id} seed {seed} in {row['seconds']:.1f}s, {row['cpu_seconds']:.1f}s CPU "
                f"(accuracy {row['final_accuracy']:.2f})")
        ctx.write(f"planted/train_log/{cond_cfg.id}", pd.concat(logs, ignore_index=True))
        ctx.write(f"planted/runs/{cond_cfg.id}", pd.DataFrame(runs))

    return run


# ------------------------------------------------------------------------------------------ auditing
