"""Layers from first principles: minibatch std, activation/gain/clamp, equalised learning rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from discbias.nets.layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    MinibatchStdLayer,
    bias_act,
)


def mbstd_numpy(x: np.ndarray, group: int, nf: int) -> np.ndarray:
    """Independent statement: image i is in group i % (N // G); per group and channel slice,
    mean over channels and pixels of sqrt(population variance over the group's images + 1e-8)."""
    n, c, h, w = x.shape
    g = min(group, n)
    ngroups = n // g
    feats = np.zeros((n, nf, h, w))
    for j in range(ngroups):
        members = [i for i in range(n) if i % ngroups == j]
        xs = x[members]  # [g, c, h, w]
        for s in range(nf):
            sl = xs[:, s * (c // nf):(s + 1) * (c // nf)]
            std = np.sqrt(sl.var(axis=0) + 1e-8).mean()
            feats[members, s] = std
    return np.concatenate([x, feats], axis=1)


@pytest.mark.parametrize("group,nf,n", [(4, 1, 8), (2, 1, 6), (1, 1, 3), (4, 2, 4), (4, 1, 2), (None, 1, 5)])
def test_mbstd_matches_definition(group, nf, n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 6, 3, 3)).astype(np.float32)
    layer = MinibatchStdLayer(group, nf)
    with torch.inference_mode():
        got = layer(torch.from_numpy(x)).numpy()
    want = mbstd_numpy(x.astype(np.float64), n if group is None else group, nf)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("group", [2, 4])
def test_mbstd_invariant_to_permutation_within_group(group):
    torch.manual_seed(0)
    n = 8
    x = torch.randn(n, 5, 4, 4)
    layer = MinibatchStdLayer(group)
    ngroups = n // group
    # permute the members of group 0 (indices 0, ngroups, 2*ngroups, ...) among themselves
    members = list(range(0, n, ngroups))
    perm = list(range(n))
    rotated = members[1:] + members[:1]
    for a, b in zip(members, rotated):
        perm[a] = b
    with torch.inference_mode():
        base = layer(x)[:, -1]
        permuted = layer(x[perm])[:, -1]
    torch.testing.assert_close(permuted, base[perm])
    torch.testing.assert_close(permuted[members], base[members])  # group statistic unchanged

    # Swapping images *between* groups changes the statistic.
    swap = list(range(n))
    swap[0], swap[1] = 1, 0  # indices 0 and 1 are in different groups
    with torch.inference_mode():
        other = layer(x[swap])[:, -1]
    assert not torch.allclose(other[0], base[0])


def test_mbstd_group_of_one_is_constant_and_batch_must_divide():
    layer = MinibatchStdLayer(1)
    with torch.inference_mode():
        out = layer(torch.randn(3, 4, 2, 2))[:, -1]
    torch.testing.assert_close(out, torch.full_like(out, 1e-4))  # sqrt(0 + 1e-8)
    with pytest.raises(ValueError, match="multiple of the minibatch-std group size 4"):
        MinibatchStdLayer(4)(torch.randn(6, 4, 2, 2))


def test_bias_act_order_bias_act_gain_clamp():
    x = torch.tensor([[-2.0, 1.0, 3.0]])
    b = torch.tensor([1.0, -2.0, 0.5])
    out = bias_act(x, b, act="lrelu", gain=2.0, clamp=5.0)
    expected = torch.tensor([[-1.0 * 0.2 * 2.0, -1.0 * 0.2 * 2.0, 5.0]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("act", ["lrelu", "linear", "relu", "tanh", "swish"])
def test_conv_layer_equals_reference_formula(act):
    torch.manual_seed(3)
    layer = Conv2dLayer(4, 6, kernel_size=3, activation=act, conv_clamp=1.5)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 5, 5)
    with torch.inference_mode():
        got = layer(x, gain=0.7)
        z = torch.nn.functional.conv2d(x, layer.weight / math.sqrt(4 * 9), padding=1)
        from discbias.nets.layers import ACTIVATIONS
        want = bias_act(z, layer.bias, act=act, gain=ACTIVATIONS[act].def_gain * 0.7, clamp=1.5 * 0.7)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_fully_connected_equalised_lr():
    torch.manual_seed(0)
    fc = FullyConnectedLayer(8, 3, activation="lrelu", lr_multiplier=0.01)
    with torch.no_grad():
        fc.bias.normal_()
    x = torch.randn(4, 8)
    with torch.inference_mode():
        got = fc(x)
        z = x @ (fc.weight * 0.01 / math.sqrt(8)).T + fc.bias * 0.01
        want = torch.nn.functional.leaky_relu(z, 0.2) * math.sqrt(2)
    torch.testing.assert_close(got, want)


def test_mapping_network_normalises_embedding():
    m = MappingNetwork(z_dim=0, c_dim=3, w_dim=16, num_ws=None, num_layers=0, w_avg_beta=None)
    c = torch.eye(3) * 7.0
    with torch.inference_mode():
        out = m(None, c)
    torch.testing.assert_close(out.square().mean(dim=1), torch.ones(3), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match=r"labels c of shape \[N, 3\]"):
        m(None, None)
