"""A small generator and a real GAN training loop on the CPU (the planted-bias study's generator mode).

The generator is a StyleGAN2-family "lite" network written here from the papers' descriptions
(no NVIDIA code): a mapping MLP ``z -> w`` (``z`` normalised to unit second moment, leaky-ReLU
layers with a 0.01 learning-rate multiplier as in StyleGAN), a fully connected layer from ``w`` to a
4 x 4 feature map, then per resolution a nearest-neighbour 2x upsampling and a 3 x 3 convolution with
leaky ReLU (slope 0.2, gain sqrt(2)), and a 1 x 1 ``toRGB`` convolution with a linear output. Every
weight uses the *equalised learning rate* (drawn N(0, 1), scaled by ``1 / sqrt(fan_in)`` at run time).
There is no style modulation, noise input or skip/residual architecture: it is closer to a DCGAN
with StyleGAN's mapping network and weight scaling, chosen to fit a CPU budget of seconds.

:func:`train_gan` trains it jointly with :class:`discbias.nets.Discriminator` by StyleGAN2's losses:
the discriminator step is exactly :func:`discbias.planted.train.train_discriminator`'s
(non-saturating logistic loss plus lazy R1 on the real images, Adam betas (0, 0.99)), with the
generator's samples (no gradient) as the fake images; the generator step minimises the
non-saturating loss ``softplus(-D(G(z)))``. One D step and one G step alternate. No exponential
moving average of the generator's weights is kept (over a few hundred steps an EMA with NVIDIA's
10k-image half-life would average mostly the untrained network), so the samples come from the
trained generator itself.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Generator", "train_gan", "generator_step", "to_uint8", "sample_attributes"]

_GAIN = math.sqrt(2.0)
#: The dark-share proxy's threshold: mean Rec. 709 luma of the face centre below this counts as dark.
DARK_PROXY_LUMA = 0.5


class _EqLinear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(fan_out))
        self.w_gain = lr_mul / math.sqrt(fan_in)
        self.lr_mul = lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.w_gain, self.bias * self.lr_mul)


class _EqConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.w_gain = 1.0 / math.sqrt(c_in * k * k)
        self.pad = k // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.w_gain, self.bias, padding=self.pad)


class Generator(nn.Module):
    """Mapping + synthesis generator of ``resolution`` x ``resolution`` RGB images in [-1, 1] (NCHW,
    float32; not clamped, as StyleGAN's output).

    Parameters
    ----------
    z_dim, w_dim : int
        Latent and intermediate latent sizes.
    resolution : int
        Output side, a power of two >= 8.
    channels : int
        Feature maps at every resolution.
    mapping_layers : int
        Layers of the mapping MLP.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> G = Generator(resolution=16, channels=8)
    >>> G(torch.randn(2, G.z_dim)).shape
    torch.Size([2, 3, 16, 16])
    """

    def __init__(self, z_dim: int = 64, w_dim: int = 64, resolution: int = 32, channels: int = 32,
                 mapping_layers: int = 2):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        self.z_dim, self.w_dim, self.resolution, self.channels = int(z_dim), int(w_dim), int(resolution), int(channels)
        self.mapping = nn.ModuleList(_EqLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=0.01)
                                     for i in range(mapping_layers))
        self.fc = _EqLinear(w_dim, channels * 16)
        self.convs = nn.ModuleList(_EqConv(channels, channels, 3)
                                   for _ in range(int(math.log2(resolution)) - 1))  # 4 x 4, then each upsampling
        self.to_rgb = _EqConv(channels, 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for layer in self.mapping:
            x = F.leaky_relu(layer(x), 0.2) * _GAIN
        x = F.leaky_relu(self.fc(x), 0.2).view(-1, self.channels, 4, 4) * _GAIN
        for i, conv in enumerate(self.convs):
            if i:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.leaky_relu(conv(x), 0.2) * _GAIN
        return self.to_rgb(x)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Generator output (NCHW, [-1, 1]) -> uint8 NHWC images, as NVIDIA's ``gen_images.py`` converts them
    (``x * 127.5 + 128``, clamped to 0-255).

    Examples
    --------
    >>> to_uint8(torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)).tolist()
    [[[[0, 128, 255]]]]
    """
    return (x.detach() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def sample_attributes(images: np.ndarray) -> dict:
    """Mean image attributes of a set of uint8 NHWC images, measured the same way for real images and
    for generator samples: ``luma_709`` and ``lab_a`` (means over images of the per-image pixel means,
    as the audit's measures define them), and ``dark_share_proxy``: the share of images whose face
    centre (the patch x 0.4-0.6, y 0.5-0.6 of the image, inside the skin ellipse of
    :func:`~discbias.planted.data.make_faces`) has a mean Rec. 709 luma below 0.5, between the two skin
    groups' colours (a proxy of the dark-group share; its agreement with the drawn group on real images
    is what makes it readable; the threshold is ``DARK_PROXY_LUMA``).

    Examples
    --------
    >>> from discbias.planted.data import make_faces
    >>> imgs, a = make_faces(300, 32, np.random.default_rng(0), dark_share=0.2)
    >>> r = sample_attributes(imgs)
    >>> bool(abs(r["dark_share_proxy"] - (a["group"] == "dark").mean()) < 0.05)
    True
    """
    from ..measures.color import luma_709, srgb_to_lab

    px = images.astype(np.float64) / 255.0
    s = images.shape[1]
    patch = px[:, int(0.5 * s):max(int(0.6 * s), int(0.5 * s) + 1), int(0.4 * s):max(int(0.6 * s), int(0.4 * s) + 1)]
    return dict(luma_709=float(luma_709(px).mean()), lab_a=float(srgb_to_lab(px)[..., 1].mean()),
                dark_share_proxy=float((luma_709(patch).mean(axis=(1, 2)) < DARK_PROXY_LUMA).mean()))


def generator_step(G: Generator, D: nn.Module, opt: torch.optim.Optimizer, z: torch.Tensor) -> torch.Tensor:
    """One generator update: minimise the non-saturating loss ``softplus(-D(G(z))).mean()`` with ``D``'s
    parameters frozen (their ``requires_grad`` is switched off; the caller's D step switches it back on).
    Returns the loss before the update.

    Examples
    --------
    >>> from discbias.nets import Discriminator
    >>> from discbias.planted.train import network_kwargs
    >>> _ = torch.manual_seed(0)
    >>> G, D = Generator(resolution=16, channels=8), Discriminator(**network_kwargs(16, channel_max=8))
    >>> opt = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.0, 0.99))
    >>> z = torch.randn(8, G.z_dim)
    >>> losses = [float(generator_step(G, D, opt, z)) for _ in range(10)]
    >>> losses[-1] < losses[0]
    True
    """
    for p_ in D.parameters():
        p_.requires_grad_(False)
    loss = F.softplus(-D(G(z))).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def train_gan(real: np.ndarray, *, network: dict | None = None, generator: dict | None = None, steps: int = 150,
              batch_size: int = 32, lr: float = 0.0025, r1_gamma: float = 0.1, r1_interval: int = 4, seed: int = 0,
              log_every: int = 10, threads: int | None = None, n_samples: int = 16, n_measure: int = 256,
              g_lr: float | None = None):
    """Train a :class:`Generator` and a :class:`discbias.nets.Discriminator` against each other on ``real``.

    Parameters
    ----------
    real : ndarray of uint8, shape (n, size, size, 3)
        The real training images (scaled as NVIDIA's loop scales them, with random x-flips).
    network : dict, optional
        The discriminator's constructor arguments (default
        :func:`discbias.planted.train.network_kwargs` at the images' size).
    generator : dict, optional
        :class:`Generator` arguments (``resolution`` defaults to the images' size).
    steps : int
        Iterations, each one D step and one G step, of ``batch_size`` real and ``batch_size`` generated
        images each.
    lr, r1_gamma, r1_interval : float, float, int
        Adam learning rate, R1 weight, lazy R1 interval, as in
        :func:`~discbias.planted.train.train_discriminator`.
    g_lr : float, optional
        The generator's Adam learning rate (default ``lr``, as NVIDIA's configurations).
    seed : int
        Seeds both initialisations, the latents, the batches and the flips.
    log_every : int
        Record the losses every this many steps (and at the last).
    threads : int, optional
        ``torch.set_num_threads`` during training (restored after).
    n_samples : int
        Samples kept for a grid (from fixed latents drawn from the seed).
    n_measure : int
        Samples whose attributes (:func:`sample_attributes`) are measured at the end.

    Returns
    -------
    D : discbias.nets.Discriminator
        In eval mode, gradients off.
    G : Generator
        In eval mode, gradients off.
    log : DataFrame
        ``step, loss_real, loss_fake, r1, accuracy, loss_g`` (means since the previous row; ``loss_fake``
        is D's loss on the generated images, ``loss_g`` the generator's non-saturating loss) and
        ``seconds`` (elapsed wall), ``cpu_seconds`` (process CPU time, robust to machine load).
    samples : ndarray of uint8, shape (n_samples, size, size, 3)
    attributes : dict
        :func:`sample_attributes` of ``n_measure`` samples.
    measured : ndarray of uint8, shape (n_measure, size, size, 3)
        Those samples (the first ``n_samples`` of them are ``samples``).

    Examples
    --------
    >>> from discbias.planted.data import make_faces
    >>> real, _ = make_faces(64, 16, np.random.default_rng(0))
    >>> D, G, log, samples, attrs, _ = train_gan(real, generator=dict(channels=8), steps=4, batch_size=8,
    ...                                       log_every=2, n_samples=4, n_measure=8)
    >>> list(log["step"]), samples.shape, samples.dtype, sorted(attrs)
    ([2, 4], (4, 16, 16, 3), dtype('uint8'), ['dark_share_proxy', 'lab_a', 'luma_709'])
    """
    from ..nets import Discriminator
    from .train import network_kwargs, to_input

    if real.ndim != 4 or real.shape[3] != 3 or real.shape[1] != real.shape[2]:
        raise ValueError(f"real images must be (n, size, size, 3), got {real.shape}")
    size = real.shape[1]
    gkw = dict(resolution=size, **(generator or {}))
    if gkw["resolution"] != size:
        raise ValueError(f"generator resolution {gkw['resolution']} differs from the images' size {size}")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        torch.manual_seed(seed)
        D = Discriminator(**(network or network_kwargs(size)))
        G = Generator(**gkw)
        D.train()
        G.train()
        opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        opt_g = torch.optim.Adam(G.parameters(), lr=g_lr or lr, betas=(0.0, 0.99), eps=1e-8)
        rng = np.random.default_rng([seed, 3])
        zgen = torch.Generator().manual_seed(int(seed) * 1000 + 7)
        xr_all = to_input(real)
        rows = []
        acc = dict(loss_real=[], loss_fake=[], r1=[], accuracy=[], loss_g=[])
        t0, c0 = time.perf_counter(), time.process_time()
        for step in range(1, steps + 1):
            # --- D step: real (x-flipped at random) against the generator's current samples
            xr = xr_all[rng.integers(0, len(xr_all), batch_size)]
            flip = torch.from_numpy(rng.random(batch_size) < 0.5)
            xr = torch.where(flip[:, None, None, None], xr.flip(3), xr)
            with torch.no_grad():
                xf = G(torch.randn(batch_size, G.z_dim, generator=zgen))
            r1_step = r1_gamma > 0 and step % r1_interval == 0
            if r1_step:
                xr = xr.detach().requires_grad_(True)
            for p_ in D.parameters():
                p_.requires_grad_(True)
            lr_, lf_ = D(xr), D(xf)
            loss_real, loss_fake = F.softplus(-lr_).mean(), F.softplus(lf_).mean()
            loss = loss_real + loss_fake
            if r1_step:
                (grad,) = torch.autograd.grad(lr_.sum(), xr, create_graph=True)
                r1 = grad.square().sum(dim=[1, 2, 3]).mean()
                loss = loss + r1 * (r1_gamma / 2) * r1_interval
                acc["r1"].append(r1.item())
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            # --- G step: non-saturating loss through a frozen D
            loss_g = generator_step(G, D, opt_g, torch.randn(batch_size, G.z_dim, generator=zgen))
            acc["loss_real"].append(loss_real.item())
            acc["loss_fake"].append(loss_fake.item())
            acc["loss_g"].append(loss_g.item())
            acc["accuracy"].append(float(((lr_ > 0).float().mean() + (lf_ < 0).float().mean()) / 2))
            if step % log_every == 0 or step == steps:
                rows.append(dict(step=step, **{k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()},
                                 seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0))
                acc = {k: [] for k in acc}
        D.eval()
        G.eval()
        for p_ in (*D.parameters(), *G.parameters()):
            p_.requires_grad_(False)
        zs = torch.Generator().manual_seed(int(seed) * 1000 + 11)
        with torch.no_grad():
            z = torch.randn(max(n_samples, n_measure), G.z_dim, generator=zs)
            imgs = np.concatenate([to_uint8(G(z[i:i + 64])) for i in range(0, len(z), 64)])
        return D, G, pd.DataFrame(rows), imgs[:n_samples], sample_attributes(imgs[:n_measure]), imgs[:n_measure]
    finally:
        torch.set_num_threads(old_threads)
