"""Adapter for the FFHQ face attributes (DCGM/ffhq-features-dataset).

Upstream holds one file per FFHQ image, ``json/00000.json`` ... ``json/69999.json``: a JSON array
of Microsoft Face API v1.0 ``detect`` results computed on the 128x128 thumbnail (CC BY-NC-SA 4.0).
:func:`read_ffhq_features` turns them into one row per image (``image_id`` as in
``RGB_format_images_data.csv``):

* ``n_faces``, ``face_status`` (``"none"``, ``"one"``, ``"several"``) and the flags ``no_face`` /
  ``multi_face``. Empty arrays (529 upstream) and arrays with two faces (70) are kept, flagged
  and listed as data issues, never dropped. For several faces, every attribute is the largest
  face's (by rectangle area; the first on ties); ``second_face_area_share`` is the runner-up's.
* the largest face's rectangle in thumbnail pixels and its ``face_area_share`` of the 128x128
  thumbnail; ``gender``, ``age``, ``smile``, head pose, ``glasses``, facial hair, the eight
  emotion probabilities, blur / exposure / noise values and levels, makeup, accessory
  confidences, occlusions, baldness, ``hair_invisible``, the top hair colour and its confidence.

Values of an unknown category or outside their documented range are set missing and reported
(``on_invalid="report"``) or raise :class:`~discbias.studies.validation.DataValidationError`.

The archive is read as a stream (no extraction). The tidy table is cached as Parquet keyed by the
archive's sha256 (or, for a folder, its content digest) and the adapter's schema version.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..fetch import digest_of_hashes, iter_tree_files, sha256_file
from .grissom2024 import AdapterResult
from ..errors import MissingInputError
from .validation import ISSUE_COLUMNS, DataError, DataIssue, DataValidationError

#: Bump when the table's columns or their meaning change (invalidates the Parquet cache).
SCHEMA_VERSION = 2  # 2: the two-face issue is worded without the raw flag name
THUMBNAIL_PX = 128
GENDERS = ["female", "male"]
GLASSES = ["NoGlasses", "ReadingGlasses", "Sunglasses", "SwimmingGoggles"]
BLUR_LEVELS = ["low", "medium", "high"]
NOISE_LEVELS = ["low", "medium", "high"]
EXPOSURE_LEVELS = ["underExposure", "goodExposure", "overExposure"]
HAIR_COLORS = ["brown", "black", "blond", "gray", "red", "other"]
EMOTIONS = ["anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]
ACCESSORIES = ["glasses", "headwear", "mask"]
FACE_STATUS = ["none", "one", "several"]

#: Categorical columns and their levels, in display order.
CATEGORIES = {
    "gender": GENDERS, "glasses": GLASSES, "blur_level": BLUR_LEVELS, "exposure_level": EXPOSURE_LEVELS,
    "noise_level": NOISE_LEVELS, "hair_color": HAIR_COLORS, "face_status": FACE_STATUS,
}
BOOLEAN_COLUMNS = ["eye_makeup", "lip_makeup", "forehead_occluded", "eye_occluded", "mouth_occluded", "hair_invisible"]

# (column, path in faceAttributes, low, high)
_NUMERIC = [
    ("age", ("age",), 0, 130),
    ("smile", ("smile",), 0, 1),
    ("head_pitch", ("headPose", "pitch"), -180, 180),
    ("head_roll", ("headPose", "roll"), -180, 180),
    ("head_yaw", ("headPose", "yaw"), -180, 180),
    ("moustache", ("facialHair", "moustache"), 0, 1),
    ("beard", ("facialHair", "beard"), 0, 1),
    ("sideburns", ("facialHair", "sideburns"), 0, 1),
    *[(f"emotion_{e}", ("emotion", e), 0, 1) for e in EMOTIONS],
    ("blur_value", ("blur", "value"), 0, 1),
    ("exposure_value", ("exposure", "value"), 0, 1),
    ("noise_value", ("noise", "value"), 0, 1),
    ("bald", ("hair", "bald"), 0, 1),
]
_CATEGORICAL = [
    ("gender", ("gender",), GENDERS),
    ("glasses", ("glasses",), GLASSES),
    ("blur_level", ("blur", "blurLevel"), BLUR_LEVELS),
    ("exposure_level", ("exposure", "exposureLevel"), EXPOSURE_LEVELS),
    ("noise_level", ("noise", "noiseLevel"), NOISE_LEVELS),
]
_BOOLEAN = [
    ("eye_makeup", ("makeup", "eyeMakeup")),
    ("lip_makeup", ("makeup", "lipMakeup")),
    ("forehead_occluded", ("occlusion", "foreheadOccluded")),
    ("eye_occluded", ("occlusion", "eyeOccluded")),
    ("mouth_occluded", ("occlusion", "mouthOccluded")),
    ("hair_invisible", ("hair", "invisible")),
]
_MISSING = object()


def _get(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return _MISSING
        d = d[k]
    return d


def _area(face) -> float:
    r = face.get("faceRectangle") if isinstance(face, dict) else None
    try:
        return float(r["width"]) * float(r["height"])
    except (TypeError, KeyError, ValueError):
        return -1.0


class _Issues:
    def __init__(self, archive: str):
        self.archive = archive
        self.rows: list[DataIssue] = []

    def add(self, member: str, column: str, value, problem: str, action: str) -> None:
        self.rows.append(DataIssue(f"{self.archive}:{member}", 0, column, str(value), problem, action))


def parse_image(name: str, data: bytes, issues: _Issues) -> dict:
    """One row of the tidy table from one upstream file (``<image_id>.json``).

    Parameters
    ----------
    name : str
        Member file name, e.g. ``"00000.json"``.
    data : bytes
        The file's bytes (a JSON array of Face API results).
    issues : object
        Collector with ``add(member, column, value, problem, action)``.

    Examples
    --------
    >>> row = parse_image("00007.json", b"[]", _Issues("t.tar.gz"))
    >>> row["image_id"], row["n_faces"], row["face_status"], row["no_face"]
    ('00007', 0, 'none', True)
    """
    member = f"json/{name}"
    image_id = name[: -len(".json")] if name.endswith(".json") else name
    if not (len(image_id) == 5 and image_id.isdigit()):
        issues.add(member, "<file name>", name, "file name is not <5-digit FFHQ id>.json",
                   "kept; image_id is the file stem and will not join to the scores")
    try:
        faces = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        issues.add(member, "<file>", data[:40], f"not valid JSON ({exc})", "kept as an image with unknown faces")
        faces = None
    if faces is not None and not isinstance(faces, list):
        issues.add(member, "<file>", type(faces).__name__, "not a JSON array of faces",
                   "kept as an image with unknown faces")
        faces = None
    row: dict = {"image_id": image_id, "member": member}
    if faces is None:
        row.update(n_faces=np.nan, face_status=None, no_face=False, multi_face=False, parse_error=True)
        return row
    n = len(faces)
    row.update(n_faces=n, face_status=FACE_STATUS[min(n, 2)], no_face=n == 0, multi_face=n > 1, parse_error=False)
    if n == 0:
        issues.add(member, "<faces>", "[]", "no face detected (empty array)",
                   "kept and flagged no_face; face attributes missing")
        return row
    if n > 1:
        issues.add(member, "<faces>", n, f"{n} faces detected",
                   "kept and flagged as showing more than one face; attributes of the largest face")
    areas = [_area(f) for f in faces]
    k = int(np.argmax(areas))
    face = faces[k]
    if n > 1:
        row["second_face_area_share"] = sorted(areas)[-2] / THUMBNAIL_PX**2
    rect = face.get("faceRectangle") if isinstance(face, dict) else None
    for key in ("left", "top", "width", "height"):
        v = _get(rect, (key,)) if rect is not None else _MISSING
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            row[f"face_{key}"] = float(v)
        else:
            issues.add(member, f"faceRectangle.{key}", None if v is _MISSING else v, "missing or non-numeric",
                       "set to missing")
    if "face_width" in row and "face_height" in row:
        row["face_area_share"] = row["face_width"] * row["face_height"] / THUMBNAIL_PX**2
    attrs = face.get("faceAttributes") if isinstance(face, dict) else None
    if not isinstance(attrs, dict):
        issues.add(member, "faceAttributes", None, "missing", "face attributes set to missing")
        return row
    for col, path, lo, hi in _NUMERIC:
        v = _get(attrs, path)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi:
            row[col] = float(v)
        else:
            what = "missing" if v is _MISSING else f"non-numeric or outside {lo}-{hi}"
            issues.add(member, "faceAttributes." + ".".join(path), None if v is _MISSING else v, what, "set to missing")
    for col, path, allowed in _CATEGORICAL:
        v = _get(attrs, path)
        if v in allowed:
            row[col] = v
        else:
            issues.add(member, "faceAttributes." + ".".join(path), None if v is _MISSING else v,
                       f"unknown value (expected one of {allowed})", "set to missing")
    for col, path in _BOOLEAN:
        v = _get(attrs, path)
        if isinstance(v, bool):
            row[col] = v
        else:
            issues.add(member, "faceAttributes." + ".".join(path), None if v is _MISSING else v,
                       "missing or not true/false", "set to missing")
    acc = attrs.get("accessories", [])
    if isinstance(acc, list):
        row["n_accessories"] = len(acc)
        for a in ACCESSORIES:
            conf = [float(x.get("confidence", np.nan)) for x in acc if isinstance(x, dict) and x.get("type") == a]
            row[f"accessory_{a}"] = max(conf) if conf else 0.0
    else:
        issues.add(member, "faceAttributes.accessories", acc, "not a list", "set to missing")
    colors = _get(attrs, ("hair", "hairColor"))
    if isinstance(colors, list):
        if colors:
            top = max(colors, key=lambda c: float(c.get("confidence", -1)) if isinstance(c, dict) else -1)
            if top.get("color") in HAIR_COLORS:
                row["hair_color"] = top["color"]
                row["hair_color_confidence"] = float(top.get("confidence", np.nan))
            else:
                issues.add(member, "faceAttributes.hair.hairColor", top.get("color"),
                           f"unknown hair colour (expected one of {HAIR_COLORS})", "set to missing")
        # An empty list (bald or hair invisible) leaves hair_color missing: not an issue.
    else:
        issues.add(member, "faceAttributes.hair.hairColor", None if colors is _MISSING else colors,
                   "missing or not a list", "set to missing")
    return row


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    numeric = (["n_faces", "face_left", "face_top", "face_width", "face_height", "face_area_share",
                "second_face_area_share", "n_accessories", "hair_color_confidence"]
               + [c for c, *_ in _NUMERIC] + [f"accessory_{a}" for a in ACCESSORIES])
    for c in numeric:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float) if c in df else np.nan
    for c, levels in CATEGORIES.items():
        df[c] = pd.Categorical(df[c] if c in df else [None] * len(df), categories=levels)
    for c in BOOLEAN_COLUMNS:
        df[c] = (df[c] if c in df else pd.Series([None] * len(df))).astype("boolean")
    for c in ("no_face", "multi_face", "parse_error"):
        df[c] = df[c].astype(bool)
    df = df.sort_values("image_id", kind="stable").reset_index(drop=True)
    first = ["image_id", "n_faces", "face_status", "no_face", "multi_face", "parse_error", "face_area_share"]
    return df[first + [c for c in df.columns if c not in first and c != "member"] + ["member"]]


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"ffhq_features-{key[:24]}-v{SCHEMA_VERSION}.parquet"


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_ffhq_features(path: str | os.PathLike, *, expected_files: int | None = None,
                       content_digest: str | None = None, cache_dir: str | os.PathLike | None = None,
                       on_invalid: str = "error") -> AdapterResult:
    """Parse the FFHQ face-attribute files into one row per image.

    Parameters
    ----------
    path : path
        The tarball (mirror or upstream archive; read as a stream) or a folder holding
        ``json/`` (or the ``json/`` folder itself).
    expected_files : int, optional
        Number of files the configuration expects (70,000); a different count is a data issue.
    content_digest : str, optional
        Expected content digest (see :func:`discbias.fetch.digest_of_hashes`); a mismatch is a
        data issue (``fetch`` has already refused mismatching archives).
    cache_dir : path, optional
        Folder for the Parquet cache, keyed by the archive's sha256 and :data:`SCHEMA_VERSION`.
    on_invalid : {"error", "report"}
        Raise on invalid values, or set them missing and report them. Files with no face or
        several faces are always reported (they are flagged, not invalid).

    Returns
    -------
    AdapterResult
        ``tables["ffhq_features"]`` (one row per file) and the issues. ``result.digest`` is the
        content digest computed (``None`` when read from the cache, where the key stands in).

    Raises
    ------
    DataValidationError
        ``on_invalid="error"`` and a value is invalid.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "json"; d.mkdir()
    >>> _ = (d / "00000.json").write_text("[]")
    >>> res = read_ffhq_features(d, on_invalid="report")
    >>> res.tables["ffhq_features"][["image_id", "n_faces", "no_face"]].values.tolist()
    [['00000', 0.0, True]]
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path} does not exist; run `discbias fetch` (the ffhq_features source)")
    archive = path.name
    key = None
    if cache_dir is not None and path.is_file():
        key = sha256_file(path)
        cached = _cache_path(Path(cache_dir), key)
        issues_cached = cached.with_suffix(".issues.parquet")
        if cached.exists() and issues_cached.exists():
            issues = pd.read_parquet(issues_cached)
            _finish(issues, on_invalid)
            res = AdapterResult({"ffhq_features": pd.read_parquet(cached)}, issues)
            res.digest = None
            return res
    log = _Issues(archive)
    rows, hashes = [], {}
    for name, data in iter_tree_files(path):
        if name in hashes:
            raise DataError(f"{path}: {name} occurs twice (more than one json/ folder); use the upstream layout")
        hashes[name] = hashlib.sha256(data).hexdigest()
        rows.append(parse_image(name, data, log))
    if not rows:
        raise DataError(f"{path}: no json/<id>.json files found; is this the ffhq-features-dataset archive?")
    digest = digest_of_hashes(hashes)
    if expected_files is not None and len(rows) != expected_files:
        log.add("json/", "<files>", len(rows), f"expected {expected_files} files, found {len(rows)}", "kept as found")
    if content_digest and digest != content_digest:
        log.add("json/", "<content digest>", digest, f"content digest differs from the configured {content_digest}",
                "kept; results are not for the pinned upstream files")
    table = _frame(rows)
    issues = pd.DataFrame([vars(i) for i in log.rows], columns=ISSUE_COLUMNS)
    _finish(issues, on_invalid)
    if cache_dir is not None:
        key = key or digest
        cached = _cache_path(Path(cache_dir), key)
        _atomic_parquet(table, cached)
        _atomic_parquet(issues, cached.with_suffix(".issues.parquet"))
    res = AdapterResult({"ffhq_features": table}, issues)
    res.digest = digest
    return res


_FLAGGED = ("no face detected (empty array)",)


def _finish(issues: pd.DataFrame, on_invalid: str) -> None:
    if on_invalid not in ("error", "report"):
        raise ValueError(f"on_invalid must be 'error' or 'report', not {on_invalid!r}")
    bad = issues[~issues["problem"].isin(_FLAGGED) & ~issues["problem"].str.endswith("faces detected")]
    if len(bad) and on_invalid == "error":
        raise DataValidationError([DataIssue(**r) for r in bad.to_dict("records")])
