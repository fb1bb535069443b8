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
    return paths.build / "checkpoints"


def audits_dir(paths) -> Path:
    """Where each trained network's audit is built (``build/<id>/audits``)."""
    return paths.build / "audits"

__all__ = ["train_step"]

def _condition(c) -> Condition:
    return Condition(c.id, luminance_shift=c.luminance_shift, redness_shift=c.redness_shift,
                     minority_share=c.minority_share, fake_share=c.fake_share)


def _seeds(p) -> list[int]:
    return list(range(p.first_seed, p.first_seed + p.seeds))


# ------------------------------------------------------------------------------------------ training

def train_step(cond_cfg):
    def run(ctx) -> None:
        from .checkpoint import save_nvidia_pickle
        from .data import training_sets
        from .train import network_kwargs, train_discriminator

        p = ctx.config.planted
        cond = _condition(cond_cfg)
        net = network_kwargs(p.resolution, **p.network.model_dump())
        logs, runs = [], []
        for seed in _seeds(p):
            t0 = time.perf_counter()
            real, fake, attrs = training_sets(cond, p.n_train, p.resolution, seed, exposure_sd=p.exposure_sd,
                                              red_sd=p.red_sd)
            D, tl = train_discriminator(real, fake, network=net, steps=p.steps, batch_size=p.batch_size, lr=p.lr,
                                        r1_gamma=p.r1_gamma, r1_interval=p.r1_interval, seed=seed,
                                        log_every=max(1, p.steps // 20), threads=p.threads)
            out = checkpoints_dir(ctx.paths) / cond.id / f"s{seed}.pkl"
            save_nvidia_pickle(D, out, training_set_kwargs=dict(
                class_name="discbias.planted.data.training_sets", condition=cond.id, seed=seed,
                resolution=p.resolution, n=p.n_train, luminance_shift=cond.luminance_shift,
                redness_shift=cond.redness_shift, minority_share=cond.minority_share, fake_share=cond.fake_share))
            ctx.wrote_file(out)
            from ..fetch import sha256_file

            secs = time.perf_counter() - t0
            logs.append(tl.assign(condition=cond.id, seed=seed))
            m = attrs.groupby("set")[["exposure", "red_gain"]].mean()
            dark = attrs.assign(d=attrs["group"] == "dark").groupby("set")["d"].mean()
            last = tl.iloc[-1]
            runs.append(dict(condition=cond.id, seed=seed, checkpoint=out.relative_to(ctx.paths.build).as_posix(),
                             sha256=sha256_file(out), steps=p.steps, seconds=secs,
                             params=int(sum(t.numel() for t in D.parameters())),
                             final_loss_real=last["loss_real"], final_loss_fake=last["loss_fake"],
                             final_accuracy=last["accuracy"],
                             real_exposure=m.loc["real", "exposure"], fake_exposure=m.loc["fake", "exposure"],
                             real_red_gain=m.loc["real", "red_gain"], fake_red_gain=m.loc["fake", "red_gain"],
                             real_dark_share=dark["real"], fake_dark_share=dark["fake"]))
            (getattr(ctx, "log", None) or (lambda s: None))(
                f"trained {cond.id} seed {seed} in {secs:.1f}s (accuracy {last['accuracy']:.2f})")
        ctx.write(f"planted/train_log/{cond.id}", pd.concat(logs, ignore_index=True))
        ctx.write(f"planted/runs/{cond.id}", pd.DataFrame(runs))

    return run


# ------------------------------------------------------------------------------------------ auditing
