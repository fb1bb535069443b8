"""Reading NVIDIA-format pickles built in the tests (no NVIDIA code, no weights)."""

from __future__ import annotations

import builtins
import collections
import hashlib
import os
import pickle
import pickletools

import pytest
import torch

from discbias.nets import (
    Discriminator,
    MissingNetworkError,
    NotAPickleError,
    PersistentRecord,
    StateDictMismatchError,
    TensorFlowPickleError,
    TruncatedFileError,
    UnsafePickleError,
    UnsupportedNetworkError,
    WeightsNotFoundError,
    flatten_record_state,
    load_discriminator,
    read_network_pickle,
    save_discriminator,
)

CONFIGS = [
    dict(img_resolution=32, architecture="resnet", c_dim=0, epilogue_kwargs=dict(mbstd_group_size=4)),
    dict(img_resolution=64, architecture="skip", c_dim=0, epilogue_kwargs=dict(mbstd_group_size=2)),
    dict(img_resolution=128, architecture="orig", c_dim=3, epilogue_kwargs=dict(mbstd_group_size=1),
         mapping_kwargs=dict(num_layers=2)),
    dict(img_resolution=256, architecture="resnet", c_dim=10, channel_base=2048, channel_max=32,
         conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=2)),
    dict(img_resolution=64, architecture="resnet", c_dim=0, num_fp16_res=0,
         block_kwargs=dict(freeze_layers=2, fp16_channels_last=False)),
]


def globals_in(path) -> set[str]:
    data = open(path, "rb").read()
    names, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            names.add(f"{strings[-2]}.{strings[-1]}")
        elif op.name == "GLOBAL":
            names.add(arg.replace(" ", "."))
    return names


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c['img_resolution']}-{c['architecture']}-c{c['c_dim']}")
def test_roundtrip_every_parameter_arrives(cfg, factory, helpers, tmp_path):
    kw = helpers.small_kwargs(**cfg)
    src = helpers.randomize(Discriminator(**kw), seed=cfg["img_resolution"]).eval()
    with torch.no_grad():  # make buffers distinctive too
        src.b4.conv.resample_filter.mul_(1.0)
    path = factory.write(factory.snapshot(src, frozen={f"b{kw['img_resolution']}.conv0"}), tmp_path / "net.pkl")

    g = globals_in(path)
    assert "torch_utils.persistence._reconstruct_persistent_obj" in g
    assert "dnnlib.util.EasyDict" in g and "torch._utils._rebuild_parameter" in g
    assert "torch.storage._load_from_bytes" in g and "collections.OrderedDict" in g

    records = read_network_pickle(path)
    assert set(records) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    rec = records["D"]
    assert isinstance(rec, PersistentRecord) and rec.class_name == "Discriminator"
    assert rec.version == 4
    assert rec.source_sha256 == hashlib.sha256(helpers.fake_source.encode()).hexdigest()
    assert records["G"].class_name == "Generator" and records["augment_pipe"].class_name == "AugmentPipe"
    assert records["training_set_kwargs"]["resolution"] == kw["img_resolution"]
    flat = flatten_record_state(rec)
    expected = src.state_dict()
    assert sorted(flat) == sorted(expected)  # same names (frozen layers store weights in _buffers)
    assert all(torch.equal(flat[k], expected[k]) for k in expected)

    D = load_discriminator(path)
    assert not D.training and not any(p.requires_grad for p in D.parameters())
    got = D.state_dict()
    assert set(got) == set(expected)
    for k in expected:
        assert torch.equal(got[k], expected[k]), k
    n = 4 if cfg.get("epilogue_kwargs", {}).get("mbstd_group_size", 4) > 1 else 3
    img = torch.rand(n, 3, kw["img_resolution"], kw["img_resolution"]) * 2 - 1
    c = torch.nn.functional.one_hot(torch.arange(n) % max(kw["c_dim"], 1), max(kw["c_dim"], 1)).float()
    c = c if kw["c_dim"] else None
    with torch.inference_mode():
        torch.testing.assert_close(D(img, c), src(img, c), rtol=0, atol=0)


def test_nvidia_style_init_kwargs_without_architecture_key(factory, helpers, tmp_path):
    """NVIDIA's train.py stores c_dim/img_resolution/img_channels + D_kwargs (EasyDicts), no 'architecture'."""
    kw = helpers.small_kwargs(epilogue_kwargs=dict(mbstd_group_size=4))
    src = helpers.randomize(Discriminator(**kw))
    nv = dict(block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4), channel_base=512,
              channel_max=32, num_fp16_res=4, conv_clamp=256, c_dim=0, img_resolution=32, img_channels=3)
    path = factory.write(factory.snapshot(src, d_kwargs=nv), tmp_path / "nv.pkl")
    D = load_discriminator(path)
    assert D.init_kwargs["architecture"] == "resnet" and D.init_kwargs["epilogue_kwargs"] == {"mbstd_group_size": 4}


