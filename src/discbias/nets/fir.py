"""FIR resampling filters used by the StyleGAN2 discriminator.

The discriminator low-pass filters its activations with a small separable
FIR kernel (by default the binomial ``[1, 3, 3, 1]``) before every 2x
downsampling. This module builds the normalised kernel and applies it,
as one depthwise 2-D convolution (or, on request, as two depthwise 1-D passes
for a separable kernel); when the result is downsampled the convolution is
strided so that only the samples that are kept are computed.

Conventions (the same as NVIDIA's ``upfirdn2d`` for downsampling):
the input is zero-padded by ``(pad_x0, pad_x1, pad_y0, pad_y1)``, *convolved*
(not correlated) with the kernel, and every ``down``-th sample is kept,
starting with the first.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["setup_filter", "separable_factors", "fir_filter2d", "downsample_padding", "downsample2d", "FIR_IMPLS"]

#: Available implementations of :func:`fir_filter2d`.
FIR_IMPLS = ("auto", "direct", "separable")


def setup_filter(f: Sequence[float] | Sequence[Sequence[float]] | torch.Tensor | None) -> torch.Tensor:
    """Build a normalised FIR kernel as stored in the discriminator's buffers.

    Parameters
    ----------
    f : sequence of float, nested sequence, tensor or None
        1-D taps (expanded to their outer product, unless there are 8 or more
        taps, in which case the 1-D form is kept, as NVIDIA's code does), a
        2-D kernel, or ``None`` for the identity.

    Returns
    -------
    torch.Tensor
        float32 kernel whose entries sum to one: ``[fh, fw]`` or ``[taps]``.

    Examples
    --------
    >>> k = setup_filter([1, 3, 3, 1])
    >>> tuple(k.shape), round(float(k.sum()), 6), float(k[0, 0]) == 1 / 64
    ((4, 4), 1.0, True)
    """
    if f is None:
        f = [1.0]
    t = torch.as_tensor(f, dtype=torch.float32).clone()
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim not in (1, 2) or t.numel() == 0:
        raise ValueError(f"FIR filter must be 1-D or 2-D and non-empty, got shape {tuple(t.shape)}")
    if t.ndim == 1 and t.numel() < 8:
        t = torch.outer(t, t)
    return t / t.sum()


def downsample_padding(filter_size: int, down: int = 2, extra: int = 0) -> tuple[int, int]:
    """Padding (before, after) that centres a ``filter_size``-tap kernel for ``down``-x decimation.

    Parameters
    ----------
    filter_size : int
        Number of taps along the axis.
    down : int
        Decimation factor.
    extra : int
        Additional symmetric padding (for example a following 3x3 conv's 1).

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> downsample_padding(4, 2), downsample_padding(4, 2, extra=1)
    ((1, 1), (2, 2))
    """
    return extra + (filter_size - down + 1) // 2, extra + (filter_size - down) // 2


def separable_factors(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Split a kernel into (column taps, row taps) whose outer product is ``f``.

    Parameters
    ----------
    f : torch.Tensor
        ``[fh, fw]`` or ``[taps]`` kernel.

    Returns
    -------
    tuple of torch.Tensor or None
        ``None`` when the kernel is not rank one.

    Examples
    --------
    >>> fy, fx = separable_factors(setup_filter([1, 3, 3, 1]))
    >>> [round(float(v), 4) for v in fx]
    [0.125, 0.375, 0.375, 0.125]
    """
    f = f.detach().to(device="cpu", dtype=torch.float64)
    if f.ndim == 1:
        return f.float(), f.float()
    col = f.sum(dim=1)
    row = f.sum(dim=0)
    total = f.sum()
    if float(total) == 0.0:
        return None
    approx = torch.outer(col, row) / total
    if torch.allclose(approx, f, rtol=1e-6, atol=1e-7 * float(f.abs().max())):
        scale = total.sqrt()
        return (col / scale).float(), (row / scale).float()
    return None


def fir_filter2d(
    x: torch.Tensor,
    f: torch.Tensor,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    down: int = 1,
    impl: str = "auto",
    factors: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Pad, convolve every channel with the FIR kernel, and keep every ``down``-th sample.

    Parameters
    ----------
    x : torch.Tensor
        ``[N, C, H, W]`` activations.
    f : torch.Tensor
        Kernel from :func:`setup_filter` (``[fh, fw]`` or ``[taps]``), float32.
    padding : tuple of int
        ``(pad_x0, pad_x1, pad_y0, pad_y1)`` zero padding, non-negative.
    down : int
        Decimation factor (1 = none).
    impl : {"auto", "direct", "separable"}
        ``direct`` is one (strided) depthwise 2-D convolution that pads
        internally when the padding is symmetric; ``separable`` is two
        strided depthwise 1-D passes (needs a rank-one kernel); ``auto`` is
        ``direct``, which measured faster on CPU.
    factors : tuple of torch.Tensor, optional
        Precomputed ``(column taps, row taps)`` of a separable kernel (see
        :func:`separable_factors`); skips the rank check.

    Returns
    -------
    torch.Tensor
        ``[N, C, (H + pad_y0 + pad_y1 - fh) // down + 1, ...]``.

    Examples
    --------
    >>> x = torch.ones(1, 2, 8, 8)
    >>> y = fir_filter2d(x, setup_filter([1, 3, 3, 1]), padding=(1, 1, 1, 1), down=2)
    >>> tuple(y.shape), float(y[0, 0, 1, 1])
    ((1, 2, 4, 4), 1.0)
    """
    if impl not in FIR_IMPLS:
        raise ValueError(f"impl must be one of {FIR_IMPLS}, got {impl!r}")
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if min(padding) < 0:
        raise ValueError(f"negative FIR padding {padding} is not supported")
    f = f.to(device=x.device, dtype=x.dtype)
    if impl == "auto":
        # Measured on CPU (oneDNN) and the reference's choice on GPU: one depthwise 2-D pass beats
        # two 1-D passes, because the passes are memory-bound.
        impl = "direct"
    if impl == "direct":
        k = f if f.ndim == 2 else torch.outer(f, f)
        k = k.flip([0, 1]).reshape(1, 1, *k.shape).expand(c, 1, *k.shape)
        if px0 == px1 == py0 == py1:  # let the convolution pad: saves a copy of the input
            return F.conv2d(x, k, stride=down, padding=px0, groups=c)
        return F.conv2d(F.pad(x, [px0, px1, py0, py1]), k, stride=down, groups=c)
    if any(padding):
        x = F.pad(x, [px0, px1, py0, py1])
    if factors is None:
        factors = separable_factors(f)
        if factors is None:
            raise ValueError("impl='separable' needs a rank-one (separable) kernel")
    fy, fx = (t.to(device=x.device, dtype=x.dtype) for t in factors)
    # Convolution = correlation with the flipped kernel.
    kx = fx.flip(0).reshape(1, 1, 1, -1).expand(c, 1, 1, fx.numel())
    ky = fy.flip(0).reshape(1, 1, -1, 1).expand(c, 1, fy.numel(), 1)
    x = F.conv2d(x, kx, stride=(1, down), groups=c)
    return F.conv2d(x, ky, stride=(down, 1), groups=c)


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor,
    down: int = 2,
    impl: str = "auto",
    factors: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Low-pass filter and decimate an image by ``down`` (size ``H`` -> ``H // down``).

    Parameters
    ----------
    x : torch.Tensor
        ``[N, C, H, W]``.
    f : torch.Tensor
        Kernel from :func:`setup_filter`.
    down : int
        Decimation factor.
    impl : str
        See :func:`fir_filter2d`.
    factors : tuple of torch.Tensor, optional
        See :func:`fir_filter2d`.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> downsample2d(torch.zeros(2, 3, 16, 16), setup_filter([1, 3, 3, 1])).shape
    torch.Size([2, 3, 8, 8])
    """
    fh, fw = (f.shape[0], f.shape[-1]) if f.ndim == 2 else (f.numel(), f.numel())
    px = downsample_padding(fw, down)
    py = downsample_padding(fh, down)
    return fir_filter2d(x, f, padding=(px[0], px[1], py[0], py[1]), down=down, impl=impl, factors=factors)
