import hashlib
from pathlib import Path

import pytest

from discbias.config import ConfigError, Source, load_config
from discbias.fetch import ChecksumError, FetchError, MissingFileError, fetch_all, fetch_source


def _src(tmp_path, content=b"a,b\n1,2\n", name="f.csv", url=""):
    return Source(name="f", file=name, url=url, sha256=hashlib.sha256(content).hexdigest())


def test_mirror_copy_verified(tmp_path):
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "f.csv").write_bytes(b"a,b\n1,2\n")
    res = fetch_source(_src(tmp_path), tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    assert res.origin.startswith("mirror")
    assert (tmp_path / "raw" / "f.csv").read_bytes() == b"a,b\n1,2\n"
    again = fetch_source(_src(tmp_path), tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    assert again.origin == "cached"


def test_checksum_mismatch_names_file_and_both_hashes_and_installs_nothing(tmp_path):
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "f.csv").write_bytes(b"tampered\n")
    src = _src(tmp_path)
    with pytest.raises(ChecksumError) as err:
        fetch_source(src, tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    msg = str(err.value)
    assert "f.csv" in msg and src.sha256 in msg and hashlib.sha256(b"tampered\n").hexdigest() in msg
    assert list((tmp_path / "raw").iterdir()) == []  # no file, no leftover .part


def test_good_file_is_never_replaced_by_a_bad_one(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "f.csv").write_bytes(b"a,b\n1,2\n")
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "f.csv").write_bytes(b"bad")
    res = fetch_source(_src(tmp_path), raw, mirror=mirror, progress=False)
    assert res.origin == "cached" and (raw / "f.csv").read_bytes() == b"a,b\n1,2\n"


def test_missing_file_is_a_clear_error(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(MissingFileError, match="f.csv is not in the mirror"):
        fetch_source(_src(tmp_path, url="https://example.org/f.csv"), tmp_path / "raw", mirror=tmp_path / "m",
                     allow_download=False, progress=False)


def test_download_by_url_is_verified(tmp_path):
    served = tmp_path / "served.csv"
    served.write_bytes(b"a,b\n1,2\n")
    res = fetch_source(_src(tmp_path, url=served.as_uri()), tmp_path / "raw", mirror=None, progress=False)
    assert res.origin == served.as_uri()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"x")
    src = Source("g", "g.csv", bad.as_uri(), hashlib.sha256(b"y").hexdigest())
    with pytest.raises(ChecksumError):
        fetch_source(src, tmp_path / "raw", mirror=None, progress=False)
    assert not (tmp_path / "raw" / "g.csv").exists()
    assert not list((tmp_path / "raw").glob("*.part"))


def test_unreachable_url_says_how_to_work_offline(tmp_path):
    src = Source("g", "g.csv", (tmp_path / "nowhere.csv").as_uri(), "0" * 64)
    with pytest.raises(MissingFileError, match="DISCBIAS_DATA_MIRROR"):
        fetch_source(src, tmp_path / "raw", mirror=None, progress=False)


def test_fetch_all_keeps_good_files_and_reports_all_failures(tmp_path, monkeypatch):
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "ok.csv").write_bytes(b"1")
    (mirror / "bad.csv").write_bytes(b"2")
    cfg = tmp_path / "s.toml"
    cfg.write_text(f"""
[study]
id = "t"
[sources.ok]
file = "ok.csv"
sha256 = "{hashlib.sha256(b'1').hexdigest()}"
[sources.bad]
file = "bad.csv"
sha256 = "{'0' * 64}"
[sources.gone]
file = "gone.csv"
sha256 = "{'1' * 64}"
""")
    with pytest.raises(FetchError) as err:
        fetch_all(load_config(cfg), tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    assert "2 of 3 files failed" in str(err.value) and "bad.csv" in str(err.value) and "gone.csv" in str(err.value)
    assert (tmp_path / "raw" / "ok.csv").exists()


def test_config_rejects_unknown_role(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('[study]\nid = "t"\n[sources.a]\nfile = "a"\nsha256 = "0"\n[roles]\nx = "nope"\n')
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        load_config(cfg)


def test_real_config_urls_are_pinned(real_config):
    csvs = [s for s in real_config.sources.values() if s.file.endswith(".csv")]
    assert len(csvs) == 10  # every released CSV of the pinned commit, the balanced 50-per-cell subset included
    assert len({s.file for s in csvs}) == len(csvs)
    for src in csvs:
        assert "a70c5f054122cc8819c149a5c4c237cd440a0c4d" in src.url
        assert len(src.sha256) == 64


@pytest.mark.integration
def test_real_mirror_matches_configured_hashes(real_mirror, real_config, tmp_path):
    results = fetch_all(real_config, tmp_path / "raw", mirror=real_mirror, allow_download=False, progress=False)
    assert len(results) == len(real_config.sources)
