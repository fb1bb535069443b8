"""Building blocks of the StyleGAN2 discriminator (clean-room implementation).

The layers keep NVIDIA's parameter and buffer names and shapes so that the
state of an official network pickle loads into them unchanged, but they are
written from the published maths:

* *equalised learning rate*: weights are stored with unit variance and
  multiplied at run time by ``1 / sqrt(fan_in)`` (times a learning-rate
  multiplier for fully connected layers);
* ``y = clamp(act(conv(x, w * weight_gain) + b) * gain, -clamp, clamp)``,
  where ``gain`` is the activation's default gain (``sqrt(2)`` for leaky
  ReLU with slope 0.2) times a per-call factor, and the clamp limit is
  scaled by the same per-call factor;
* 2x downsampling convolutions low-pass filter the (padded) input with the
  FIR kernel before a strided convolution; 1x1 downsampling convolutions
  filter-and-decimate first and then apply the 1x1 convolution.

For positively homogeneous activations (linear, ReLU, leaky ReLU) the output
gain is folded into the weights and bias, which saves one pass over the
activations and is exact in real arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .fir import downsample_padding, fir_filter2d, separable_factors, setup_filter

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "Conv2dLayer",
    "FullyConnectedLayer",
    "MinibatchStdLayer",
    "MappingNetwork",
    "normalize_2nd_moment",
]


@dataclass(frozen=True)
class _Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    inplace: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float
    homogeneous: bool  # act(a * x) == a * act(x) for a > 0


def _swish(x: torch.Tensor, _a: float) -> torch.Tensor:
    return torch.sigmoid(x) * x


#: Activation functions understood by the layers (name -> definition).
ACTIVATIONS: dict[str, _Activation] = {
    "linear": _Activation(lambda x, a: x, lambda x, a: x, 0.0, 1.0, True),
    "relu": _Activation(lambda x, a: F.relu(x), lambda x, a: F.relu_(x), 0.0, math.sqrt(2), True),
    "lrelu": _Activation(
        lambda x, a: F.leaky_relu(x, a), lambda x, a: F.leaky_relu_(x, a), 0.2, math.sqrt(2), True
    ),
    "tanh": _Activation(lambda x, a: torch.tanh(x), lambda x, a: x.tanh_(), 0.0, 1.0, False),
    "sigmoid": _Activation(lambda x, a: torch.sigmoid(x), lambda x, a: x.sigmoid_(), 0.0, 1.0, False),
    "elu": _Activation(lambda x, a: F.elu(x), lambda x, a: F.elu_(x), 0.0, 1.0, False),
    "selu": _Activation(lambda x, a: F.selu(x), lambda x, a: F.selu_(x), 0.0, 1.0, False),
    "softplus": _Activation(lambda x, a: F.softplus(x), lambda x, a: F.softplus(x), 0.0, 1.0, False),
    "swish": _Activation(_swish, _swish, 0.0, math.sqrt(2), False),
}


def _activation(name: str) -> _Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    dim: int = 1,
) -> torch.Tensor:
    """Add a bias, apply an activation, scale by a gain and clamp (reference form).

    Parameters
    ----------
    x : torch.Tensor
        Input.
    b : torch.Tensor, optional
        1-D bias broadcast along ``dim``.
    act : str
        Name in :data:`ACTIVATIONS`.
    gain : float, optional
        Output scale; the activation's default gain when None.
    clamp : float, optional
        Clamp the result to ``[-clamp, clamp]``; no clamping when None.
    dim : int
        Axis the bias runs along.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> bias_act(torch.tensor([[-1.0, 2.0]]), act="lrelu").tolist()  # doctest: +ELLIPSIS
    [[-0.28284..., 2.82842...]]
    """
    spec = _activation(act)
    if b is not None:
        shape = [-1 if i == dim else 1 for i in range(x.ndim)]
        x = x + b.to(x.dtype).reshape(shape)
    x = spec.func(x, spec.def_alpha)
    g = spec.def_gain if gain is None else gain
    if g != 1:
        x = x * g
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit root-mean-square along ``dim``.

    Examples
    --------
    >>> y = normalize_2nd_moment(torch.tensor([[3.0, 4.0]]))
    >>> round(float(y.square().mean()), 5)
    1.0
    """
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FirMixin:
    """Keeps the separable factors of the ``resample_filter`` buffer as non-persistent buffers.

    They move with ``.to()``, never appear in ``state_dict()``, are refreshed
    whenever a state dict is loaded, and keep the forward pass free of
    data-dependent Python branches (so ``torch.compile`` traces it once).
    """

    resample_filter: torch.Tensor

    def _init_fir(self) -> None:
        self.register_buffer("_fir_col", torch.empty(0), persistent=False)
        self.register_buffer("_fir_row", torch.empty(0), persistent=False)
        self._fir_separable = False
        self.refresh_fir()

    def refresh_fir(self) -> None:
        """Recompute the cached factors (call after editing ``resample_filter`` in place)."""
        fac = separable_factors(self.resample_filter)
        dev = self.resample_filter.device
        self._fir_separable = fac is not None
        self._fir_col = fac[0].to(dev) if fac is not None else torch.empty(0, device=dev)
        self._fir_row = fac[1].to(dev) if fac is not None else torch.empty(0, device=dev)

    def _fir_factors(self):
        return (self._fir_col, self._fir_row) if self._fir_separable else None

    def _fir_impl(self) -> str:
        return "auto" if self._fir_separable else "direct"

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)  # type: ignore[misc]
        self.refresh_fir()


