"""Parity of a TRAINED planted-study checkpoint with NVIDIA's reference discriminator.

NVIDIA's code is never committed: set DISCBIAS_NVIDIA_STYLEGAN3 to a checkout of NVlabs/stylegan3
(its ``training/networks_stylegan2.py`` and ``torch_utils``) to run this test; it is skipped
otherwise. As the random-weight parity check in docs/nets.md, it builds NVIDIA's
``Discriminator`` from the ``init_kwargs`` stored in the pickle, loads the state dict that
``discbias.nets`` read from the same pickle, and compares logits on the same images (fp32, CPU).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

SRC = os.environ.get("DISCBIAS_NVIDIA_STYLEGAN3")


@pytest.mark.skipif(not SRC, reason="DISCBIAS_NVIDIA_STYLEGAN3 is not set (a local checkout of NVlabs/stylegan3)")
@pytest.mark.parametrize("mode", ["fixed", "generator"])
def test_trained_checkpoint_matches_nvidia_reference(tmp_path, monkeypatch, mode):
    from discbias.nets import load_discriminator
    from discbias.planted.checkpoint import save_nvidia_pickle
    from discbias.planted.data import Condition, heldout_set, training_sets
    from discbias.planted.train import network_kwargs, to_input, train_discriminator

    real, fake, _ = training_sets(Condition("lum", luminance_shift=1.0), 256, 32, seed=0)
    if mode == "fixed":
        D, _ = train_discriminator(real, fake, network=network_kwargs(32), steps=60, batch_size=16, seed=0)
    else:  # a discriminator trained as a GAN's (planted.generator.train_gan)
        from discbias.planted.generator import train_gan

        D = train_gan(real, network=network_kwargs(32), steps=40, batch_size=16, seed=0, n_measure=16)[0]
    p = save_nvidia_pickle(D, tmp_path / "D.pkl")
    ours = load_discriminator(p)

    monkeypatch.syspath_prepend(str(Path(SRC).resolve()))
    for k in [m for m in sys.modules if m.split(".")[0] in ("torch_utils", "dnnlib", "training")]:
        monkeypatch.delitem(sys.modules, k)
    try:  # NVIDIA's conv2d_gradfix imports pkg_resources.parse_version (setuptools < 81)
        import pkg_resources  # noqa: F401
    except ImportError:
        import types

        from packaging.version import parse

        monkeypatch.setitem(sys.modules, "pkg_resources", types.SimpleNamespace(parse_version=parse))
    from training.networks_stylegan2 import Discriminator as NvidiaD  # noqa: E402

    ref = NvidiaD(**ours.init_kwargs).eval().requires_grad_(False)
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = to_input(heldout_set(8, 32, seed=1)[0])
    with torch.no_grad():
        a, b = ours(x), ref(x, None)
    diff = (a - b).abs().max().item()
    rel = diff / b.abs().max().item()
    print(f"max |logit diff| {diff:.3g}, relative {rel:.3g}, max |logit| {b.abs().max().item():.3g}")
    assert rel < 1e-4, (diff, rel)
