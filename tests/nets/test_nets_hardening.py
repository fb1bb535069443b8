"""Crafted network files (all generated here, never committed): the reader refuses each one quickly,
with a documented error naming the file, without allocating what the file declares and without
executing anything.

Every case fails on the reader before issue 12 (raw MemoryError / RuntimeError / ZeroDivisionError /
RecursionError / IsADirectoryError, a hang on a FIFO, or gigabytes allocated).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import pytest
import torch

from discbias.nets import (
    Discriminator,
    NotAPickleError,
    StateDictMismatchError,
    TruncatedFileError,
    UnsafePickleError,
    UnsupportedNetworkError,
    load_discriminator,
)
from discbias.nets.errors import NetworkLoadError

GiB = 1 << 30
READER_ERRORS = (NetworkLoadError, UnsafePickleError)


def _int(n: int) -> bytes:
    """The protocol-2 opcodes that push the integer ``n``."""
    return pickle.dumps(n, 2)[2:-1]


def _glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _p(*parts: bytes, proto: int = 2) -> bytes:
    return bytes([0x80, proto]) + b"".join(parts) + b"."


def _storage_payload(numel_declared: int, data: bytes, count: int | None = None) -> bytes:
    """A legacy ``torch.save(storage)`` payload whose record declares ``numel_declared`` floats."""
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, 2)
    proto = pickle.dumps(1001, 2)
    info = pickle.dumps(dict(protocol_version=1001, little_endian=True,
                             type_sizes=dict(short=2, int=4, long=4)), 2)
    rec = _p(b"(", pickle.dumps("storage", 2)[2:-1], _glob("torch", "FloatStorage"),
             pickle.dumps("k0", 2)[2:-1], pickle.dumps("cpu", 2)[2:-1], _int(numel_declared), b"Nt", b"Q")
    keys = pickle.dumps(["k0"], 2)
    return magic + proto + info + rec + keys + struct.pack("<q", numel_declared if count is None else count) + data


def _load_from_bytes(payload: bytes) -> bytes:
    return _glob("torch.storage", "_load_from_bytes") + pickle.dumps(payload, 2)[2:-1] + b"\x85R"


#: name -> pickle bytes declaring far more than they hold (the cheap-to-build raw cases).
RAW_CASES = {
    "bytearray-4GiB": _p(_glob("builtins", "bytearray"), _int(4 * GiB), b"\x85R"),
    "bytearray-64GiB": _p(_glob("builtins", "bytearray"), _int(64 * GiB), b"\x85R"),
    "bytearray8-opcode-4GiB": _p(b"\x96" + struct.pack("<Q", 4 * GiB) + b"xx", proto=5),
    "binbytes8-1TiB": _p(b"\x8e" + struct.pack("<Q", 1 << 40) + b"xx", proto=4),
    "binunicode8-1TiB": _p(b"\x8d" + struct.pack("<Q", 1 << 40) + b"xx", proto=4),
    "frame-1TiB": b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"N.",
    "long4-2GiB": _p(b"\x8b" + struct.pack("<i", 2 * GiB - 1) + b"\x01"),
    "memo-index-4G": _p(b"N", b"r" + struct.pack("<I", 0xFFFFFFF0)),
    "numpy-reconstruct-1TiB": _p(_glob("numpy.core.multiarray", "_reconstruct"), _glob("numpy", "ndarray"),
                                 _int(1 << 40), b"\x85", pickle.dumps(b"b", 2)[2:-1], b"\x87R"),
    "numpy-ndarray-call": _p(_glob("numpy", "ndarray"), _int(1 << 40), b"\x85\x85R"),
    "numpy-setstate-1TiB": _p(_glob("numpy.core.multiarray", "_reconstruct"), _glob("numpy", "ndarray"), _int(0),
                              b"\x85", pickle.dumps(b"b", 2)[2:-1], b"\x87R",
                              b"(", _int(1), _int(1 << 37), b"\x85", _glob("numpy", "dtype"),
                              pickle.dumps("f8", 2)[2:-1], b"\x89\x88\x87R", b"\x89",
                              pickle.dumps(b"12345678", 2)[2:-1], b"tb"),
    "numpy-scalar-8GiB": _p(_glob("numpy.core.multiarray", "scalar"), _glob("numpy", "dtype"),
                            pickle.dumps(f"V{8 * GiB}", 2)[2:-1], b"\x85R\x85R"),
    "storage-declares-8GiB": _p(_load_from_bytes(_storage_payload(2 * GiB, b"\0" * 16))),
    "storage-count-lies": _p(_load_from_bytes(_storage_payload(4, b"\0" * 16, count=1 << 33))),
    "tensor-view-1T-elements": _p(
        _glob("torch._utils", "_rebuild_tensor_v2"), b"(",
        _load_from_bytes(_storage_payload(4, b"\0" * 16)), _int(0), _int(1 << 20), _int(1 << 20), b"\x86",
        _int(1 << 20), _int(1), b"\x86", b"\x89", b"NtR"),
    "codecs-encode-other-codec": _p(_glob("_codecs", "encode"), pickle.dumps("x" * 64, 2)[2:-1],
                                    pickle.dumps("zlib_codec", 2)[2:-1], b"\x86R"),
    "nesting-100k": _p(b"]" * 100_000 + b"a" * 99_999),
    "cycle": _p(b"]q\x00h\x00a"),
}


def _write(tmp_path, name: str, blob: bytes):
    p = tmp_path / f"{name}.pkl"
    p.write_bytes(blob)
    return p


@pytest.mark.parametrize("name", sorted(RAW_CASES))
def test_crafted_raw_pickle_is_refused_with_reader_error(name, tmp_path):
    path = _write(tmp_path, name, RAW_CASES[name])
    with pytest.raises(READER_ERRORS) as err:
        load_discriminator(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    assert "\n" not in msg and "weights_only=False" not in msg


def test_refusals_are_fast_and_allocate_nothing(tmp_path):
    """The 4 GiB bytearray (29 bytes) and friends: < 1 s and < 200 MB each, measured in a fresh process."""
    names = ["bytearray-4GiB", "bytearray-64GiB", "bytearray8-opcode-4GiB", "binbytes8-1TiB", "memo-index-4G",
             "numpy-reconstruct-1TiB", "numpy-setstate-1TiB", "storage-declares-8GiB", "storage-count-lies",
             "tensor-view-1T-elements"]
    paths = {n: str(_write(tmp_path, n, RAW_CASES[n])) for n in names}
    assert len(RAW_CASES["bytearray-4GiB"]) < 40
    code = textwrap.dedent("""
        import json, resource, sys, time, tracemalloc
        from discbias.nets import load_discriminator
        out = {}
        for name, path in json.loads(sys.argv[1]).items():
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.start()
            t = time.perf_counter()
            try:
                load_discriminator(path)
                err = None
            except BaseException as exc:
                err = type(exc).__name__
            dt = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out[name] = dict(error=err, seconds=dt, traced=peak, rss_kib=rss1 - rss0)
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    for name in names:
        r = got[name]
        assert r["error"] in {"UnsafePickleError", "TruncatedFileError", "NotAPickleError"}, (name, r)
        assert r["seconds"] < 1.0, (name, r)
        assert r["traced"] < 200e6 and r["rss_kib"] * 1024 < 200e6, (name, r)


