"""Weights registry and download (no network: file:// URLs and fake openers)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import urllib.error
from pathlib import Path

import pytest

from discbias.nets import KNOWN_WEIGHTS, Discriminator, WeightsNotFoundError, download_weights, list_weights
from discbias.nets.errors import ChecksumMismatchError
from discbias.nets import registry

NAME = "stylegan3-r-ffhq-1024x1024.pkl"


def test_registry_entries_are_official_and_counts_derive_from_config():
    assert NAME in KNOWN_WEIGHTS
    assert KNOWN_WEIGHTS[NAME].url == (
        "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/stylegan3-r-ffhq-1024x1024.pkl"
    )
    for w in list_weights():
        assert w.url.startswith(("https://api.ngc.nvidia.com/", "https://nvlabs-fi-cdn.nvidia.com/"))
        assert "research and evaluation" in w.license
        assert w.sha256 is None or len(w.sha256) == 64
        assert w.d_kwargs["img_resolution"] == w.resolution
    # Building each distinct configuration must give the recorded parameter count.
    seen = {}
    for w in list_weights():
        key = repr(sorted(w.d_kwargs.items()))
        if key not in seen:
            seen[key] = sum(p.numel() for p in Discriminator(**w.d_kwargs).parameters())
        assert seen[key] == w.d_params, w.name


def test_default_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.delenv("DISCBIAS_WEIGHTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert registry.default_weights_dir() == tmp_path / "data" / "weights"
    monkeypatch.setenv("DISCBIAS_WEIGHTS_DIR", str(tmp_path / "elsewhere"))
    assert registry.default_weights_dir() == tmp_path / "elsewhere"


def test_download_from_file_url_is_atomic_and_idempotent(tmp_path, capsys):
    src = tmp_path / "src.bin"
    src.write_bytes(b"weights" * 1000)
    dest = tmp_path / "w"
    out = download_weights(NAME, dest, progress=True, url=src.as_uri())
    assert out == dest / NAME and out.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == [NAME]  # no temp file left behind
    err = capsys.readouterr().err
    assert "research and evaluation" in err and hashlib.sha256(src.read_bytes()).hexdigest() in err
    src.write_bytes(b"changed")
    assert download_weights(NAME, dest, progress=False, url=src.as_uri()).read_bytes() == b"weights" * 1000


def test_sha256_checked_when_known(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    good = hashlib.sha256(b"abc").hexdigest()
    entry = KNOWN_WEIGHTS[NAME]
    monkeypatch.setitem(registry.KNOWN_WEIGHTS, NAME, dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(ChecksumMismatchError, match=good):
        download_weights(NAME, tmp_path / "a", progress=False, url=src.as_uri())
    assert list((tmp_path / "a").iterdir()) == []  # bad file discarded
    monkeypatch.setitem(registry.KNOWN_WEIGHTS, NAME, dataclasses.replace(entry, sha256=good))
    assert download_weights(NAME, tmp_path / "b", progress=False, url=src.as_uri()).read_bytes() == b"abc"


def test_offline_error_names_url_and_destination(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(WeightsNotFoundError) as err:
        download_weights(NAME, tmp_path, progress=False, opener=offline)
    msg = str(err.value)
    assert KNOWN_WEIGHTS[NAME].url in msg and str(tmp_path / NAME) in msg
    assert list(tmp_path.iterdir()) == []


def test_short_read_is_an_error_not_a_file(tmp_path):
    class Resp(io.BytesIO):
        headers = {"Content-Length": "100"}

    def opener(url, timeout):
        return Resp(b"x" * 10)

    with pytest.raises(WeightsNotFoundError, match="10 of 100 bytes"):
        download_weights(NAME, tmp_path, progress=False, opener=opener)
    assert list(tmp_path.iterdir()) == []


def test_unknown_name():
    with pytest.raises(KeyError, match="known:"):
        download_weights("stylegan9.pkl", Path("/nonexistent"), progress=False)