class Conv2dLayer(FirMixin, torch.nn.Module):
    """Equalised-learning-rate 2-D convolution with bias, activation, clamp and optional 2x down.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int
        Square kernel size; padding is ``kernel_size // 2``.
    bias : bool
        Learn an additive bias.
    activation : str
        Name in :data:`ACTIVATIONS`.
    down : int
        Downsampling factor (1 or 2 in the discriminator).
    resample_filter : sequence of float
        FIR taps used when ``down > 1`` (stored as the ``resample_filter`` buffer).
    conv_clamp : float, optional
        Clamp outputs to ``+-conv_clamp * gain``.
    channels_last, trainable : bool
        Accepted for compatibility with NVIDIA's constructor; ``trainable``
        has no effect on the state-dict names.

    Examples
    --------
    >>> layer = Conv2dLayer(3, 8, kernel_size=3, activation="lrelu", down=2)
    >>> layer(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 8, 8, 8])
    """

    nvidia_class_name = "Conv2dLayer"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
        trainable: bool = True,
    ):
        super().__init__()
        if up != 1:
            raise ValueError("Conv2dLayer(up > 1) is a generator feature; the discriminator never upsamples")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self._act = _activation(activation)
        self.down = int(down)
        self.conv_clamp = conv_clamp
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = self._act.def_gain
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self._init_fir()
        self.weight = torch.nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """Apply the layer; ``gain`` scales the output and the clamp limit."""
        spec = self._act
        out_gain = self.act_gain * gain
        fold = out_gain if spec.homogeneous else 1.0
        w = (self.weight * (self.weight_gain * fold)).to(x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            w = w.contiguous(memory_format=torch.channels_last)  # keep oneDNN/cuDNN in one layout
        b = None
        if self.bias is not None:
            b = (self.bias * fold).to(x.dtype) if fold != 1.0 else self.bias.to(x.dtype)
        if self.down == 1:
            x = F.conv2d(x, w, b, padding=self.padding)
        else:
            f = self.resample_filter
            fh, fw = (f.shape[0], f.shape[-1]) if f.ndim == 2 else (f.numel(), f.numel())
            px = downsample_padding(fw, self.down, self.padding)
            py = downsample_padding(fh, self.down, self.padding)
            pad = (px[0], px[1], py[0], py[1])
            if self.kernel_size == 1:
                x = fir_filter2d(x, f, pad, down=self.down, impl=self._fir_impl(), factors=self._fir_factors())
                x = F.conv2d(x, w, b)
            else:
                x = fir_filter2d(x, f, pad, down=1, impl=self._fir_impl(), factors=self._fir_factors())
                x = F.conv2d(x, w, b, stride=self.down)
        # In-place activation/clamp saves memory traffic, but only when no autograd graph is recorded
        # (leaky ReLU's backward needs its output, which an in-place clamp would overwrite).
        inplace = not (torch.is_grad_enabled() and x.requires_grad)
        if self.activation != "linear":
            x = spec.inplace(x, spec.def_alpha) if inplace else spec.func(x, spec.def_alpha)
        if not spec.homogeneous and out_gain != 1:
            x = x * out_gain
        if self.conv_clamp is not None:
            limit = self.conv_clamp * gain
            x = x.clamp_(-limit, limit) if inplace else x.clamp(-limit, limit)
        return x

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, activation={self.activation}, down={self.down}"
        )


