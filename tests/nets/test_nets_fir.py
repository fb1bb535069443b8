"""FIR filtering and downsampling checked against direct convolutions written independently (numpy loops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discbias.nets.fir import downsample2d, fir_filter2d, separable_factors, setup_filter
from discbias.nets.layers import Conv2dLayer


def direct_fir(x: np.ndarray, k: np.ndarray, pad: tuple[int, int, int, int], down: int) -> np.ndarray:
    """Zero-pad, true 2-D convolution (kernel flipped), keep every down-th sample. Plain loops."""
    px0, px1, py0, py1 = pad
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + py0 + py1, w + px0 + px1), dtype=np.float64)
    xp[:, :, py0:py0 + h, px0:px0 + w] = x
    kh, kw = k.shape
    oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            acc = 0.0
            for a in range(kh):
                for b in range(kw):
                    # convolution: out[i,j] = sum x[i+a, j+b] * k[kh-1-a, kw-1-b]
                    acc = acc + xp[:, :, i + a, j + b] * k[kh - 1 - a, kw - 1 - b]
            out[:, :, i, j] = acc
    return out[:, :, ::down, ::down]


def direct_conv(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """Valid cross-correlation (what deep-learning 'conv' means) with loops over output pixels."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


def test_setup_filter_is_normalised_binomial():
    f = setup_filter([1, 3, 3, 1])
    expected = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    assert f.dtype == torch.float32 and tuple(f.shape) == (4, 4)
    np.testing.assert_allclose(f.numpy(), expected, rtol=0, atol=0)
    assert setup_filter(list(range(1, 9))).ndim == 1  # long 1-D filters stay separable, as NVIDIA's


@pytest.mark.parametrize("impl", ["auto", "direct", "separable"])
@pytest.mark.parametrize("pad,down", [((1, 1, 1, 1), 2), ((2, 2, 2, 2), 1), ((0, 0, 0, 0), 1), ((2, 1, 1, 2), 2)])
def test_fir_matches_direct_convolution(impl, pad, down):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 10, 10))
    f = setup_filter([1, 3, 3, 1])
    got = fir_filter2d(torch.from_numpy(x).float(), f, padding=pad, down=down, impl=impl).double().numpy()
    want = direct_fir(x, f.double().numpy(), pad, down)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_fir_asymmetric_kernel_is_convolution_not_correlation():
    # A non-symmetric, non-separable kernel distinguishes convolution from correlation.
    rng = np.random.default_rng(1)
    k = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 5.0], [3.0, 0.0, 1.0]])
    f = setup_filter(k.tolist())
    assert separable_factors(f) is None
    x = rng.standard_normal((1, 2, 7, 7))
    got = fir_filter2d(torch.from_numpy(x).float(), f, padding=(1, 1, 1, 1), down=1).double().numpy()
    want = direct_fir(x, f.double().numpy(), (1, 1, 1, 1), 1)
    np.testing.assert_allclose(got, want, atol=2e-6)
    with pytest.raises(ValueError, match="rank-one"):
        fir_filter2d(torch.from_numpy(x).float(), f, impl="separable")


def test_downsample2d_keeps_constants_and_halves_size():
    x = torch.full((1, 3, 16, 16), 2.5)
    y = downsample2d(x, setup_filter([1, 3, 3, 1]))
    assert tuple(y.shape) == (1, 3, 8, 8)
    # Interior samples see only the constant; border samples also see zero padding.
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.full((1, 3, 6, 6), 2.5))
    assert float(y[0, 0, 0, 0]) < 2.5


def test_down_conv3x3_equals_pad_fir_then_strided_conv():
    """conv1: pad 2, FIR (no decimation), 3x3 stride-2 correlation, bias, lrelu*sqrt2, clamp."""
    torch.manual_seed(0)
    layer = Conv2dLayer(3, 4, kernel_size=3, activation="lrelu", down=2, conv_clamp=0.8)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        got = layer(x, gain=0.5).double().numpy()
    xd = x.double().numpy()
    filt = direct_fir(xd, layer.resample_filter.double().numpy(), (2, 2, 2, 2), 1)
    w = layer.weight.detach().double().numpy() / np.sqrt(3 * 9)
    z = direct_conv(filt, w, stride=2) + layer.bias.detach().double().numpy()[None, :, None, None]
    z = np.where(z >= 0, z, 0.2 * z) * np.sqrt(2) * 0.5
    z = np.clip(z, -0.8 * 0.5, 0.8 * 0.5)
    assert got.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(got, z, atol=1e-5)
    assert np.isclose(np.abs(got), 0.4).any()  # the clamp is active in this test


def test_down_conv1x1_equals_fir_decimate_then_1x1():
    torch.manual_seed(1)
    layer = Conv2dLayer(3, 5, kernel_size=1, bias=False, down=2)
    x = torch.randn(1, 3, 8, 8)
    with torch.inference_mode():
        got = layer(x, gain=np.sqrt(0.5)).double().numpy()
    xd = x.double().numpy()
    dec = direct_fir(xd, layer.resample_filter.double().numpy(), (1, 1, 1, 1), 2)
    w = layer.weight.detach().double().numpy() / np.sqrt(3)
    want = direct_conv(dec, w, stride=1) * np.sqrt(0.5)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_loaded_resample_filter_is_used_even_if_not_separable():
    """The FIR factors cache follows load_state_dict; a non-separable filter falls back to 2-D FIR."""
    torch.manual_seed(2)
    layer = Conv2dLayer(2, 3, kernel_size=1, bias=False, down=2)
    k = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0], [0.0, 2.0, 1.0, 4.0]])
    sd = layer.state_dict()
    assert set(sd) == {"weight", "resample_filter"}  # the cached factors are not part of the state
    sd["resample_filter"] = k / k.sum()
    layer.load_state_dict(sd)
    x = torch.randn(1, 2, 8, 8)
    with torch.inference_mode():
        got = layer(x).double().numpy()
    dec = direct_fir(x.double().numpy(), (k / k.sum()).double().numpy(), (1, 1, 1, 1), 2)
    want = direct_conv(dec, layer.weight.detach().double().numpy() / np.sqrt(2), stride=1)
    np.testing.assert_allclose(got, want, atol=1e-5)
