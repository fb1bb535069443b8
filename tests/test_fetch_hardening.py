"""Fetch (issue 12): a mirror entry that is a folder, a FIFO or unreadable, and a corrupt mirror tarball,
are per-file errors naming the mirror path; the other files are still fetched."""

import hashlib
import os
import shutil

import pytest

from discbias.config import Source, load_config
from discbias.fetch import FetchError, fetch_all, fetch_source


def _config(tmp_path, names):
    body = "[study]\nid = \"t\"\n" + "".join(
        f"[sources.{n.split('.')[0]}]\nfile = \"{n}\"\nsha256 = \"{hashlib.sha256(n.encode()).hexdigest()}\"\n"
        for n in names)
    cfg = tmp_path / "s.toml"
    cfg.write_text(body)
    return load_config(cfg)


def test_bad_mirror_entries_are_per_file_errors_and_the_rest_is_fetched(tmp_path, monkeypatch):
    mirror = tmp_path / "m"
    mirror.mkdir()
    names = ["dir.csv", "fifo.csv", "locked.csv", "ok.csv", "zero.csv"]
    (mirror / "dir.csv").mkdir()
    os.mkfifo(mirror / "fifo.csv")
    (mirror / "locked.csv").write_bytes(b"locked.csv")
    (mirror / "ok.csv").write_bytes(b"ok.csv")
    (mirror / "zero.csv").symlink_to("/dev/zero")
    real = shutil.copyfile

    def copyfile(src, dst, *a, **k):  # root reads mode-000 files: simulate an unreadable one
        if os.fspath(src).endswith("locked.csv"):
            raise PermissionError(13, "Permission denied", os.fspath(src))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    with pytest.raises(FetchError) as err:
        fetch_all(_config(tmp_path, names), tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    msg = str(err.value)
    assert "4 of 5 files failed" in msg, msg
    assert f"{mirror / 'dir.csv'} is a folder" in msg
    assert f"{mirror / 'fifo.csv'} is a FIFO" in msg
    assert f"{mirror / 'zero.csv'} is a device" in msg
    assert f"cannot read mirror entry {mirror / 'locked.csv'}: Permission denied" in msg
    assert (tmp_path / "raw" / "ok.csv").read_bytes() == b"ok.csv"
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["ok.csv"]  # no temporary files left


def test_corrupt_mirror_tarball_is_reported_under_its_mirror_name(tmp_path):
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "tree.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"corrupt" * 20)
    src = Source(name="t", file="tree.tar.gz", url="", sha256="0" * 64, kind="json_tree", content_digest="1" * 64)
    with pytest.raises(FetchError) as err:
        fetch_source(src, tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    msg = str(err.value)
    assert str(mirror / "tree.tar.gz") in msg and "not a readable tar archive" in msg
    assert ".part" not in msg
    assert list((tmp_path / "raw").iterdir()) == []
