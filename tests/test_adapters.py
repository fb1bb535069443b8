"""Adapters on small synthetic tables in the released schema (one test per correction/check)."""

import io

import numpy as np
import pandas as pd
import pytest

from discbias.studies.grissom2024 import read_ffhq_scores, read_study2, read_top_bottom, summarise_ratings
from discbias.studies.validation import CsvFormatError, DataValidationError


def _csv(text, name):
    buf = io.StringIO(text)
    buf.name = name
    return buf


def test_ffhq_luminance_column_becomes_blue_mean():
    r = read_ffhq_scores(_csv(",image_id,scores,luminance\n0,00001.png,150.5,80.25\n1,00002.png,99,12\n", "R.csv"))
    t = r.tables["ffhq_scores"]
    assert "luminance" not in t.columns
    assert t["blue_mean"].tolist() == [80.25, 12.0]
    assert t["image_id"].tolist() == ["00001", "00002"]
    assert t["score"].tolist() == [150.5, 99.0]


def test_ffhq_non_numeric_score_is_reported_with_file_and_line():
    text = ",image_id,scores,luminance\n0,00001.png,150.5,80\n1,00002.png,oops,12\n"
    with pytest.raises(DataValidationError) as err:
        read_ffhq_scores(_csv(text, "R.csv"))
    assert "R.csv line 3, column 'scores'" in str(err.value)
    r = read_ffhq_scores(_csv(text, "R.csv"), on_invalid="report")
    t = r.tables["ffhq_scores"]
    assert len(t) == 2  # never dropped
    assert not t.loc[1, "valid"] and np.isnan(t.loc[1, "score"])
    assert r.issues.iloc[0][["file", "line", "column", "value"]].tolist() == ["R.csv", 3, "scores", "oops"]


def test_ffhq_duplicate_ids_are_flagged_not_dropped():
    text = ",image_id,scores,luminance\n0,00001.png,1,2\n1,00001.png,3,4\n2,00003.png,5,6\n"
    r = read_ffhq_scores(_csv(text, "R.csv"), on_invalid="report")
    assert r.tables["ffhq_scores"]["valid"].tolist() == [False, False, True]
    assert set(r.issues["line"]) == {2, 3}


def test_row_count_mismatch_is_reported():
    r = read_ffhq_scores(_csv(",image_id,scores,luminance\n0,00001.png,1,2\n", "R.csv"), expected_rows=70000,
                         on_invalid="report")
    assert "expected 70000 data rows, found 1" in r.issues["problem"].iloc[0]


def _top_bottom_files(score="10.5"):
    """The two Study 1 extreme files; ``score`` is the first image's released score."""
    tb = ("discriminator_score,image,red_mean,green_mean,blue_mean,luminance\n"
          f"{score},00010.png,10,10,10,0.1\n200.25,00020.png,200,150,100,0.6\n"
          "20.75,00030.png,20,20,20,0.2\n190.125,00040.png,190,140,90,0.55\n")
    rated = ("image,matches_prompt,discriminator_Score,red_mean,green_mean,blue_mean,luminance,"
             "Skintone 1,Race 1,RaceTextbox 1,Hair 1,Skintone 2,Race 2,RaceTextbox 2,Hair 2\n"
             "top1.png,Yes,190.125,190,140,90,0.55,2,White,,3,1,Asian,,4\n"
             "top2.png,Yes,200.25,200,150,100,0.6,1,White,,2,,,,\n"
             "bot1.png,Yes,20.75,20,20,20,0.2,6,Black or African-American,,5,7,Black or African-American,,2\n"
             "bot2.png,Yes,10.5,10,10,10,0.1,5,White,,1,9,Martian,,3\n"
             "aml1.png,Yes,150,1,1,1,0.1,1,White,,1,1,White,,1\n")
    return _csv(tb, "bottom_top_100_data.csv"), _csv(rated, "all_face_data_matched.csv")


def test_top_bottom_join_by_score_and_bot_prefix():
    tb, rated = _top_bottom_files()
    r = read_top_bottom(tb, rated, on_invalid="report")
    t = r.tables["top_bottom"].set_index("image_id")
    # top<k> numbering is not the rank: joined by score, not by k
    assert t.loc["00040", "rated_name"] == "top1.png" and t.loc["00020", "rated_name"] == "top2.png"
    assert t.loc["00010", "rated_name"] == "bot2.png" and t.loc["00010", "group"] == "bottom"
    race = r.tables["top_bottom_race"]
    assert set(race["image_id"]) == {"00010", "00020", "00030", "00040"}  # the aml row is not an extreme
    assert (race.loc[race["image_id"] == "00030", "race"] == "Black or African-American").all()
    # out-of-range rating (9) and unknown race ("Martian") are reported by file and line, not kept
    problems = r.issues.set_index("value")
    assert problems.loc["9", "line"] == 5 and "outside 1-7" in problems.loc["9", "problem"]
    assert problems.loc["Martian", "file"] == "all_face_data_matched.csv"
    ratings = r.tables["top_bottom_ratings"]
    assert not ((ratings["image_id"] == "00010") & (ratings["item"] == "skintone") & (ratings["slot"] == 2)).any()


