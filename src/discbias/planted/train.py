"""Train a discriminator to tell a real from a fake image set, as a GAN's discriminator is trained.

The loss is StyleGAN2's discriminator loss (NVIDIA's ``StyleGAN2Loss``, ``loss.py``): the
non-saturating logistic loss ``softplus(-D(real)) + softplus(D(fake))`` plus the R1 penalty
``gamma / 2 * |grad_x D(real)|^2``, applied lazily every ``r1_interval`` steps and scaled by the
interval (NVIDIA's lazy regularisation); Adam with ``betas = (0, 0.99)``, ``eps = 1e-8``. Images are
fed as NVIDIA's training loop feeds them (uint8 / 127.5 - 1, NCHW), with random horizontal flips.

The difference from a GAN is the fake set: a fixed set of images drawn from a declared distribution
(:func:`discbias.planted.data.training_sets`) instead of a generator's samples, so that what the
discriminator can learn to prefer is known exactly. The network is :class:`discbias.nets.Discriminator`
(the package's clean-room StyleGAN2 discriminator) at a small resolution and width.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

__all__ = ["train_discriminator", "network_kwargs", "to_input"]


def network_kwargs(resolution: int, **over) -> dict:
    """Constructor arguments of the discriminator trained here: NVIDIA's defaults (resnet, conv clamp
    256) at ``resolution``, narrowed, in float32, with a minibatch-std group of 1 so that an image's
    logit never depends on the other images of its batch (in training and in scoring).

    Examples
    --------
    >>> network_kwargs(32, channel_max=16)["channel_max"]
    16
    """
    kw = dict(c_dim=0, img_resolution=int(resolution), img_channels=3, architecture="resnet", channel_base=256,
              channel_max=32, num_fp16_res=0, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=1))
    kw.update(over)
    return kw


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW in [-1, 1] (NVIDIA's training-loop scaling)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_discriminator(real: np.ndarray, fake: np.ndarray, *, network: dict | None = None, steps: int = 300,
                        batch_size: int = 32, lr: float = 0.0025, r1_gamma: float = 0.1, r1_interval: int = 4,
                        seed: int = 0, log_every: int = 10, threads: int | None = None):
    """Train a :class:`discbias.nets.Discriminator` to score ``real`` images high and ``fake`` ones low.

    Parameters
    ----------
    real, fake : ndarray of uint8, shape (n, size, size, 3)
    network : dict, optional
        Constructor arguments (default :func:`network_kwargs` at the images' size).
    steps, batch_size : int
        Optimisation steps; real and fake images per step (each).
    lr : float
        Adam learning rate (NVIDIA's default 0.0025 for small resolutions).
    r1_gamma : float
        R1 weight (NVIDIA: 0.0002 * resolution**2 / batch, i.e. about 0.006-0.1 at 32 px).
    r1_interval : int
        Lazy R1 every this many steps (NVIDIA: 16).
    seed : int
        Seeds the initialisation, the batches and the flips.
    log_every : int
        Record the losses every this many steps (and at the last).
    threads : int, optional
        ``torch.set_num_threads`` during training (restored after).

    Returns
    -------
    D : discbias.nets.Discriminator
        In eval mode.
    log : DataFrame
        ``step, loss_real, loss_fake, r1, accuracy`` (means over the steps since the previous row),
        plus ``seconds`` (elapsed).

    Examples
    --------
    >>> from discbias.planted.data import Condition, training_sets
    >>> real, fake, _ = training_sets(Condition("lum", luminance_shift=1.0), 64, 16, seed=0)
    >>> D, log = train_discriminator(real, fake, steps=4, batch_size=8, log_every=2)
    >>> list(log["step"]), D.training
    ([2, 4], False)
    """
    from ..nets import Discriminator

    if real.shape[1:] != fake.shape[1:] or real.ndim != 4:
        raise ValueError(f"real and fake images must both be (n, size, size, 3), got {real.shape} and {fake.shape}")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        torch.manual_seed(seed)
        D = Discriminator(**(network or network_kwargs(real.shape[1])))
        D.train()
        opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        rng = np.random.default_rng([seed, 3])
        xr_all, xf_all = to_input(real), to_input(fake)
        rows, acc = [], dict(loss_real=[], loss_fake=[], r1=[], accuracy=[])
        t0 = time.perf_counter()
        for step in range(1, steps + 1):
            xr = xr_all[rng.integers(0, len(xr_all), batch_size)]
            xf = xf_all[rng.integers(0, len(xf_all), batch_size)]
            flip = torch.from_numpy(rng.random(2 * batch_size) < 0.5)
            x = torch.cat([xr, xf])
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            xr, xf = x[:batch_size], x[batch_size:]
            r1_step = r1_gamma > 0 and step % r1_interval == 0
            if r1_step:
                xr = xr.detach().requires_grad_(True)
            lr_, lf_ = D(xr), D(xf)
            loss_real, loss_fake = F.softplus(-lr_).mean(), F.softplus(lf_).mean()
            loss = loss_real + loss_fake
            r1 = torch.zeros(())
            if r1_step:
                (grad,) = torch.autograd.grad(lr_.sum(), xr, create_graph=True)
                r1 = grad.square().sum(dim=[1, 2, 3]).mean()
                loss = loss + r1 * (r1_gamma / 2) * r1_interval
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            acc["loss_real"].append(loss_real.item())
            acc["loss_fake"].append(loss_fake.item())
            if r1_step:
                acc["r1"].append(r1.item())
            acc["accuracy"].append(float(((lr_ > 0).float().mean() + (lf_ < 0).float().mean()) / 2))
            if step % log_every == 0 or step == steps:
                rows.append(dict(step=step, **{k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()},
                                 seconds=time.perf_counter() - t0))
                acc = {k: [] for k in acc}
        D.eval()
        for p in D.parameters():
            p.requires_grad_(False)
        return D, pd.DataFrame(rows)
    finally:
        torch.set_num_threads(old_threads)