def test_integer_module_src_is_refused_without_hashing_zeros(factory, helpers, tmp_path):
    data = factory.snapshot(Discriminator(**helpers.small_kwargs()))
    data["D"].meta["module_src"] = 8 * GiB
    path = factory.write(data, tmp_path / "src.pkl")
    with pytest.raises(UnsafePickleError, match="module_src is a int"):
        load_discriminator(path)


@pytest.mark.parametrize("over,match,exc", [
    (dict(img_resolution=2**20), "img_resolution must be an integer in", UnsupportedNetworkError),
    (dict(img_resolution=96), "power of two", UnsupportedNetworkError),
    (dict(channel_base=2**20, channel_max=8192, img_resolution=1024), "stores only", StateDictMismatchError),
    (dict(channel_base=16, img_resolution=1024), "no channels", UnsupportedNetworkError),
    (dict(mapping_kwargs=dict(num_layers=10**9), c_dim=3), "num_layers", UnsupportedNetworkError),
    (dict(epilogue_kwargs=dict(mbstd_num_channels=-1)), "mbstd_num_channels", UnsupportedNetworkError),
    (dict(block_kwargs=dict(evil=1)), "unknown arguments", UnsupportedNetworkError),
    (dict(conv_clamp=float("nan")), "conv_clamp", UnsupportedNetworkError),
    (dict(c_dim=True), "c_dim", UnsupportedNetworkError),
])
def test_crafted_init_kwargs_refused_before_building(over, match, exc, factory, helpers, tmp_path, monkeypatch):
    built = []
    orig = Discriminator.__init__
    monkeypatch.setattr(Discriminator, "__init__", lambda self, *a, **k: built.append(k) or orig(self, *a, **k))
    src = Discriminator(**helpers.small_kwargs())
    built.clear()
    kw = dict(src.init_kwargs, **over)
    path = factory.write(factory.snapshot(src, d_kwargs=kw), tmp_path / "kw.pkl")
    with pytest.raises(exc, match=match) as err:
        load_discriminator(path)
    assert str(path) in str(err.value)
    assert built == []  # nothing was built from the crafted configuration