def test_positional_init_args_are_mapped(factory, helpers, tmp_path):
    src = Discriminator(**helpers.small_kwargs())
    data = factory.snapshot(src, d_kwargs=dict(channel_base=512, channel_max=32))
    data["D"].meta["state"]["_init_args"] = (0, 32, 3)
    D = load_discriminator(factory.write(data, tmp_path / "pos.pkl"))
    assert (D.c_dim, D.img_resolution, D.img_channels) == (0, 32, 3)


def test_shape_mismatch_names_key_and_both_shapes(factory, helpers, tmp_path):
    src = Discriminator(**helpers.small_kwargs())
    data = factory.snapshot(src)
    b4 = data["D"].meta["state"]["_modules"]["b4"]
    b4.meta["state"]["_modules"]["fc"].meta["state"]["_parameters"]["weight"] = torch.nn.Parameter(torch.zeros(7, 5))
    path = factory.write(data, tmp_path / "bad.pkl")
    with pytest.raises(StateDictMismatchError) as err:
        load_discriminator(path)
    msg = str(err.value)
    assert "'b4.fc.weight'" in msg and "[7, 5]" in msg and "[32, 512]" in msg and "bad.pkl" in msg


def test_missing_tensor_is_reported(factory, helpers, tmp_path):
    src = Discriminator(**helpers.small_kwargs())
    data = factory.snapshot(src)
    del data["D"].meta["state"]["_modules"]["b32"].meta["state"]["_modules"]["conv0"].meta["state"]["_parameters"]["bias"]
    with pytest.raises(StateDictMismatchError, match=r"missing from file: \['b32.conv0.bias'\]"):
        load_discriminator(factory.write(data, tmp_path / "m.pkl"))


def test_unexpected_class_name_is_refused(factory, helpers, tmp_path):
    src = Discriminator(**helpers.small_kwargs())
    data = factory.snapshot(src)
    data["D"].meta["state"]["_modules"]["b32"].meta["class_name"] = "SynthesisBlock"
    with pytest.raises(UnsupportedNetworkError, match="expected class DiscriminatorBlock at 'b32', found SynthesisBlock"):
        load_discriminator(factory.write(data, tmp_path / "cls.pkl"))
    data = factory.snapshot(src)
    data["D"].meta["class_name"] = "ProjectedDiscriminator"
    with pytest.raises(UnsupportedNetworkError, match="'ProjectedDiscriminator'"):
        load_discriminator(factory.write(data, tmp_path / "cls2.pkl"))


def test_no_discriminator(factory, helpers, tmp_path):
    data = factory.snapshot(Discriminator(**helpers.small_kwargs()), include_d=False)
    path = factory.write(data, tmp_path / "g_only.pkl")
    assert read_network_pickle(path)["D"] is None
    with pytest.raises(MissingNetworkError, match="no discriminator.*'G'.*no 'D'"):
        load_discriminator(path)
    path2 = factory.write([1, 2, 3], tmp_path / "list.pkl")
    with pytest.raises(MissingNetworkError, match="holds a list"):
        load_discriminator(path2)


def test_not_a_pickle_and_truncated(factory, helpers, tmp_path):
    html = tmp_path / "login.pkl"
    html.write_bytes(b"<!DOCTYPE html><html><body>Sign in</body></html>")
    with pytest.raises(NotAPickleError, match="HTML"):
        load_discriminator(html)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(TruncatedFileError, match="empty"):
        load_discriminator(empty)
    full = factory.write(factory.snapshot(Discriminator(**helpers.small_kwargs())), tmp_path / "full.pkl")
    blob = full.read_bytes()
    for cut in (len(blob) // 2, len(blob) - 1, 40):
        part = tmp_path / f"part{cut}.pkl"
        part.write_bytes(blob[:cut])
        with pytest.raises(TruncatedFileError, match="truncated|incomplete"):
            load_discriminator(part)
    with pytest.raises(FileNotFoundError, match="registry names"):
        load_discriminator(tmp_path / "nope.pkl")


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "nested-in-state", "in-storage-bytes",
                                  "copyreg", "torch.load"])