def _study2_csv(extra_row=""):
    head = (",X,stim.race,stim.gen,hairlength,stim.num,fullstimname,men.low.agree,dup,matches_prompt,"
            "discriminator_score,red_mean,green_mean,blue_mean,luminance,Skintone_1,Race.1,RaceTextbox.1,Hair_1,"
            "Skintone_2,Race.2,RaceTextbox.2,Hair_2\n")
    rows = ("1,1,Black,men,long,1.png,bml1.png,No,No,Yes,120.5,100,90,80,0.4,6,Black or African-American,,6,7,"
            "Black or African-American,,5\n"
            "2,2,White,women,short,3.png,wwb3.png,No,No,Yes,170,180,160,150,0.65,1,White,,1,2,White,,2\n"
            "3,3,Asian,women,long,4.png,awl4.png,No,No,Yes,165,170,150,140,0.6,2,Asian,,7,,,,\n")
    return head + rows + extra_row


def test_study2_wide_and_long_with_hair_prompt_from_name():
    r = read_study2(_csv(_study2_csv(), "Study2.csv"))
    im = r.tables["study2_images"].set_index("image")
    assert im.loc["wwb3.png", "hair"] == "short" and im.loc["wwb3.png", "hair_prompt"] == "buzz"
    assert im.loc["bml1.png", "cell"] == "Black:men:long"
    assert im.loc["bml1.png", "skintone_mean"] == 6.5 and im.loc["bml1.png", "skintone_n"] == 2
    assert im.loc["awl4.png", "hair_length_n"] == 1 and np.isnan(im.loc["awl4.png", "hair_length_sd"])
    assert im.loc["bml1.png", "matches_prompt"] is True or im.loc["bml1.png", "matches_prompt"] == True  # noqa: E712
    long = r.tables["study2_ratings"]
    assert len(long) == 2 * 2 + 2 * 2 + 2  # image x slot x item with a rating
    assert set(long.columns) >= {"image", "slot", "item", "value", "race", "gender", "hair", "cell"}


def test_study2_unknown_category_and_name_mismatch_reported():
    bad = "4,4,Martian,men,long,9.png,wml9.png,No,No,Yes,150,100,100,100,0.4,3,White,,3,,,,\n"
    with pytest.raises(DataValidationError, match="line 5, column 'stim.race'"):
        read_study2(_csv(_study2_csv(bad), "Study2.csv"))
    r = read_study2(_csv(_study2_csv(bad), "Study2.csv"), on_invalid="report")
    im = r.tables["study2_images"]
    assert len(im) == 4 and not im["valid"].iloc[3]
    mismatch = "5,5,White,men,short,9.png,bml9.png,No,No,Yes,150,100,100,100,0.4,3,White,,3,,,,\n"
    r = read_study2(_csv(_study2_csv(mismatch), "Study2.csv"), on_invalid="report")
    assert r.issues["problem"].str.contains("name says Black/men/long").any()


def test_study2_missing_columns_is_a_clear_error():
    with pytest.raises(CsvFormatError, match=r"x\.csv line 1: missing column\(s\)"):
        read_study2(_csv("a,b\n1,2\n", "x.csv"))


def test_summarise_ratings_keeps_every_image():
    long = pd.DataFrame({"image": ["a", "a", "b"], "slot": [1, 2, 1], "item": ["skintone"] * 3, "value": [1.0, 3.0, 5.0]})
    s = summarise_ratings(long, ["a", "b", "c"])
    assert s.loc["a", "skintone_mean"] == 2.0 and s.loc["c", "skintone_n"] == 0


@pytest.mark.integration
def test_real_files(real_mirror):
    s1 = read_ffhq_scores(real_mirror / "RGB_format_images_data.csv", expected_rows=70000)
    t = s1.tables["ffhq_scores"]
    assert len(t) == 70000 and t["valid"].all() and s1.issues.empty
    tb = read_top_bottom(real_mirror / "bottom_top_100_data.csv", real_mirror / "all_face_data_matched.csv",
                         expected_rows=200)
    top = tb.tables["top_bottom"]
    assert top["rated_name"].notna().all()  # all 200 extremes joined by score
    assert (top["group"] == "top").sum() == 100
    # The 70k file's "luminance" is the blue-channel mean: equal to blue_mean for the same images
    j = top.merge(t, on="image_id", suffixes=("", "_70k"))
    assert len(j) == 200
    assert np.allclose(j["blue_mean"], j["blue_mean_70k"], atol=1e-3)
    assert np.allclose(j["score"], j["score_70k"], atol=1e-6)
    agg = read_study2(real_mirror / "Study2_unbalanced_aggregated.csv", expected_rows=1042)
    im = agg.tables["study2_images"]
    assert len(im) == 1042 and agg.issues.empty
    for item in ("skintone", "hair_length", "femininity", "masculinity"):
        assert np.allclose(im[f"{item}_mean"], im[f"paper_{item}_mean"], equal_nan=True)
    assert im.groupby(["race", "gender", "hair"]).size().min() >= 50
