"""The StyleGAN2 discriminator used by every StyleGAN3 configuration (clean room).

Architecture (Karras et al., *Analyzing and Improving the Image Quality of
StyleGAN*, 2020; *Alias-Free GANs*, 2021, which reuses it unchanged):

* one block per resolution from the input resolution down to 8; block ``r``
  maps ``channels(r)`` to ``channels(r / 2)`` channels with
  ``channels(r) = min(channel_base // r, channel_max)``;
* a block is ``fromrgb`` (1x1, only on the first block, or on every block
  for ``skip``), ``conv0`` (3x3) and ``conv1`` (3x3, FIR low-pass then
  stride 2); ``resnet`` adds a ``skip`` path (FIR + decimate, 1x1, no bias)
  and sums both paths scaled by ``sqrt(0.5)``; ``skip`` downsamples the
  image alongside and adds ``fromrgb(image)`` at every resolution;
* the 4x4 epilogue ``b4``: minibatch standard deviation, ``conv`` (3x3),
  ``fc`` (flatten -> channels(4)) and ``out`` (-> 1 logit, or -> ``cmap_dim``
  which is then projected onto the mapped class label and scaled by
  ``1 / sqrt(cmap_dim)``).

Parameter and buffer names and shapes equal NVIDIA's, so an official
``state_dict`` loads with ``strict=True``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from .fir import downsample2d, setup_filter
from .layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork, MinibatchStdLayer, FirMixin

__all__ = ["Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue", "check_init_kwargs", "discriminator_flops",
           "estimate_parameters"]

_ARCHITECTURES = ("orig", "skip", "resnet")

#: Accepted ranges of the constructor arguments read from a file (every official network is far inside).
INIT_LIMITS = dict(
    c_dim=(0, 1 << 16), img_resolution=(8, 1 << 14), img_channels=(1, 16), channel_base=(1, 1 << 20),
    channel_max=(1, 1 << 13), num_fp16_res=(0, 32), cmap_dim=(0, 1 << 13),
)
_SUB_LIMITS = {
    "block_kwargs": dict(freeze_layers=(0, 1 << 10)),
    "mapping_kwargs": dict(num_layers=(0, 64), embed_features=(0, 1 << 13), layer_features=(0, 1 << 13)),
    "epilogue_kwargs": dict(mbstd_group_size=(1, 1 << 10), mbstd_num_channels=(0, 64)),
}
_SUB_KEYS = {
    "block_kwargs": {"activation", "resample_filter", "conv_clamp", "fp16_channels_last", "freeze_layers"},
    "mapping_kwargs": {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier"},
    "epilogue_kwargs": {"mbstd_group_size", "mbstd_num_channels", "activation", "conv_clamp"},
}


def _is_int(v: Any) -> bool:
    import numbers

    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_range(where: str, v: Any, lo: int, hi: int, *, optional: bool = False) -> None:
    if v is None and optional:
        return
    if not _is_int(v) or not lo <= int(v) <= hi:
        raise ValueError(f"{where} must be an integer in [{lo}, {hi}]{' or None' if optional else ''}, got {v!r:.80}")


def _check_real(where: str, v: Any, *, optional: bool = True) -> None:
    import numbers

    if v is None and optional:
        return
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(float(v)) or float(v) <= 0:
        raise ValueError(f"{where} must be a finite positive number{' or None' if optional else ''}, got {v!r:.80}")


def check_init_kwargs(kwargs: Mapping[str, Any]) -> dict:
    """Check constructor arguments read from a file against the architecture's ranges, before building.

    A network file is untrusted input: a crafted configuration could otherwise make the
    constructor allocate gigabytes or fail deep inside (``img_resolution=2**20`` leaves blocks with
    zero channels). Every size is bounded by :data:`INIT_LIMITS`; sub-dicts may hold only the
    arguments :class:`DiscriminatorBlock`, :class:`~discbias.nets.layers.MappingNetwork` and
    :class:`DiscriminatorEpilogue` take.

    Parameters
    ----------
    kwargs : mapping
        ``Discriminator`` keyword arguments.

    Returns
    -------
    dict
        The same arguments (a copy).

    Raises
    ------
    ValueError
        Naming the argument, its value and the accepted range.

    Examples
    --------
    >>> check_init_kwargs(dict(c_dim=0, img_resolution=64, img_channels=3))["img_resolution"]
    64
    >>> check_init_kwargs(dict(c_dim=0, img_resolution=2**20, img_channels=3))
    Traceback (most recent call last):
    ...
    ValueError: img_resolution must be an integer in [8, 16384], got 1048576
    """
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"init_kwargs must be a dict, got {type(kwargs).__name__}")
    kw = dict(kwargs)
    for name in ("c_dim", "img_resolution", "img_channels"):
        if name not in kw:
            raise ValueError(f"init_kwargs lacks {name!r}")
    for name, (lo, hi) in INIT_LIMITS.items():
        if name in kw:
            _check_range(name, kw[name], lo, hi, optional=name == "cmap_dim")
    res = int(kw["img_resolution"])
    if res & (res - 1):
        raise ValueError(f"img_resolution must be a power of two, got {res}")
    arch = kw.get("architecture", "resnet")
    if arch not in _ARCHITECTURES:
        raise ValueError(f"architecture must be one of {_ARCHITECTURES}, got {arch!r:.80}")
    if int(kw.get("channel_base", 32768)) // res < 1:
        raise ValueError(f"channel_base={kw.get('channel_base', 32768)} gives the {res}px block no channels "
                         f"(channel_base // img_resolution must be >= 1)")
    _check_real("conv_clamp", kw.get("conv_clamp"))
    for sub, keys in _SUB_KEYS.items():
        d = kw.get(sub)
        if d is None:
            continue
        if not isinstance(d, Mapping):
            raise ValueError(f"{sub} must be a dict, got {type(d).__name__}")
        unknown = sorted(str(k)[:40] for k in d if k not in keys)
        if unknown:
            raise ValueError(f"{sub} has unknown arguments {unknown[:5]}; accepted: {sorted(keys)}")
        for k, (lo, hi) in _SUB_LIMITS[sub].items():
            if k in d:
                _check_range(f"{sub}.{k}", d[k], lo, hi, optional=k != "freeze_layers")
        if "conv_clamp" in d:
            _check_real(f"{sub}.conv_clamp", d["conv_clamp"])
        if "lr_multiplier" in d:
            _check_real(f"{sub}.lr_multiplier", d["lr_multiplier"], optional=False)
        for k in ("activation",):
            if k in d and not isinstance(d[k], str):
                raise ValueError(f"{sub}.{k} must be a string, got {type(d[k]).__name__}")
        if "resample_filter" in d:
            f = d["resample_filter"]
            if not isinstance(f, (list, tuple)) or not 1 <= len(f) <= 16:
                raise ValueError(f"{sub}.resample_filter must be a list of 1-16 taps, got {f!r:.80}")
    return kw


def estimate_parameters(kwargs: Mapping[str, Any]) -> int:
    """Number of parameter and persistent-buffer values ``Discriminator(**kwargs)`` would allocate.

    Computed from the configuration alone (nothing is built), so a loader can compare it with the
    number of values a file actually stores before allocating. Exact for filters of up to 7 taps
    (the official ``[1, 3, 3, 1]``), approximate for longer ones. Call :func:`check_init_kwargs` first.

    Examples
    --------
    >>> kw = dict(c_dim=0, img_resolution=32, img_channels=3, channel_base=512, channel_max=32)
    >>> D = Discriminator(**kw)
    >>> estimate_parameters(kw) == sum(v.numel() for v in D.state_dict().values())
    True
    """
    res = int(kwargs["img_resolution"])
    c_dim, img_ch = int(kwargs["c_dim"]), int(kwargs["img_channels"])
    arch = kwargs.get("architecture", "resnet")
    base, cmax = int(kwargs.get("channel_base", 32768)), int(kwargs.get("channel_max", 512))
    ch = lambda r: min(base // r, cmax)  # noqa: E731
    bk = dict(kwargs.get("block_kwargs") or {})
    taps = len(bk.get("resample_filter", (1, 3, 3, 1)))
    fir = taps if taps >= 8 else taps * taps
    n = 0
    r = res
    while r > 4:
        t, o = ch(r), ch(r // 2)
        if r == res or arch == "skip":
            n += img_ch * t + t + fir  # fromrgb (every conv layer stores a filter buffer)
        n += 9 * t * t + t + 9 * t * o + o + 3 * fir  # conv0, conv1 and the block's own filter
        if arch == "resnet":
            n += t * o + fir
        r //= 2
    c4 = ch(4)
    cmap = kwargs.get("cmap_dim")
    cmap = c4 if cmap is None else int(cmap)
    cmap = 0 if c_dim == 0 else cmap
    ep = dict(kwargs.get("epilogue_kwargs") or {})
    mb = int(ep.get("mbstd_num_channels", 1))
    if arch == "skip":
        n += img_ch * c4 + c4 + fir
    n += 9 * (c4 + mb) * c4 + c4 + fir + 16 * c4 * c4 + c4 + c4 * max(cmap, 1) + max(cmap, 1)
    if c_dim > 0:
        mk = dict(kwargs.get("mapping_kwargs") or {})
        layers = int(mk.get("num_layers", 8))
        emb = int(mk.get("embed_features") or cmap)
        feat = int(mk.get("layer_features") or cmap)
        n += c_dim * emb + emb
        sizes = [emb] + [feat] * (layers - 1) + [cmap]
        n += sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return n


def _check_architecture(architecture: str) -> None:
    if architecture not in _ARCHITECTURES:
        raise ValueError(f"architecture must be one of {_ARCHITECTURES}, got {architecture!r}")


class DiscriminatorBlock(FirMixin, torch.nn.Module):
    """One resolution of the discriminator: ``[N, in, r, r] -> [N, out, r/2, r/2]``.

    Parameters
    ----------
    in_channels : int
        Input channels; 0 for the first block (which reads the image).
    tmp_channels, out_channels : int
        Width inside the block and at its output.
    resolution, img_channels : int
        Input resolution and image channels.
    first_layer_idx : int
        Index of the block's first layer (only used by ``freeze_layers``).
    architecture : {"orig", "skip", "resnet"}
    activation : str
    resample_filter : sequence of float
    conv_clamp : float, optional
    use_fp16 : bool
        Run in float16 on CUDA unless ``force_fp32``.
    fp16_channels_last : bool
        Use channels-last memory format when running in float16.
    freeze_layers : int
        Accepted for compatibility; has no effect at inference.

    Examples
    --------
    >>> blk = DiscriminatorBlock(0, 16, 32, resolution=32, img_channels=3, first_layer_idx=0)
    >>> x, img = blk(None, torch.randn(2, 3, 32, 32))
    >>> x.shape, img is None
    (torch.Size([2, 32, 16, 16]), True)
    """

    nvidia_class_name = "DiscriminatorBlock"

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,
    ):
        super().__init__()
        _check_architecture(architecture)
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.freeze_layers = freeze_layers
        rf = list(resample_filter)
        self.register_buffer("resample_filter", setup_filter(rf))
        self._init_fir()
        self.num_layers = 0
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, activation=activation, conv_clamp=conv_clamp
            )
            self.num_layers += 1
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
            resample_filter=rf, conv_clamp=conv_clamp,
        )
        self.num_layers += 2
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, kernel_size=1, bias=False, down=2, resample_filter=rf
            )
            self.num_layers += 1

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        force_fp32: bool = False,
        channels_last: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Process one resolution; returns the features and (for ``skip``) the downsampled image.

        ``channels_last`` runs the float32 path in channels-last memory format
        (the float16 path follows ``fp16_channels_last`` as in the original).
        """
        ref = x if x is not None else img
        fp16 = self.use_fp16 and not force_fp32 and ref.device.type == "cuda"
        dtype = torch.float16 if fp16 else torch.float32
        use_cl = self.channels_last if fp16 else channels_last
        fmt = torch.channels_last if use_cl else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=fmt)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=fmt)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = (
                downsample2d(img, self.resample_filter, impl=self._fir_impl(), factors=self._fir_factors())
                if self.architecture == "skip"
                else None
            )
        if self.architecture == "resnet":
            half = math.sqrt(0.5)
            y = self.skip(x, gain=half)
            x = self.conv1(self.conv0(x), gain=half)
            x = y.add_(x)
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 head: minibatch std, conv, fc and the output projection.

    Parameters
    ----------
    in_channels : int
    cmap_dim : int
        Size of the mapped label (0 = unconditional, one logit).
    resolution, img_channels : int
    architecture : {"orig", "skip", "resnet"}
    mbstd_group_size : int or None
        Minibatch-std group size (None = whole batch).
    mbstd_num_channels : int
        Number of minibatch-std feature maps (0 disables the layer).
    activation : str
    conv_clamp : float, optional

    Examples
    --------
    >>> ep = DiscriminatorEpilogue(32, cmap_dim=0, resolution=4, img_channels=3)
    >>> ep(torch.randn(4, 32, 4, 4), None, None).shape
    torch.Size([4, 1])
    """

    nvidia_class_name = "DiscriminatorEpilogue"

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        super().__init__()
        _check_architecture(architecture)
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None, force_fp32: bool = False
    ) -> torch.Tensor:
        """Return logits ``[N, 1]`` (always float32)."""
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class Discriminator(torch.nn.Module):
    """StyleGAN2/StyleGAN3 discriminator with NVIDIA's constructor and state-dict layout.

    Parameters
    ----------
    c_dim : int
        Class-label size (0 = unconditional).
    img_resolution : int
        Input resolution (a power of two, >= 8).
    img_channels : int
        Image channels.
    architecture : {"orig", "skip", "resnet"}
        Block architecture; the official pickles use ``resnet``.
    channel_base, channel_max : int
        ``channels(r) = min(channel_base // r, channel_max)``.
    num_fp16_res : int
        Number of highest resolutions that run in float16 on CUDA.
    conv_clamp : float, optional
        Clamp of convolution outputs (256 in the official configs).
    cmap_dim : int, optional
        Size of the mapped label; defaults to ``channels(4)``; forced to 0
        when ``c_dim == 0``.
    block_kwargs, mapping_kwargs, epilogue_kwargs : dict
        Extra arguments of :class:`DiscriminatorBlock`, the label
        :class:`~discbias.nets.layers.MappingNetwork` and
        :class:`DiscriminatorEpilogue` (e.g. ``mbstd_group_size``).

    Notes
    -----
    ``D(img, c)`` expects float NCHW images in ``[-1, 1]`` (uint8 pixels map
    as ``p / 127.5 - 1``) and returns float32 logits ``[N, 1]``. Because of
    the minibatch-std layer an image's logit depends on the other images of
    its group (images ``i`` and ``j`` share a group when ``i % (N // G) ==
    j % (N // G)``); score single images or fixed batches accordingly.

    Examples
    --------
    >>> D = Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=512, channel_max=64)
    >>> with torch.inference_mode():
    ...     logits = D(torch.rand(4, 3, 32, 32) * 2 - 1)
    >>> logits.shape, logits.dtype
    (torch.Size([4, 1]), torch.float32)
    >>> "b32.fromrgb.weight" in D.state_dict() and "b4.out.bias" in D.state_dict()
    True
    """

    nvidia_class_name = "Discriminator"

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        conv_clamp: float | None = 256,
        cmap_dim: int | None = None,
        block_kwargs: Mapping[str, Any] | None = None,
        mapping_kwargs: Mapping[str, Any] | None = None,
        epilogue_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        _check_architecture(architecture)
        #: Constructor arguments, JSON-serialisable; ``Discriminator(**D.init_kwargs)`` rebuilds the network.
        self.init_kwargs = dict(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, architecture=architecture,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp, cmap_dim=cmap_dim, block_kwargs=dict(block_kwargs or {}),
            mapping_kwargs=dict(mapping_kwargs or {}), epilogue_kwargs=dict(epilogue_kwargs or {}),
        )
        log2 = int(round(math.log2(img_resolution))) if img_resolution > 0 else 0
        if img_resolution < 8 or 2**log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        block_kwargs = dict(block_kwargs or {})
        mapping_kwargs = dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = log2
        self.img_channels = img_channels
        self.architecture = architecture
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        #: Run float32 CPU inference in channels-last memory format (oneDNN convolutions and the
        #: depthwise FIR measured 5-15 % faster than NCHW on CPU); set False to use NCHW.
        self.channels_last_cpu = True
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0,
                channels[res],
                channels[res // 2],
                resolution=res,
                first_layer_idx=layer_idx,
                use_fp16=res >= fp16_resolution,
                **block_kwargs,
                **common,
            )
            self.add_module(f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs
            )
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    def forward(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None = None,
        force_fp32: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """Score images.

        Parameters
        ----------
        img : torch.Tensor
            ``[N, img_channels, img_resolution, img_resolution]`` float, range ``[-1, 1]``.
        c : torch.Tensor, optional
            ``[N, c_dim]`` labels (one-hot for the official conditional
            networks); required when ``c_dim > 0``, ignored otherwise.
        force_fp32 : bool
            Run every block in float32 even on CUDA.
        update_emas : bool
            Ignored (accepted for call compatibility).

        Returns
        -------
        torch.Tensor
            float32 logits ``[N, 1]``.
        """
        del update_emas
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(
                f"expected images of shape [N, {expected[0]}, {expected[1]}, {expected[2]}], "
                f"got {list(img.shape)}; resize/convert images to the network's resolution first"
            )
        if not img.is_floating_point():
            raise TypeError(f"expected float images in [-1, 1], got dtype {img.dtype}; use img / 127.5 - 1")
        cmap = None
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or tuple(c.shape) != (img.shape[0], self.c_dim):
                raise ValueError(
                    f"this discriminator is conditional: pass labels c of shape [{img.shape[0]}, {self.c_dim}], "
                    f"got {None if c is None else list(c.shape)}"
                )
            cmap = self.mapping(None, c.to(img.device))
        channels_last = self.channels_last_cpu and img.device.type == "cpu"
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32, channels_last=channels_last)
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"


def discriminator_flops(D: Discriminator) -> dict[str, float]:
    """Count the floating-point operations of one image's forward pass.

    Multiply-adds count as 2 FLOPs. Convolutions and fully connected layers
    are counted exactly from the layer shapes; the FIR low-pass filters are
    counted as the depthwise 2-D convolutions that implement them (16 taps
    for ``[1, 3, 3, 1]``).

    Parameters
    ----------
    D : Discriminator

    Returns
    -------
    dict
        ``{"conv_fc": ..., "fir": ..., "total": ...}`` in FLOPs per image.

    Examples
    --------
    >>> D = Discriminator(0, 32, 3, channel_base=512, channel_max=64)
    >>> f = discriminator_flops(D)
    >>> f["total"] == f["conv_fc"] + f["fir"] and f["conv_fc"] > 0
    True
    """
    conv_fc = 0.0
    fir = 0.0

    def conv_cost(layer: Conv2dLayer, res: int) -> tuple[float, float]:
        k = layer.kernel_size
        out_res = res // layer.down
        macs = layer.in_channels * layer.out_channels * k * k * out_res * out_res
        f = layer.resample_filter
        taps = f.numel() if f.ndim == 2 else f.numel() ** 2
        if layer.down == 1:
            fir_macs = 0.0
        elif k == 1:  # strided FIR: only the kept samples are computed
            fir_macs = layer.in_channels * out_res * out_res * taps
        else:  # full-rate FIR on the padded input, then the strided 3x3 convolution
            fir_macs = layer.in_channels * (res + 1) ** 2 * taps
        return 2.0 * macs, 2.0 * fir_macs

    for res in D.block_resolutions:
        blk = getattr(D, f"b{res}")
        for name in ("fromrgb", "conv0", "conv1", "skip"):
            layer = getattr(blk, name, None)
            if layer is not None:
                a, b = conv_cost(layer, res)
                conv_fc += a
                fir += b
    ep = D.b4
    for name in ("fromrgb", "conv"):
        layer = getattr(ep, name, None)
        if layer is not None:
            a, _ = conv_cost(layer, 4)
            conv_fc += a
    conv_fc += 2.0 * (ep.fc.in_features * ep.fc.out_features + ep.out.in_features * ep.out.out_features)
    return {"conv_fc": conv_fc, "fir": fir, "total": conv_fc + fir}
