"""Adapters for the released data of Grissom II et al. (2024).

Each adapter reads one released CSV and returns tidy tables plus the list of data issues
(see :mod:`discbias.studies.validation`). The corrections applied, each tested:

* ``RGB_format_images_data.csv``: the column ``luminance`` is the mean of OpenCV channel 0 of
  a BGR image, i.e. the **blue** channel mean on 0-255; it becomes ``blue_mean``. ``scores``
  becomes ``score``; the unnamed pandas index column is dropped; ``image_id`` loses ``.png``.
* ``all_face_data*.csv``: the FFHQ extremes are named ``top<k>.png`` and ``bot<k>.png``; ``k`` is
  not the score rank, so rows are joined to ``bottom_top_100_data.csv`` by their (identical)
  released score. The score column is spelled ``discriminator_Score`` there.
* Study 2: per-rater columns ``<Item>_<k>`` / ``Race.<k>`` (or ``<Item> <k>``) become a long table.
  The file's rater slots are ``1..K``, where ``K`` is the largest number for which every rated
  item of the file (every item with a slot-1 column) has a column for each slot ``1..K``; a
  column that merely looks like a slot (``Hair_99`` past ``K``, an item without slot 1) is not
  read as a rater and is listed in the data issues (line 1, the header);
  the hair prompt (long / short / buzz) is read from ``fullstimname``
  (``<race><m|w><l|s|b><k>.png``) because for women the released ``hairlength`` "short" is the
  buzz-cut prompt; a disagreement between the name and the design columns is an issue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .validation import (CsvFormatError, IssueLog, categorical_column, duplicated_ids, numeric_column, read_released_csv,
                         require_columns)

#: Numeric rating items (1-7 scales) of the Study 2 survey.
RATING_ITEMS = ["Skintone", "Afrocentric", "Eurocentric", "Asiocentric", "Masculinity", "Femininity", "Hair"]
#: Snake-case names used in tidy tables.
ITEM_NAMES = {
    "Skintone": "skintone",
    "Afrocentric": "afrocentric",
    "Eurocentric": "eurocentric",
    "Asiocentric": "asiocentric",
    "Masculinity": "masculinity",
    "Femininity": "femininity",
    "Hair": "hair_length",
}
#: Rated race categories (US census categories plus "Not listed").
RACE_CATEGORIES = [
    "White",
    "Black or African-American",
    "Asian",
    "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
    "Not listed",
]
RATING_MIN, RATING_MAX = 1, 7
SCORE_COLUMNS = ("discriminator_score", "scores", "discriminator_Score")
#: Colour columns every per-image file except the 70k one must have (the models read them).
COLOUR_COLUMNS = ("red_mean", "green_mean", "blue_mean", "luminance")

_RACE = {"Asian": "Asian", "Black": "Black", "White": "White", "asian": "Asian", "black": "Black", "white": "White"}
_GENDER = {"men": "men", "women": "women"}
_HAIR = {"long": "long", "short": "short"}
NAME_RE = re.compile(r"^(?P<race>[abw])(?P<gen>[mw])(?P<hair>[lsb])(?P<k>\d+)\.png$")
NAME_RACE = {"a": "Asian", "b": "Black", "w": "White"}
NAME_GENDER = {"m": "men", "w": "women"}
NAME_HAIR = {"l": "long", "s": "short", "b": "buzz"}
_SLOT_RE = re.compile(r"^(?P<item>[A-Za-z]+)[ _.](?P<slot>\d+)$")


@dataclass
class AdapterResult:
    """Tables made from one released file, and the problems found in it.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Tidy tables, by name.
    issues : DataFrame
        One row per problem (columns of :data:`validation.ISSUE_COLUMNS`).
    """

    tables: dict[str, pd.DataFrame]
    issues: pd.DataFrame = field(default_factory=pd.DataFrame)


def read_released(path, name: str) -> tuple[pd.DataFrame, IssueLog]:
    """Read a released CSV as text, with the issue log that maps each row to its physical line.

    Everything is read as text so that nothing is coerced before validation (see
    :func:`discbias.studies.validation.read_released_csv`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"; _ = p.write_text("image,score\\n1.png,0.5\\n")
    >>> df, log = read_released(p, "a.csv")
    >>> df.to_dict("records")
    [{'image': '1.png', 'score': '0.5'}]
    """
    df, lines = read_released_csv(path, name=name)
    return df, IssueLog(name, lines)


def _score_column(df: pd.DataFrame, name: str) -> str:
    for c in SCORE_COLUMNS:
        if c in df.columns:
            return c
    raise CsvFormatError(name, 1, f"no score column (expected one of {list(SCORE_COLUMNS)})",
                         "Use the released file (or name the score column like it)")


def _check_rows(df: pd.DataFrame, expected: int | None, log: IssueLog) -> None:
    if expected is not None and len(df) != expected:
        log.add(0, "<file>", len(df), f"expected {expected} data rows, found {len(df)}", "kept as found")


def read_ffhq_scores(path: str | Path, *, expected_rows: int | None = None,
                     on_invalid: str = "error") -> AdapterResult:
    """Study 1: the released score of every FFHQ image.

    Parameters
    ----------
    path : path
        ``RGB_format_images_data.csv`` (columns: index, ``image_id``, ``scores``, ``luminance``).
    expected_rows : int, optional
        Rows the configuration expects (70,000).
    on_invalid : {"error", "report"}
        Raise on invalid values, or set them missing and report them.

    Returns
    -------
    AdapterResult
        ``tables["ffhq_scores"]`` with ``image_id`` (5-digit string), ``score``, ``blue_mean``
        (the released ``luminance`` column, which is the blue-channel mean on 0-255) and ``valid``.

    Examples
    --------
    >>> import io
    >>> csv = io.StringIO(",image_id,scores,luminance\\n0,00001.png,150.5,80.2\\n")
    >>> read_ffhq_scores(csv).tables["ffhq_scores"].columns.tolist()
    ['image_id', 'score', 'blue_mean', 'valid']
    """
    name = Path(getattr(path, "name", "RGB_format_images_data.csv")).name
    df, log = read_released(path, name)
    require_columns(df, ["image_id", "scores", "luminance"], name, "Is this RGB_format_images_data.csv?")
    _check_rows(df, expected_rows, log)
    out = pd.DataFrame({"image_id": df["image_id"].astype(str).str.replace(r"\.png$", "", regex=True)})
    out["score"] = numeric_column(df, "scores", log, what="score", required=True)
    out["blue_mean"] = numeric_column(df, "luminance", log, what="blue-channel mean", low=0, high=255)
    dup = duplicated_ids(out.rename(columns={}), "image_id", log)
    out["valid"] = out["score"].notna() & ~dup
    return AdapterResult({"ffhq_scores": out}, log.finish(on_invalid))


def _colour_columns(df: pd.DataFrame, log: IssueLog, out: pd.DataFrame) -> None:
    for c in ("red_mean", "green_mean", "blue_mean"):
        out[c] = numeric_column(df, c, log, what="channel mean", low=0, high=255).to_numpy()
    out["luminance"] = numeric_column(df, "luminance", log, what="luminance", low=0, high=1).to_numpy()


def rater_slots(columns) -> tuple[dict[tuple[str, int], str], list[str], int]:
    """The file's rater-slot columns, and the columns that only look like one.

    The slots are ``1..K``: ``K`` is the largest number for which every rated item of the file
    (every item of :data:`RATING_ITEMS`, ``Race`` and ``RaceTextbox`` that has a slot-1 column)
    has a column for each slot ``1..K``. Other columns named like a slot (``Hair_99`` past ``K``,
    an item without slot 1) are returned as look-alikes.

    Returns
    -------
    (dict, list, int)
        ``{(item, slot): column}`` of the real slots, the look-alike column names, and ``K``.

    Examples
    --------
    >>> slots, ignored, k = rater_slots(["Hair_1", "Skintone_1", "Hair_2", "Skintone_2", "Hair_99", "Skintone_3"])
    >>> k, sorted(slots), ignored
    (2, [('Hair', 1), ('Hair', 2), ('Skintone', 1), ('Skintone', 2)], ['Hair_99', 'Skintone_3'])
    """
    found = {}
    for c in columns:
        m = _SLOT_RE.match(str(c))
        if m and m["item"] in RATING_ITEMS + ["Race", "RaceTextbox"]:
            found[(m["item"], int(m["slot"]))] = c
    items = {item for item, slot in found if slot == 1}
    k = 0
    while items and all((item, k + 1) in found for item in items):
        k += 1
    real = {key: c for key, c in found.items() if key[0] in items and key[1] <= k}
    ignored = [c for key, c in found.items() if key not in real]
    return real, ignored, k


def ratings_long(df: pd.DataFrame, ids: pd.Series, log: IssueLog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-rater slots to long tables.

    Returns ``(numeric, race)``: ``numeric`` has one row per image x slot x item with a non-missing
    rating (``image, slot, item, value``); ``race`` one row per image x slot with a race answer
    (``image, slot, race, race_text``). Out-of-range and non-numeric ratings, and unknown race
    labels, are logged and left out of the long tables (the wide row keeps its other values).
    """
    slots, ignored, k = rater_slots(df.columns)
    for col in ignored:
        log.add(1, col, "", f"column looks like a rater slot but the file's rater slots are 1-{k} (every rated "
                "item has a column for each of them)", "ignored: not read as a rater")
    numeric_parts, race_parts = [], []
    ids = ids.reset_index(drop=True)
    for (item, slot), col in sorted(slots.items()):
        if item in RATING_ITEMS:
            vals = numeric_column(df, col, log, what=f"{item} rating", low=RATING_MIN, high=RATING_MAX)
            keep = vals.notna().to_numpy()
            numeric_parts.append(pd.DataFrame({
                "image": ids[keep].to_numpy(), "slot": slot, "item": ITEM_NAMES[item],
                "value": vals.to_numpy()[keep],
            }))
        elif item == "Race":
            raw = df[col]
            present = raw.notna().to_numpy()
            known = raw.isin(RACE_CATEGORIES).to_numpy()
            for idx in raw.index[present & ~known]:
                log.add(log.line(idx), col, raw.loc[idx], "unknown rated race category", "left out of race ratings")
            keep = present & known
            text_col = slots.get(("RaceTextbox", slot))
            text = df[text_col] if text_col else pd.Series(np.nan, index=df.index)
            race_parts.append(pd.DataFrame({
                "image": ids[keep].to_numpy(), "slot": slot, "race": raw[keep].to_numpy(),
                "race_text": text[keep].to_numpy(),
            }))
    numeric = (pd.concat(numeric_parts, ignore_index=True) if numeric_parts
               else pd.DataFrame(columns=["image", "slot", "item", "value"]))
    race = (pd.concat(race_parts, ignore_index=True) if race_parts
            else pd.DataFrame(columns=["image", "slot", "race", "race_text"]))
    numeric["slot"] = numeric["slot"].astype(int)
    race["slot"] = race["slot"].astype(int)
    return numeric.sort_values(["image", "item", "slot"], ignore_index=True), race.sort_values(
        ["image", "slot"], ignore_index=True)


def summarise_ratings(long: pd.DataFrame, ids) -> pd.DataFrame:
    """Per-image mean, SD (ddof=1) and count of each rating item, wide.

    Columns ``<item>_mean``, ``<item>_sd``, ``<item>_n`` for every item in :data:`ITEM_NAMES`;
    every id in ``ids`` appears (n = 0 where it has no rating).

    Examples
    --------
    >>> long = pd.DataFrame({"image": ["a", "a"], "slot": [1, 2], "item": ["hair_length"] * 2, "value": [2.0, 4.0]})
    >>> s = summarise_ratings(long, ["a"])
    >>> float(s.loc["a", "hair_length_mean"]), int(s.loc["a", "hair_length_n"])
    (3.0, 2)
    """
    agg = long.groupby(["image", "item"])["value"].agg(["mean", "std", "count"]).unstack("item")
    out = pd.DataFrame(index=pd.Index(list(ids), name="image"))
    for item in ITEM_NAMES.values():
        for stat, suffix in (("mean", "mean"), ("std", "sd"), ("count", "n")):
            col = agg[(stat, item)] if (stat, item) in agg.columns else pd.Series(dtype=float)
            out[f"{item}_{suffix}"] = col.reindex(out.index)
        out[f"{item}_n"] = out[f"{item}_n"].fillna(0).astype(int)
    return out


def read_top_bottom(top_bottom_path: str | Path, ratings_path: str | Path, *,
                    expected_rows: int | None = None, on_invalid: str = "error") -> AdapterResult:
    """Study 1 extremes: the top and bottom 100 FFHQ images with colour and rater race.

    Parameters
    ----------
    top_bottom_path : path
        ``bottom_top_100_data.csv`` (FFHQ id, score, colour means, luminance).
    ratings_path : path
        ``all_face_data_matched.csv`` (or ``all_face_data.csv``); rows ``top<k>.png`` and
        ``bot<k>.png`` are joined to the first file by their released score.
    expected_rows, on_invalid
        As in :func:`read_ffhq_scores`.

    Returns
    -------
    AdapterResult
        ``tables["top_bottom"]``: ``image_id, group ("top"/"bottom"), rated_name, score,
        red_mean, green_mean, blue_mean, luminance``; ``tables["top_bottom_race"]``: one row per
        image x rater slot with the rated race; ``tables["top_bottom_ratings"]``: numeric ratings.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> m = make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3).parent.parent / "mirror"
    >>> r = read_top_bottom(m / "top_bottom.csv", m / "rated.csv")
    >>> r.tables["top_bottom"]["group"].value_counts().to_dict()
    {'bottom': 100, 'top': 100}
    """
    tb_name = Path(getattr(top_bottom_path, "name", "bottom_top_100_data.csv")).name
    tb, log = read_released(top_bottom_path, tb_name)
    require_columns(tb, ["image", *COLOUR_COLUMNS], tb_name, "Is this bottom_top_100_data.csv?")
    _check_rows(tb, expected_rows, log)
    out = pd.DataFrame({"image_id": tb["image"].astype(str).str.replace(r"\.png$", "", regex=True)})
    out["score"] = numeric_column(tb, _score_column(tb, tb_name), log, what="score", required=True).to_numpy()
    _colour_columns(tb, log, out)
    dup = duplicated_ids(out, "image_id", log)
    # The 100 highest scores are "top", the rest "bottom" (the file holds both, unlabelled).
    order = out["score"].rank(ascending=False, method="first")
    n_top = len(out) // 2
    out["group"] = np.where(order <= n_top, "top", "bottom")

    r_name = Path(getattr(ratings_path, "name", "all_face_data_matched.csv")).name
    ratings, rlog = read_released(ratings_path, r_name)
    require_columns(ratings, ["image"], r_name, "Is this all_face_data_matched.csv (or all_face_data.csv)?")
    is_extreme = ratings["image"].astype(str).str.match(r"^(top|bot)\d+\.png$")
    ext = ratings.loc[is_extreme]
    ext_score = numeric_column(ext, _score_column(ext, r_name), rlog, what="score", required=True)
    # Join by released score (identical floats written by the same script); tolerance 1e-6.
    key_tb = np.round(out["score"].to_numpy(), 6)
    lookup = {k: i for i, k in enumerate(key_tb)}
    rated_name = pd.Series(pd.NA, index=out.index, dtype=object)
    for idx, s in ext_score.items():
        j = lookup.get(np.round(s, 6)) if pd.notna(s) else None
        if j is None:
            rlog.add(rlog.line(idx), "image", ratings.loc[idx, "image"], "no FFHQ image in the top/bottom file has this score",
                     "left out of rated race")
            continue
        name = ratings.loc[idx, "image"]
        prefix = "top" if name.startswith("top") else "bottom"
        if prefix != out.loc[j, "group"]:
            rlog.add(rlog.line(idx), "image", name, f"named {prefix} but its score is in the {out.loc[j, 'group']} 100",
                     "kept with the score's group")
        rated_name.iloc[j] = name
    out["rated_name"] = rated_name
    out["valid"] = out["score"].notna() & ~dup
    joined = ext.assign(image_id=[out.loc[lookup[np.round(s, 6)], "image_id"] if pd.notna(s) and np.round(s, 6) in lookup
                                  else pd.NA for s in ext_score])
    # keep the ratings file's row labels, so that issues name the file's own lines
    joined = joined[joined["image_id"].notna()]
    numeric, race = ratings_long(joined, joined["image_id"], rlog)
    group = out.set_index("image_id")["group"]
    race["group"] = race["image"].map(group)
    numeric["group"] = numeric["image"].map(group)
    issues = pd.concat([log.finish(on_invalid), rlog.finish(on_invalid)], ignore_index=True)
    return AdapterResult({
        "top_bottom": out,
        "top_bottom_race": race.rename(columns={"image": "image_id"}),
        "top_bottom_ratings": numeric.rename(columns={"image": "image_id"}),
    }, issues)


def read_study2(path: str | Path, *, expected_rows: int | None = None, on_invalid: str = "error",
                table_prefix: str = "study2") -> AdapterResult:
    """Study 2: one row per rated scraped face, and the long ratings tables.

    Parameters
    ----------
    path : path
        ``Study2_GoogleFaces_full_unbalanced.csv`` or ``Study2_unbalanced_aggregated.csv`` (or the
        balanced subsets, same columns).
    expected_rows, on_invalid
        As in :func:`read_ffhq_scores`.
    table_prefix : str
        Names of the returned tables: ``<prefix>_images``, ``<prefix>_ratings``, ``<prefix>_race``.

    Returns
    -------
    AdapterResult
        ``<prefix>_images``: ``image, race, gender, hair, hair_prompt, cell, score, red_mean,
        green_mean, blue_mean, luminance, matches_prompt, dup, men_low_agree``, per-item
        ``<item>_mean/_sd/_n`` computed from the rater slots, ``valid``; when the file carries
        the authors' ``<Item>Mean`` columns they are kept as ``paper_<item>_mean``.
        ``<prefix>_ratings``: ``image, slot, item, value`` (+ design columns).
        ``<prefix>_race``: ``image, slot, race, race_text``.

    Examples
    --------
    >>> import tempfile
    >>> from discbias.studies.synthetic import make_synthetic_study
    >>> m = make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=3).parent.parent / "mirror"
    >>> im = read_study2(m / "study2.csv").tables["study2_images"]
    >>> int(im.groupby("cell").size().min())
    3
    """
    name = Path(getattr(path, "name", "study2.csv")).name
    df, log = read_released(path, name)
    require_columns(df, ["stim.race", "stim.gen", "hairlength", "fullstimname", *COLOUR_COLUMNS], name,
                    "Is this a Study 2 file?")
    _check_rows(df, expected_rows, log)
    out = pd.DataFrame({"image": df["fullstimname"].astype(str)})
    out["race"] = categorical_column(df, "stim.race", _RACE, log, what="race").to_numpy()
    out["gender"] = categorical_column(df, "stim.gen", _GENDER, log, what="gender").to_numpy()
    out["hair"] = categorical_column(df, "hairlength", _HAIR, log, what="hair length").to_numpy()
    prompts = []
    for idx, nm in df["fullstimname"].items():
        m = NAME_RE.match(str(nm))
        if not m:
            log.add(log.line(idx), "fullstimname", nm, "image name is not <race><m|w><l|s|b><k>.png", "hair prompt missing")
            prompts.append(pd.NA)
            continue
        r, g, h = NAME_RACE[m["race"]], NAME_GENDER[m["gen"]], NAME_HAIR[m["hair"]]
        expected_hair = "short" if h in ("short", "buzz") else "long"
        row = out.loc[idx]
        if (r, g, expected_hair) != (row["race"], row["gender"], row["hair"]) and pd.notna(row["race"]) \
                and pd.notna(row["gender"]) and pd.notna(row["hair"]):
            log.add(log.line(idx), "fullstimname", nm,
                    f"name says {r}/{g}/{h} but columns say {row['race']}/{row['gender']}/{row['hair']}",
                    "design columns kept")
        prompts.append(h)
    out["hair_prompt"] = pd.array(prompts, dtype=object)
    out["cell"] = out["race"].astype(str) + ":" + out["gender"].astype(str) + ":" + out["hair_prompt"].astype(str)
    out["score"] = numeric_column(df, _score_column(df, name), log, what="score", required=True).to_numpy()
    _colour_columns(df, log, out)
    for raw_col, col in (("matches_prompt", "matches_prompt"), ("dup", "dup"), ("men.low.agree", "men_low_agree")):
        if raw_col in df.columns:
            out[col] = df[raw_col].map({"Yes": True, "No": False}).astype(object).to_numpy()
    dup = duplicated_ids(out, "image", log)
    numeric, race = ratings_long(df, out["image"], log)
    summary = summarise_ratings(numeric, out["image"].drop_duplicates())
    out = out.join(summary, on="image")
    for item, snake in ITEM_NAMES.items():
        if f"{item}Mean" in df.columns:
            out[f"paper_{snake}_mean"] = pd.to_numeric(df[f"{item}Mean"], errors="coerce").to_numpy()
    out["valid"] = (out["score"].notna() & out[["race", "gender", "hair"]].notna().all(axis=1) & ~dup).to_numpy()
    design = out.drop_duplicates("image").set_index("image")[["race", "gender", "hair", "hair_prompt", "cell"]]
    numeric = numeric.join(design, on="image")
    return AdapterResult({
        f"{table_prefix}_images": out,
        f"{table_prefix}_ratings": numeric,
        f"{table_prefix}_race": race,
    }, log.finish(on_invalid))


_AUTHORS_RACE = {"asian": "asian", "black": "black", "white": "white"}
_AUTHORS_HAIR = {"long": "long", "short": "short"}
_FOLDER_RE = r"(?P<race>Asian|Black|White)(?:Men|Women)(?P<prompt>LongHair|ShortHair|BuzzCut|Locs)"
_FOLDER_PROMPT = {"LongHair": "long", "ShortHair": "short", "BuzzCut": "buzz", "Locs": "locs"}
_FOLDER_HAIR = {"LongHair": "long", "ShortHair": "short", "BuzzCut": "short", "Locs": "long"}
AUTHORS_FACE_COLUMNS = ("discriminator_score", "image", "race", "hair_length", "red_mean", "green_mean",
                        "blue_mean", "luminance")


def read_authors_faces(path: str | Path, *, expected_rows: int | None = None, on_invalid: str = "error",
                       table: str = "authors_faces") -> AdapterResult:
    """The scraped faces before rating: ``AtypicalFaceData.csv`` (men) or ``WomenFaceData.csv``.

    These are the files the authors' ``AtypicalFacePlotCode.R`` and ``woman_atypical_dist_plot.R``
    fit their ``lm()`` models on. Labels are kept as the authors' files write them (``race``
    ``asian`` / ``black`` / ``white``, ``hair_length`` ``long`` / ``short``; for women ``short``
    is the buzz-cut prompt, visible in the image path) so that a model fitted on them names its
    coefficients as R does (``raceblack``).

    Parameters
    ----------
    path : path
        The CSV (columns: an unnamed pandas index, ``discriminator_score``, ``image``, ``race``,
        ``hair_length``, ``red_mean``, ``green_mean``, ``blue_mean``, ``luminance``; any order).
    expected_rows, on_invalid
        As in :func:`read_ffhq_scores`.
    table : str
        Name of the returned table.

    Returns
    -------
    AdapterResult
        ``tables[table]``: ``line`` (CSV line), ``image``, ``race``, ``hair_length``, ``score``,
        ``red_mean``, ``green_mean``, ``blue_mean``, ``luminance`` (the released column: mean of
        gamma-encoded Rec. 709 luma on 0-1, not linear luminance), ``hair_prompt`` (the scrape folder
        in the image path: long, short, buzz or locs; missing when the path does not say; the
        authors' ``hair_length`` merges buzz into short and locs into long, and a folder that
        disagrees with the columns is an issue) and ``valid``.
        Unknown labels, non-numeric or out-of-range values and duplicate images are issues
        (rows kept, value missing, ``valid`` False).

    Examples
    --------
    >>> import io
    >>> csv = io.StringIO(",discriminator_score,image,race,hair_length,red_mean,green_mean,blue_mean,luminance\\n"
    ...                   "0,150.5,x/AsianWomenBuzzCutCropped/1.png,asian,short,120,110,100,0.45\\n")
    >>> t = read_authors_faces(csv).tables["authors_faces"]
    >>> t[["race", "hair_length", "hair_prompt", "valid"]].values.tolist()
    [['asian', 'short', 'buzz', True]]
    """
    name = Path(getattr(path, "name", "AtypicalFaceData.csv")).name
    df, log = read_released(path, name)
    require_columns(df, list(AUTHORS_FACE_COLUMNS), name, "Is this AtypicalFaceData.csv or WomenFaceData.csv?")
    _check_rows(df, expected_rows, log)
    out = pd.DataFrame({"line": [log.line(i) for i in range(len(df))], "image": df["image"].astype(str)})
    out["race"] = categorical_column(df, "race", _AUTHORS_RACE, log, what="race").to_numpy()
    out["hair_length"] = categorical_column(df, "hair_length", _AUTHORS_HAIR, log, what="hair length").to_numpy()
    out["score"] = numeric_column(df, "discriminator_score", log, what="score", required=True).to_numpy()
    for c in ("red_mean", "green_mean", "blue_mean"):
        out[c] = numeric_column(df, c, log, what="channel mean", low=0, high=255).to_numpy()
    out["luminance"] = numeric_column(df, "luminance", log, what="luminance", low=0, high=1).to_numpy()
    folder = out["image"].str.extract(_FOLDER_RE)
    out["hair_prompt"] = folder["prompt"].map(_FOLDER_PROMPT).astype(object).to_numpy()
    out.loc[out["hair_prompt"].isna(), "hair_prompt"] = None
    for idx in folder.index[folder["race"].notna()]:
        r, p = folder.loc[idx, "race"].lower(), _FOLDER_HAIR[folder.loc[idx, "prompt"]]
        if pd.notna(out.loc[idx, "race"]) and pd.notna(out.loc[idx, "hair_length"]) \
                and (r, p) != (out.loc[idx, "race"], out.loc[idx, "hair_length"]):
            log.add(log.line(idx), "image", out.loc[idx, "image"],
                    f"folder says {r}/{p} but columns say {out.loc[idx, 'race']}/{out.loc[idx, 'hair_length']}",
                    "columns kept")
    dup = duplicated_ids(out, "image", log)
    need = ["race", "hair_length", "score", "luminance"]
    out["valid"] = (out[need].notna().all(axis=1) & ~dup).to_numpy()
    return AdapterResult({table: out}, log.finish(on_invalid))