class FullyConnectedLayer(torch.nn.Module):
    """Equalised-learning-rate fully connected layer.

    ``y = act(x @ (W * lr / sqrt(in)).T + b * lr) * def_gain``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes.
    bias : bool
        Learn an additive bias.
    activation : str
        Name in :data:`ACTIVATIONS`.
    lr_multiplier : float
        Learning-rate multiplier (scales both weight and bias at run time).
    bias_init : float
        Initial bias value.

    Examples
    --------
    >>> fc = FullyConnectedLayer(16, 4, activation="lrelu")
    >>> fc(torch.randn(3, 16)).shape
    torch.Size([3, 4])
    """

    nvidia_class_name = "FullyConnectedLayer"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self._act = _activation(activation)
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``[N, in_features]``."""
        spec = self._act
        fold = spec.def_gain if spec.homogeneous else 1.0
        w = (self.weight * (self.weight_gain * fold)).to(x.dtype)
        b = None
        if self.bias is not None:
            b = self.bias * (self.bias_gain * fold) if self.bias_gain * fold != 1 else self.bias
            b = b.to(x.dtype)
        x = F.linear(x, w, b)
        if self.activation != "linear":
            x = spec.func(x, spec.def_alpha)
        if not spec.homogeneous and spec.def_gain != 1:
            x = x * spec.def_gain
        return x

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MinibatchStdLayer(torch.nn.Module):
    """Append the minibatch standard deviation as extra feature maps.

    The batch of ``N`` images is split into ``n = N // G`` groups of ``G =
    min(group_size, N)`` images; image ``i`` belongs to group ``i mod n``.
    The channels are split into ``num_channels`` slices. For each group and
    slice the standard deviation over the group's images is computed per
    channel and pixel (population variance plus 1e-8, square root) and
    averaged over channels and pixels; the result is appended to every image
    of the group as ``num_channels`` constant feature maps. The feature is
    therefore invariant to permuting images within a group, and an image's
    score depends on the other images of its group.

    Parameters
    ----------
    group_size : int or None
        Group size; None uses the whole minibatch.
    num_channels : int
        Number of appended feature maps.

    Examples
    --------
    >>> layer = MinibatchStdLayer(group_size=2)
    >>> layer(torch.randn(4, 8, 4, 4)).shape
    torch.Size([4, 9, 4, 4])
    """

    nvidia_class_name = "MinibatchStdLayer"

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Append the statistic to ``[N, C, H, W]`` activations."""
        n_img, c, h, w = x.shape
        g = n_img if self.group_size is None else min(int(self.group_size), n_img)
        if n_img % g != 0:
            raise ValueError(
                f"batch size {n_img} is not a multiple of the minibatch-std group size {g}; "
                f"score in batches whose size is a multiple of {g} (or 1..{g - 1} images per call)"
            )
        nf = self.num_channels
        if c % nf != 0:
            raise ValueError(f"{c} channels cannot be split into {nf} minibatch-std slices")
        y = x.float().reshape(g, n_img // g, nf, c // nf, h, w)
        var = (y - y.mean(dim=0)).square().mean(dim=0)  # [n, F, c, H, W]
        std = (var + 1e-8).sqrt().mean(dim=(2, 3, 4))  # [n, F]
        feat = std.to(x.dtype).reshape(1, n_img // g, nf, 1, 1).expand(g, -1, -1, h, w)
        return torch.cat([x, feat.reshape(n_img, nf, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class MappingNetwork(torch.nn.Module):
    """Label-embedding mapping network (the discriminator's conditioning branch).

    ``c -> normalise(embed(c)) -> num_layers x FC(lrelu, lr_multiplier)``.
    A latent ``z`` is supported for completeness (normalised and concatenated
    before the label embedding), but the discriminator uses ``z_dim=0``.

    Parameters
    ----------
    z_dim, c_dim, w_dim : int
        Latent, label and output sizes.
    num_ws : int or None
        Broadcast count (None = no broadcast, as in the discriminator).
    num_layers : int
        Number of fully connected layers after the embedding.
    embed_features, layer_features : int, optional
        Embedding and hidden widths (default ``w_dim``).
    activation : str
        Activation of the hidden layers.
    lr_multiplier : float
        Learning-rate multiplier of the hidden layers.
    w_avg_beta : float or None
        Only decides whether a ``w_avg`` buffer exists (for state-dict parity).

    Examples
    --------
    >>> m = MappingNetwork(z_dim=0, c_dim=5, w_dim=32, num_ws=None, w_avg_beta=None)
    >>> m(None, torch.eye(5)[:2]).shape
    torch.Size([2, 32])
    """

    nvidia_class_name = "MappingNetwork"

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.998,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            self.add_module(
                f"fc{idx}",
                FullyConnectedLayer(
                    features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
                ),
            )
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """Map ``z`` (``[N, z_dim]`` or None) and ``c`` (``[N, c_dim]``) to ``[N, w_dim]``."""
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"expected z of shape [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
            parts.append(normalize_2nd_moment(z.float()))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(
                    f"expected labels c of shape [N, {self.c_dim}], got {None if c is None else tuple(c.shape)}"
                )
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
