"""The discriminator's layout (names, shapes, counts) and forward contract."""

from __future__ import annotations

import math

import pytest
import torch

from discbias.nets import Discriminator, discriminator_flops


def test_official_1024_layout_names_shapes_and_count():
    D = Discriminator(c_dim=0, img_resolution=1024, img_channels=3, channel_base=32768, channel_max=512,
                      num_fp16_res=4, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4))
    sd = D.state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["b1024.fromrgb.weight"] == (32, 3, 1, 1)
    assert shapes["b1024.conv0.weight"] == (32, 32, 3, 3)
    assert shapes["b1024.conv1.weight"] == (64, 32, 3, 3)
    assert shapes["b1024.skip.weight"] == (64, 32, 1, 1)
    assert "b1024.skip.bias" not in shapes
    assert shapes["b1024.resample_filter"] == (4, 4)
    assert shapes["b1024.conv1.resample_filter"] == (4, 4)
    assert shapes["b8.conv1.weight"] == (512, 512, 3, 3)
    assert "b512.fromrgb.weight" not in shapes  # resnet: only the first block reads the image
    assert shapes["b4.conv.weight"] == (512, 513, 3, 3)  # +1 minibatch-std channel
    assert shapes["b4.fc.weight"] == (512, 512 * 16)
    assert shapes["b4.out.weight"] == (1, 512)
    assert shapes["b4.out.bias"] == (1,)
    assert [k for k in sd if k.startswith("b")][0] == "b1024.resample_filter"
    assert sum(p.numel() for p in D.parameters()) == 29_012_513
    assert len(sd) == 82
    flops = discriminator_flops(D)["total"]
    assert 150e9 < flops < 160e9  # ~155 GFLOP per 1024x1024 image


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("res", [32, 64])
def test_forward_shapes_and_dtype(arch, res, helpers):
    D = Discriminator(**helpers.small_kwargs(img_resolution=res, architecture=arch)).eval()
    keys = D.state_dict().keys()
    assert (f"b{res // 2}.fromrgb.weight" in keys) == (arch == "skip")
    assert ("b4.fromrgb.weight" in keys) == (arch == "skip")
    assert (f"b{res}.skip.weight" in keys) == (arch == "resnet")
    with torch.inference_mode():
        out = D(torch.rand(4, 3, res, res) * 2 - 1)
    assert out.shape == (4, 1) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_conditional_projects_onto_class_embedding(helpers):
    torch.manual_seed(0)
    D = helpers.randomize(Discriminator(**helpers.small_kwargs(c_dim=4, mapping_kwargs=dict(num_layers=2)))).eval()
    assert "mapping.embed.weight" in D.state_dict() and "mapping.fc1.bias" in D.state_dict()
    assert D.state_dict()["b4.out.weight"].shape == (D.cmap_dim, 32)
    img = torch.rand(4, 3, 32, 32) * 2 - 1
    c0 = torch.nn.functional.one_hot(torch.zeros(4, dtype=torch.long), 4).float()
    c1 = torch.nn.functional.one_hot(torch.ones(4, dtype=torch.long), 4).float()
    with torch.inference_mode():
        a, b = D(img, c0), D(img, c1)
        # logit = <out(x), mapping(c)> / sqrt(cmap_dim), computed by hand from the parts
        x = None
        im = img
        for r in D.block_resolutions:
            x, im = getattr(D, f"b{r}")(x, im)
        ep = D.b4
        feats = ep.out(ep.fc(ep.conv(ep.mbstd(x)).flatten(1)))
        manual = (feats * D.mapping(None, c1)).sum(1, keepdim=True) / math.sqrt(D.cmap_dim)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(b, manual)
    with pytest.raises(ValueError, match=r"pass labels c of shape \[4, 4\]"):
        D(img)


def test_input_validation(helpers):
    D = Discriminator(**helpers.small_kwargs())
    with pytest.raises(ValueError, match=r"expected images of shape \[N, 3, 32, 32\], got \[2, 3, 64, 64\]"):
        D(torch.zeros(2, 3, 64, 64))
    with pytest.raises(TypeError, match="float images"):
        D(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="power of two"):
        Discriminator(0, 48, 3)


def test_cpu_runs_fp32_even_with_fp16_blocks(helpers):
    D = Discriminator(**helpers.small_kwargs(num_fp16_res=4)).eval()
    assert D.b32.use_fp16
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(D(img), D(img, force_fp32=True), rtol=0, atol=0)


def test_inference_mode_matches_grad_mode_and_gradients_flow(helpers):
    D = helpers.randomize(Discriminator(**helpers.small_kwargs()), seed=1).eval()
    img = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    out = D(img)
    out.sum().backward()  # in-place activations must not break autograd (saliency use)
    assert img.grad is not None and img.grad.abs().sum() > 0
    with torch.inference_mode():
        torch.testing.assert_close(D(img.detach()), out.detach())


def test_init_kwargs_rebuild_identical_network(helpers):
    D = Discriminator(**helpers.small_kwargs(architecture="skip", epilogue_kwargs=dict(mbstd_group_size=2)))
    D2 = Discriminator(**D.init_kwargs)
    assert {k: v.shape for k, v in D.state_dict().items()} == {k: v.shape for k, v in D2.state_dict().items()}


def test_channels_last_and_nchw_agree(helpers):
    D = helpers.randomize(Discriminator(**helpers.small_kwargs(architecture="skip")), seed=4).eval()
    img = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert D.channels_last_cpu
        a = D(img)
        D.channels_last_cpu = False
        b = D(img)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