def test_a_stride_zero_tensor_in_a_network_pickle_is_refused(factory, helpers, tmp_path):
    """Issue 24: a stride-0 tensor (one stored value, a full tensor's shape) in an NVIDIA-format
    pickle is refused by the reader, as in a ``.pt`` file (tests/security)."""
    src = Discriminator(**helpers.small_kwargs())
    name, p = next((n, p) for n, p in src.named_parameters() if p.dim() == 4)
    owner, attr = name.rsplit(".", 1)
    setattr(src.get_submodule(owner), attr, torch.nn.Parameter(torch.zeros(1).expand(p.shape), requires_grad=False))
    path = factory.write(factory.snapshot(src), tmp_path / "stride0.pkl")
    with pytest.raises(UnsafePickleError, match="zero or overlapping strides") as err:
        load_discriminator(path)
    assert str(path) in str(err.value)


def test_deeply_nested_init_kwargs_refused(factory, helpers, tmp_path):
    src = Discriminator(**helpers.small_kwargs())
    kw = dict(src.init_kwargs)
    deep: list = []
    for _ in range(200):
        deep = [deep]
    kw["block_kwargs"] = {"resample_filter": deep}
    data = factory.snapshot(src, d_kwargs=kw)
    path = factory.write(data, tmp_path / "deep.pkl")
    with pytest.raises(UnsafePickleError, match="nested more than"):
        load_discriminator(path)


@pytest.mark.timeout(60)  # a FIFO opened for reading would block forever
def test_directory_and_fifo_are_refused_without_opening(tmp_path):
    d = tmp_path / "dir.pkl"
    d.mkdir()
    with pytest.raises(NotAPickleError, match="is a directory"):
        load_discriminator(d)
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "fifo.pkl"
    os.mkfifo(fifo)
    with pytest.raises(NotAPickleError, match="not a regular file"):
        load_discriminator(fifo)
    dev = tmp_path / "zero.pkl"
    dev.symlink_to("/dev/zero")
    with pytest.raises(NotAPickleError, match="not a regular file"):
        load_discriminator(dev)


def test_refused_pt_file_message_drops_torch_advice(tmp_path):
    class Custom:  # torch's weights-only loader refuses this global
        pass

    globals()["Custom"] = Custom
    Custom.__qualname__ = "Custom"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": Custom()}, path)
    with pytest.raises(UnsafePickleError) as err:
        load_discriminator(path)
    msg = str(err.value)
    assert str(path) in msg and "weights_only=False" not in msg and "\n" not in msg


def test_valid_pickle_still_loads_after_all_checks(factory, helpers, tmp_path):
    src = helpers.randomize(Discriminator(**helpers.small_kwargs())).eval()
    path = factory.write(factory.snapshot(src), tmp_path / "ok.pkl")
    D = load_discriminator(path)
    for k, v in src.state_dict().items():
        assert torch.equal(D.state_dict()[k], v), k


def test_score_cli_refuses_crafted_weights_in_one_line(tmp_path, capsys):
    from PIL import Image

    from discbias.cli import main

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(imgs / "a.png")
    evil = _write(tmp_path, "evil", _p(_glob("os", "system"), pickle.dumps("true", 2)[2:-1], b"\x85R"))
    code = main(["score", str(imgs), "--weights", str(evil), "--cache-dir", str(tmp_path / "c"), "--no-progress",
                 "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "refused global 'os.system'" in lines[0] and str(evil) in lines[0], err
