"""The planted-bias study's generator mode: the generator, the GAN training loop, the saved files and
the configuration's generator-mode validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discbias.planted.data import Condition, make_faces, training_sets
from discbias.planted.generator import Generator, generator_step, sample_attributes, to_uint8, train_gan
from discbias.planted.train import network_kwargs

NET16 = network_kwargs(16, channel_base=128, channel_max=16)


def _real(n=256, size=16, share=0.5):
    return make_faces(n, size, np.random.default_rng(0), dark_share=share)[0]


def test_generator_shapes_and_parameters():
    torch.manual_seed(0)
    for res in (8, 16, 32):
        G = Generator(resolution=res, channels=8, z_dim=12, w_dim=10)
        assert G(torch.randn(3, 12)).shape == (3, 3, res, res)
    with pytest.raises(ValueError, match="power of two"):
        Generator(resolution=24)
    x = torch.tensor([-2.0, -1.0, 0.0, 0.999, 1.0, 3.0]).view(1, 3, 1, 2)
    assert to_uint8(x).dtype == np.uint8 and to_uint8(x).min() == 0 and to_uint8(x).max() == 255


def test_gan_training_is_seeded():
    real = _real(64)
    kw = dict(network=NET16, generator=dict(channels=8), steps=6, batch_size=8, log_every=3, n_samples=4,
              n_measure=16, threads=1)
    a, b, c = train_gan(real, seed=3, **kw), train_gan(real, seed=3, **kw), train_gan(real, seed=4, **kw)
    for i in (0, 1):  # D and G: identical weights for the same seed, different for another
        sa, sb, sc = a[i].state_dict(), b[i].state_dict(), c[i].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    cols = ["loss_real", "loss_fake", "r1", "accuracy", "loss_g"]
    assert a[2][cols].equals(b[2][cols])
    assert np.array_equal(a[3], b[3]) and not np.array_equal(a[3], c[3])
    assert a[4] == b[4] and np.array_equal(a[5][:4], a[3])
    assert list(a[2].columns) == ["step", *cols, "seconds", "cpu_seconds"]
    assert not any(p.requires_grad for p in (*a[0].parameters(), *a[1].parameters()))


def test_generator_step_lowers_the_generator_loss_against_a_fixed_discriminator():
    from discbias.nets import Discriminator

    torch.manual_seed(0)
    G, D = Generator(resolution=16, channels=8), Discriminator(**NET16)
    opt = torch.optim.Adam(G.parameters(), lr=0.005, betas=(0.0, 0.99))
    z = torch.randn(16, G.z_dim)
    d_before = [p.detach().clone() for p in D.parameters()]
    losses = [float(generator_step(G, D, opt, z)) for _ in range(15)]
    assert losses[-1] < losses[0] - 0.05, losses
    assert all(torch.equal(a, b) for a, b in zip(d_before, D.parameters()))  # D is not updated by a G step


def test_the_game_moves_the_generator_towards_the_real_images():
    """An untrained generator's colours are far from the real set's (its outputs mostly clip); after 40
    GAN iterations the samples' mean colour must be within half that distance. A sign error in the
    generator's loss (pushing samples to where D says *fake*) or a D step that does not learn the real
    set fails this."""
    real = _real(256)
    torch.manual_seed(1)
    from discbias.nets import Discriminator

    Discriminator(**NET16)
    G0 = Generator(resolution=16, channels=16)
    with torch.no_grad():
        s0 = to_uint8(G0(torch.randn(64, G0.z_dim, generator=torch.Generator().manual_seed(1011))))
    _, _, log, s, _, _ = train_gan(real, network=NET16, generator=dict(channels=16), steps=40, batch_size=16, seed=1,
                                n_samples=64, n_measure=64, threads=1)
    target = real.reshape(-1, 3).mean(0)
    before = np.abs(s0.reshape(-1, 3).mean(0) - target).mean()
    after = np.abs(s.reshape(-1, 3).mean(0) - target).mean()
    assert after < before / 2 and after < 30, (before, after)
    assert log["loss_g"].notna().all() and (log["loss_g"] > 0).all()


def test_sample_attributes_proxy_tracks_the_dark_share():
    for share in (0.05, 0.5):
        imgs, a = make_faces(400, 32, np.random.default_rng(2), dark_share=share)
        r = sample_attributes(imgs)
        assert abs(r["dark_share_proxy"] - (a["group"] == "dark").mean()) < 0.05, (share, r)
    lo = sample_attributes(make_faces(200, 32, np.random.default_rng(3), exposure_mean=-0.5)[0])
    hi = sample_attributes(make_faces(200, 32, np.random.default_rng(3), exposure_mean=0.5)[0])
    assert hi["luma_709"] > lo["luma_709"] + 0.05


def test_generator_mode_conditions_and_sign():
    from discbias.planted.study import planted_sign

    real, fake, a = training_sets(Condition("g", minority_share=0.2, fake="generator"), 500, 16, seed=0)
    assert fake.shape == (0, 16, 16, 3) and set(a["set"]) == {"real"}
    assert abs((a["group"] == "dark").mean() - 0.2) < 0.05
    same, _, _ = training_sets(Condition("g", minority_share=0.2), 500, 16, seed=0)
    assert np.array_equal(real, same)  # the real set is the fixed mode's real set
    assert planted_sign(Condition("g", minority_share=0.2, fake="generator"), "group") == -1
    assert planted_sign(Condition("g", minority_share=0.8, fake="generator"), "group") == 1
    assert planted_sign(Condition("g", minority_share=0.5, fake="generator"), "group") == 0
    assert Condition("g", minority_share=0.5, fake="generator").planted == []
    with pytest.raises(ValueError, match="group share"):
        training_sets(Condition("g", luminance_shift=1.0, fake="generator"), 10, 16, seed=0)


def _cfg(tmp_path, extra: str):
    p = tmp_path / "g.toml"
    p.write_text('[planted]\nid = "x"\n[[planted.conditions]]\nid = "unplanted"\n[[planted.conditions]]\nid = "g"\n'
                 + extra)
    return p


def test_generator_mode_configuration_is_validated(tmp_path):
    from discbias.errors import ConfigError
    from discbias.planted.config import load_planted_config

    cfg = load_planted_config(_cfg(tmp_path, 'fake = "generator"\nminority_share = 0.05\n'))
    g = cfg.planted.conditions[1]
    assert g.fake == "generator" and g.planted and not cfg.planted.conditions[0].planted
    assert cfg.planted.gan_steps >= 1 and cfg.planted.generator.channels >= 1
    with pytest.raises(ConfigError, match="fake_share has no meaning"):
        load_planted_config(_cfg(tmp_path, 'fake = "generator"\nfake_share = 0.3\n'))
    with pytest.raises(ConfigError, match="luminance_shift is not supported"):
        load_planted_config(_cfg(tmp_path, 'fake = "generator"\nluminance_shift = 0.5\n'))
    with pytest.raises(ConfigError, match="fake"):
        load_planted_config(_cfg(tmp_path, 'fake = "gan"\n'))
    with pytest.raises(ConfigError, match="chanels|channels"):
        load_planted_config(_cfg(tmp_path, 'fake = "generator"\n[planted.generator]\nchanels = 8\n'))
    # a balanced generator-mode condition is a null, but a study needs one fixed-fake condition
    p = tmp_path / "n.toml"
    p.write_text('[planted]\nid = "x"\n[[planted.conditions]]\nid = "g"\nfake = "generator"\n')
    with pytest.raises(ConfigError, match="every condition is in generator mode"):
        load_planted_config(p)
    p.write_text('[planted]\nid = "x"\n[[planted.conditions]]\nid = "g"\nfake = "generator"\n'
                 '[[planted.conditions]]\nid = "lum"\nluminance_shift = 1.0\n')
    assert not load_planted_config(p).planted.conditions[0].planted  # the generator-mode null is the null


def test_train_one_in_generator_mode_saves_loadable_files(tmp_path):
    from discbias.nets import load_discriminator
    from discbias.planted.config import load_planted_config
    from discbias.planted.runs import train_one

    cfg = load_planted_config(_cfg(tmp_path, 'fake = "generator"\nminority_share = 0.2\n'))
    p = cfg.planted.model_copy(update=dict(resolution=16, n_train=64, gan_steps=3, gan_batch_size=8,
                                           n_gan_measure=16, threads=1))
    p = p.model_copy(update=dict(network=p.network.model_copy(update=dict(channel_base=128, channel_max=16)),
                                 generator=p.generator.model_copy(update=dict(channels=8))))
    out = tmp_path / "checkpoints" / "g" / "s0.pkl"
    row, log = train_one(p.conditions[1].model_dump(mode="json"), p.model_dump(mode="json", exclude={"conditions"}),
                         0, str(out), "checkpoints/g/s0.pkl")
    assert row["fake"] == "generator" and row["steps"] == 3 and len(log) == 3
    assert row["generator"] == "checkpoints/g/s0_G.pt" and row["samples"] == "checkpoints/g/s0_samples.npz"
    assert sorted(f.name for f in out.parent.iterdir()) == ["s0.pkl", "s0_G.pt", "s0_samples.npz"]
    D = load_discriminator(tmp_path / row["checkpoint"])
    assert D.img_resolution == 16
    sd = torch.load(tmp_path / row["generator"], weights_only=True)
    G = Generator(resolution=16, channels=8)
    G.load_state_dict(sd)
    with np.load(tmp_path / row["samples"], allow_pickle=False) as z:
        assert z["generated"].shape == (16, 16, 16, 3) and z["real"].dtype == np.uint8
        assert z["measured"].shape == (16, 16, 16, 3) and np.array_equal(z["measured"], z["generated"])
    for k in ("real_luma_709", "gen_luma_709", "real_dark_share_proxy", "gen_dark_share_proxy", "cpu_seconds"):
        assert np.isfinite(row[k]), k
    assert abs(row["real_dark_share"] - 0.2) < 0.12
