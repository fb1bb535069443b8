"""FFHQ face-attribute adapter and the json_tree fetch kind, on files the tests write themselves.

The synthetic files follow the schema of DCGM/ffhq-features-dataset (Face API v1.0 ``detect``);
no upstream file or excerpt is used. The last tests read the real tarball through
``DISCBIAS_DATA_MIRROR``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from discbias.config import ConfigError, Source, load_config
from discbias.fetch import (ContentDigestError, FetchError, MissingFileError, content_digest, digest_of_hashes,
                            fetch_source, iter_tree_files)
from discbias.studies.ffhq_features import read_ffhq_features
from discbias.studies.validation import DataValidationError

REAL_DIGEST = "bc3383af15f32f78c2ac4fe85b896c31427099eabb86abb50f3c09b2a8abb6b1"


def face(*, left=28, top=40, width=72, height=72, gender="female", age=30.0, smile=0.9, glasses="NoGlasses",
         hair=(("brown", 0.95), ("black", 0.4)), headwear=None, exposure=0.6, blur=0.1, noise=0.0):
    acc = [] if headwear is None else [{"type": "headwear", "confidence": headwear}]
    return {
        "faceId": "00000000-0000-0000-0000-000000000000",
        "faceRectangle": {"top": top, "left": left, "width": width, "height": height},
        "faceAttributes": {
            "smile": smile, "headPose": {"pitch": -2.0, "roll": 0.5, "yaw": 10.0}, "gender": gender, "age": age,
            "facialHair": {"moustache": 0.0, "beard": 0.1, "sideburns": 0.0}, "glasses": glasses,
            "emotion": {"anger": 0.0, "contempt": 0.0, "disgust": 0.0, "fear": 0.0, "happiness": smile,
                        "neutral": 1 - smile, "sadness": 0.0, "surprise": 0.0},
            "blur": {"blurLevel": "low", "value": blur},
            "exposure": {"exposureLevel": "goodExposure", "value": exposure},
            "noise": {"noiseLevel": "low", "value": noise},
            "makeup": {"eyeMakeup": True, "lipMakeup": False}, "accessories": acc,
            "occlusion": {"foreheadOccluded": False, "eyeOccluded": False, "mouthOccluded": False},
            "hair": {"bald": 0.05, "invisible": headwear is not None,
                     "hairColor": [{"color": c, "confidence": p} for c, p in hair]},
        },
    }


def synthetic_files() -> dict[str, bytes]:
    """Five images: one face, no face, two faces (larger second), a man with headwear, a child."""
    files = {
        "00000.json": [face()],
        "00001.json": [],
        "00002.json": [face(width=30, height=30, gender="male", age=50.0),
                       face(width=80, height=80, gender="female", age=25.0)],
        "00003.json": [face(gender="male", age=41.0, glasses="Sunglasses", hair=(), headwear=0.99)],
        "00004.json": [face(age=6.0, smile=0.0)],
    }
    return {k: json.dumps(v, indent=1).encode() for k, v in files.items()}


def write_tar(path: Path, files: dict[str, bytes], prefix: str = "json/", extra: bool = True) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        if extra:
            for name, data in (("README.md", b"readme"), ("LICENSE.txt", b"licence")):
                info = tarfile.TarInfo(prefix.rsplit("json/", 1)[0] + name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        for name, data in reversed(list(files.items())):  # archive order differs from name order
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    (root / "json").mkdir(parents=True)
    for name, data in files.items():
        (root / "json" / name).write_bytes(data)
    return root


def expected_digest(files: dict[str, bytes]) -> str:
    lines = b"".join(f"{n}\0{hashlib.sha256(files[n]).hexdigest()}\n".encode() for n in sorted(files))
    return hashlib.sha256(lines).hexdigest()


@pytest.fixture()
def files():
    return synthetic_files()


# --------------------------------------------------------------------------------- adapter
def test_one_row_per_file_with_empty_and_two_face_flagged(tmp_path, files):
    res = read_ffhq_features(write_tar(tmp_path / "f.tar.gz", files), on_invalid="error")
    df = res.tables["ffhq_features"].set_index("image_id")
    assert list(df.index) == ["00000", "00001", "00002", "00003", "00004"]
    assert df.loc["00001", "no_face"] and df.loc["00001", "n_faces"] == 0 and df.loc["00001", "face_status"] == "none"
    assert pd.isna(df.loc["00001", "gender"]) and pd.isna(df.loc["00001", "age"])
    assert df.loc["00002", "multi_face"] and df.loc["00002", "face_status"] == "several"
    # The largest face (the second one, 80x80) supplies the attributes.
    assert df.loc["00002", "gender"] == "female" and df.loc["00002", "age"] == 25.0
    assert df.loc["00002", "face_area_share"] == pytest.approx(80 * 80 / 128**2)
    assert df.loc["00002", "second_face_area_share"] == pytest.approx(30 * 30 / 128**2)
    assert df["no_face"].sum() == 1 and df["multi_face"].sum() == 1
    # Flagged files are listed as data issues, not dropped.
    problems = res.issues["problem"].tolist()
    assert "no face detected (empty array)" in problems and "2 faces detected" in problems
    assert any("00001.json" in f for f in res.issues["file"])


def test_attributes_parsed(tmp_path, files):
    df = read_ffhq_features(write_folder(tmp_path, files)).tables["ffhq_features"].set_index("image_id")
    r = df.loc["00003"]
    assert r["gender"] == "male" and r["glasses"] == "Sunglasses" and r["accessory_headwear"] == 0.99
    assert pd.isna(r["hair_color"]) and bool(r["hair_invisible"])
    r = df.loc["00000"]
    assert r["hair_color"] == "brown" and r["hair_color_confidence"] == 0.95
    assert r["exposure_level"] == "goodExposure" and r["exposure_value"] == 0.6
    assert bool(r["eye_makeup"]) and not bool(r["lip_makeup"]) and r["emotion_happiness"] == 0.9
    assert r["head_yaw"] == 10.0 and r["face_area_share"] == pytest.approx(72 * 72 / 128**2)


def test_folder_and_tarball_give_the_same_table_and_digest(tmp_path, files):
    a = read_ffhq_features(write_tar(tmp_path / "f.tar.gz", files))
    b = read_ffhq_features(write_folder(tmp_path / "x", files) / "json")
    pd.testing.assert_frame_equal(a.tables["ffhq_features"], b.tables["ffhq_features"])
    assert a.digest == b.digest == expected_digest(files)


def test_upstream_archive_layout(tmp_path, files):
    arc = write_tar(tmp_path / "up.tar.gz", files, prefix="ffhq-features-dataset-abc/json/")
    assert [n for n, _ in iter_tree_files(arc)] == sorted(files, reverse=True)
    assert read_ffhq_features(arc).digest == expected_digest(files)


def test_invalid_value_raises_or_is_reported(tmp_path, files):
    bad = json.loads(files["00000.json"])
    bad[0]["faceAttributes"]["gender"] = "unknown"
    bad[0]["faceAttributes"]["age"] = -3
    files["00000.json"] = json.dumps(bad).encode()
    arc = write_tar(tmp_path / "f.tar.gz", files)
    with pytest.raises(DataValidationError, match=r"00000\.json.*gender"):
        read_ffhq_features(arc, on_invalid="error")
    res = read_ffhq_features(arc, on_invalid="report")
    r = res.tables["ffhq_features"].set_index("image_id").loc["00000"]
    assert pd.isna(r["gender"]) and pd.isna(r["age"])
    assert set(res.issues["column"]) >= {"faceAttributes.gender", "faceAttributes.age"}


def test_broken_json_kept_and_reported(tmp_path, files):
    files["00004.json"] = b"[{not json"
    res = read_ffhq_features(write_folder(tmp_path, files), on_invalid="report")
    df = res.tables["ffhq_features"].set_index("image_id")
    assert bool(df.loc["00004", "parse_error"]) and len(df) == 5
    assert res.issues["problem"].str.startswith("not valid JSON").any()


def test_counts_and_digest_mismatch_are_issues(tmp_path, files):
    res = read_ffhq_features(write_folder(tmp_path, files), expected_files=6, content_digest="0" * 64,
                             on_invalid="report")
    probs = " ".join(res.issues["problem"])
    assert "expected 6 files, found 5" in probs and "content digest differs" in probs


def test_parquet_cache_keyed_by_archive_sha(tmp_path, files):
    arc = write_tar(tmp_path / "f.tar.gz", files)
    first = read_ffhq_features(arc, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.parquet"))) == 2 and first.digest is not None
    second = read_ffhq_features(arc, cache_dir=tmp_path / "cache")
    assert second.digest is None  # served from the cache
    pd.testing.assert_frame_equal(first.tables["ffhq_features"], second.tables["ffhq_features"],
                                  check_categorical=False)
    pd.testing.assert_frame_equal(first.issues, second.issues)
    # Other bytes -> other key -> parsed again.
    files["00000.json"] = files["00000.json"].replace(b'"age": 30.0', b'"age": 31.0')
    write_tar(arc, files)
    third = read_ffhq_features(arc, cache_dir=tmp_path / "cache")
    assert third.digest is not None and third.tables["ffhq_features"].loc[0, "age"] == 31.0


def test_missing_path_and_empty_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="discbias fetch"):
        read_ffhq_features(tmp_path / "nope.tar.gz")
    with pytest.raises(ValueError, match="no json/<id>.json files"):
        read_ffhq_features(write_tar(tmp_path / "e.tar.gz", {}))


# ----------------------------------------------------------------------------------- fetch
def tree_source(files, **kw) -> Source:
    meta = {"alternatives": ["upstream-abc.tar.gz", "json"]}
    return Source("ffhq_features", "f.tar.gz", kw.pop("url", ""), kw.pop("sha256", "0" * 64), kind="json_tree",
                  content_digest=kw.pop("digest", expected_digest(files)), meta=meta)


def test_digest_of_hashes_matches_documented_rule(files):
    hashes = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    assert digest_of_hashes(hashes) == expected_digest(files)


def test_fetch_mirror_tarball_by_content_digest(tmp_path, files):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_tar(mirror / "f.tar.gz", files)
    r = fetch_source(tree_source(files), tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    assert r.path.exists() and "content digest" in r.origin
    again = fetch_source(tree_source(files), tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    assert again.origin.startswith("cached")


def test_fetch_sha256_fast_path(tmp_path, files):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    arc = write_tar(mirror / "f.tar.gz", files)
    from discbias.fetch import sha256_file

    src = tree_source(files, sha256=sha256_file(arc), digest="f" * 64)  # digest never consulted
    r = fetch_source(src, tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    assert r.origin.endswith("(sha256)")


def test_fetch_upstream_archive_and_extracted_folder(tmp_path, files):
    m1 = tmp_path / "m1"
    m1.mkdir()
    write_tar(m1 / "upstream-abc.tar.gz", files, prefix="ffhq-features-dataset-abc/json/")
    r = fetch_source(tree_source(files), tmp_path / "raw1", mirror=m1, allow_download=False, progress=False)
    assert "upstream-abc.tar.gz" in r.origin and content_digest(r.path)[0] == expected_digest(files)
    m2 = write_folder(tmp_path / "m2", files)
    r = fetch_source(tree_source(files), tmp_path / "raw2", mirror=m2, allow_download=False, progress=False)
    assert r.origin.startswith("folder") and r.path.is_file()
    assert content_digest(r.path) == (expected_digest(files), 5)


def test_fetch_digest_mismatch_names_expected_and_actual(tmp_path, files):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_tar(mirror / "f.tar.gz", files)
    src = tree_source(files, digest="a" * 64)
    with pytest.raises(ContentDigestError) as err:
        fetch_source(src, tmp_path / "raw", mirror=mirror, allow_download=False, progress=False)
    msg = str(err.value)
    assert "a" * 64 in msg and expected_digest(files) in msg and "5 member files" in msg
    assert not (tmp_path / "raw" / "f.tar.gz").exists()  # nothing installed
    assert not list((tmp_path / "raw").glob(".*part"))


def test_fetch_missing_tree_says_where_it_looked(tmp_path, files):
    with pytest.raises(MissingFileError, match="upstream-abc.tar.gz"):
        fetch_source(tree_source(files), tmp_path / "raw", mirror=tmp_path, allow_download=False, progress=False)


def test_fetch_existing_wrong_file_is_refused(tmp_path, files):
    raw = tmp_path / "raw"
    raw.mkdir()
    other = dict(files)
    other.pop("00004.json")
    write_tar(raw / "f.tar.gz", other)
    with pytest.raises(ContentDigestError, match="delete it to refetch"):
        fetch_source(tree_source(files), raw, mirror=None, allow_download=False, progress=False)


def test_duplicate_member_names_refused(tmp_path, files):
    arc = tmp_path / "d.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        for prefix in ("a/json/", "b/json/"):
            info = tarfile.TarInfo(prefix + "00000.json")
            info.size = 2
            tf.addfile(info, io.BytesIO(b"[]"))
    with pytest.raises(FetchError, match="occurs twice"):
        content_digest(arc)


def test_csv_sources_unchanged(tmp_path):
    m = tmp_path / "m"
    m.mkdir()
    (m / "a.csv").write_bytes(b"x\n1\n")
    src = Source("a", "a.csv", "", hashlib.sha256(b"x\n1\n").hexdigest())
    assert src.kind == "file"
    assert fetch_source(src, tmp_path / "raw", mirror=m, allow_download=False, progress=False).origin.startswith("mirror:")


def test_config_json_tree_needs_content_digest(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[study]\nid = "x"\n[sources.t]\nkind = "json_tree"\nfile = "t.tar.gz"\nsha256 = "00"\n')
    with pytest.raises(ConfigError, match="content_digest"):
        load_config(p)
    p.write_text('[study]\nid = "x"\n[sources.t]\nkind = "zip"\nfile = "t.zip"\nsha256 = "00"\n')
    with pytest.raises(ConfigError, match=r"\[sources.t\] kind: unknown value 'zip', must be one of \['file', 'json_tree'\]"):
        load_config(p)


def test_study_config_has_features_source():
    cfg = load_config(Path(__file__).parents[1] / "analysis" / "grissom2024.toml")
    src = cfg.role("ffhq_features")
    assert src.kind == "json_tree" and src.content_digest == REAL_DIGEST
    assert src.meta["commit"] in src.url and src.meta["files"] == 70000


# ----------------------------------------------------------------------------- real data
def _mirror_tarball() -> Path:
    mirror = os.environ.get("DISCBIAS_DATA_MIRROR")
    if not mirror:
        pytest.skip("DISCBIAS_DATA_MIRROR is not set (point it at the paper-data folder to run this test)")
    p = Path(mirror) / "ffhq-features-json.tar.gz"
    if not p.exists():
        pytest.skip(f"{p} not found in the data mirror")
    return p


@pytest.mark.integration
def test_real_tarball(tmp_path):
    arc = _mirror_tarball()
    cfg = load_config(Path(__file__).parents[1] / "analysis" / "grissom2024.toml")
    src = cfg.role("ffhq_features")
    r = fetch_source(src, tmp_path / "raw", mirror=arc.parent, allow_download=False, progress=False)
    assert r.origin.endswith("(sha256)")
    res = read_ffhq_features(r.path, expected_files=70000, content_digest=src.content_digest, on_invalid="error")
    assert res.digest == REAL_DIGEST
    df = res.tables["ffhq_features"]
    assert len(df) == 70000 and df["image_id"].is_unique
    assert df["image_id"].iloc[0] == "00000" and df["image_id"].iloc[-1] == "69999"
    assert int(df["no_face"].sum()) == 529 and int(df["multi_face"].sum()) == 70
    assert df.loc[~df["no_face"], "gender"].notna().all()
    counts = res.issues["problem"].value_counts()
    assert counts["no face detected (empty array)"] == 529 and counts["2 faces detected"] == 70
    assert len(res.issues) == 599  # nothing else is wrong in the released files


def test_only_empty_files_still_give_the_full_schema(tmp_path):
    res = read_ffhq_features(write_folder(tmp_path, {"00000.json": b"[]", "00001.json": b"[]"}))
    df = res.tables["ffhq_features"]
    assert len(df) == 2 and df["no_face"].all()
    assert {"gender", "glasses", "hair_color", "exposure_value"} <= set(df.columns) and df["gender"].isna().all()