def test_malicious_pickle_is_refused_and_nothing_runs(kind, factory, helpers, tmp_path, monkeypatch):
    sentinel = tmp_path / "pwned"
    calls = []
    py = f"open({str(sentinel)!r}, 'w').write('x')"
    if kind == "os.system":
        payload = _Evil(os.system, f"touch {sentinel}")
        refused = "posix.system" if os.name == "posix" else "nt.system"
    elif kind == "builtins.eval":
        payload = _Evil(builtins.eval, py)
        refused = "builtins.eval"
    elif kind == "builtins.exec":
        payload = _Evil(builtins.exec, py)
        refused = "builtins.exec"
    elif kind == "nested-in-state":
        payload = factory.snapshot(Discriminator(**helpers.small_kwargs()))
        payload["D"].meta["state"]["_modules"]["b4"].meta["state"]["evil"] = _Evil(builtins.eval, py)
        refused = "builtins.eval"
    elif kind == "in-storage-bytes":
        inner = pickle.dumps(_Evil(builtins.eval, py), protocol=2)
        payload = {"D": _Evil(torch.storage._load_from_bytes, inner)}
        refused = "in an embedded tensor storage"
    elif kind == "copyreg":
        import copyreg
        payload = _Evil(copyreg._reconstructor, collections.OrderedDict, dict, None)
        refused = "copyreg._reconstructor"
    else:
        payload = _Evil(torch.load, str(tmp_path / "x"))
        refused = "torch.serialization.load"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump(payload, fh, protocol=4)
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd) or 0)  # belt and braces: record, do nothing
    with pytest.raises(UnsafePickleError) as err:
        load_discriminator(path)
    assert isinstance(err.value, pickle.UnpicklingError)
    assert refused in str(err.value)
    assert not sentinel.exists() and calls == []


def test_embedded_source_is_hashed_not_executed(factory, helpers, tmp_path):
    sentinel = tmp_path / "ran"
    src = f"open({str(sentinel)!r}, 'w').write('x')\n"
    data = factory.snapshot(Discriminator(**helpers.small_kwargs()))
    data["D"].meta["module_src"] = src
    rec = read_network_pickle(factory.write(data, tmp_path / "s.pkl"))["D"]
    assert rec.source_sha256 == hashlib.sha256(src.encode()).hexdigest()
    assert not sentinel.exists()


def test_tensorflow_pickle_says_what_to_do(tmp_path):
    # The TF releases pickle dnnlib.tflib.network.Network objects; emulate the stream's first global.
    stream = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x14dnnlib.tflib.network\x94\x8c\x07Network\x94\x93\x94)\x81\x94."
    path = tmp_path / "karras2019stylegan-ffhq-1024x1024.pkl"
    path.write_bytes(stream)
    with pytest.raises(TensorFlowPickleError, match="TensorFlow-era.*PyTorch release") as err:
        load_discriminator(path)
    assert isinstance(err.value, UnsafePickleError) and isinstance(err.value, UnsupportedNetworkError)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_our_formats_roundtrip(suffix, helpers, tmp_path):
    src = helpers.randomize(Discriminator(**helpers.small_kwargs(c_dim=2, architecture="skip"))).eval()
    path = tmp_path / f"d{suffix}"
    save_discriminator(src, path)
    D = load_discriminator(path)
    for k, v in src.state_dict().items():
        assert torch.equal(D.state_dict()[k], v), k
    assert D.init_kwargs == src.init_kwargs


def test_bare_state_dict_needs_init_kwargs(helpers, tmp_path):
    kw = helpers.small_kwargs()
    src = helpers.randomize(Discriminator(**kw))
    path = tmp_path / "bare.pt"
    torch.save(src.state_dict(), path)
    with pytest.raises(UnsupportedNetworkError, match="pass init_kwargs"):
        load_discriminator(path)
    D = load_discriminator(path, init_kwargs=kw)
    assert torch.equal(D.b4.out.weight, src.b4.out.weight)
    wrong = dict(kw, channel_max=64)
    with pytest.raises(StateDictMismatchError, match="has shape"):
        load_discriminator(path, init_kwargs=wrong)


def test_registry_name_not_downloaded_gives_url_and_destination(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCBIAS_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError) as err:
        load_discriminator("stylegan3-r-ffhq-1024x1024.pkl")
    msg = str(err.value)
    assert "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/stylegan3-r-ffhq-1024x1024.pkl" in msg
    assert str(tmp_path / "w" / "stylegan3-r-ffhq-1024x1024.pkl") in msg


def test_registry_name_loads_from_weights_dir_and_checks_count(factory, helpers, tmp_path, monkeypatch):
    monkeypatch.setenv("DISCBIAS_WEIGHTS_DIR", str(tmp_path))
    src = Discriminator(**helpers.small_kwargs())
    factory.write(factory.snapshot(src), tmp_path / "stylegan3-r-ffhqu-256x256.pkl")
    with pytest.warns(UserWarning, match="registry expects 24001089"):
        D = load_discriminator("stylegan3-r-ffhqu-256x256.pkl")
    assert D.img_resolution == 32
