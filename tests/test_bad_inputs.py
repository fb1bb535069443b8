"""Bad inputs (issue 10): each one is listed by file and line, or stops with one clear error.

Every test here failed on the code before the fix: non-finite and missing scores passed as valid
or were dropped silently, look-alike rater columns were read as raters, ragged rows and
unterminated quotes were tracebacks (or silently padded), blank lines shifted line numbers, a
changed raw file did not stop ``measure``, and a missing ``luminance`` column only failed in fit.
"""

import io
import os

import numpy as np
import pandas as pd
import pytest

from discbias.cli import main
from discbias.config import load_config
from discbias.fetch import ChecksumError
from discbias.paths import project_paths
from discbias.pipeline import run_fetch, run_measure
from discbias.studies.grissom2024 import read_ffhq_scores, read_study2, read_top_bottom
from discbias.studies.validation import CsvFormatError, DataValidationError
from test_adapters import _top_bottom_files


def _csv(text, name):
    buf = io.StringIO(text)
    buf.name = name
    return buf


FFHQ_HEAD = ",image_id,scores,luminance\n"


# --------------------------------------------------------------------------- non-finite, missing
@pytest.mark.parametrize("bad", ["inf", "-inf", "1e309", "Infinity"])
def test_non_finite_score_is_an_issue(bad):
    text = FFHQ_HEAD + "0,00001.png,150.5,80\n" + f"1,00002.png,{bad},12\n" + "2,00003.png,99,12\n"
    with pytest.raises(DataValidationError, match="R.csv line 3, column 'scores'"):
        read_ffhq_scores(_csv(text, "R.csv"))
    r = read_ffhq_scores(_csv(text, "R.csv"), on_invalid="report")
    t = r.tables["ffhq_scores"]
    assert t["valid"].tolist() == [True, False, True]
    assert np.isfinite(t.loc[t["valid"], "score"]).all() and np.isnan(t.loc[1, "score"])
    issue = r.issues.iloc[0]
    assert (issue["line"], issue["column"], issue["value"]) == (3, "scores", bad)
    assert "not finite" in issue["problem"]


@pytest.mark.parametrize("bad", ["NaN", "NA", ""])
def test_missing_score_is_listed_not_silently_invalid(bad):
    text = FFHQ_HEAD + "0,00001.png,150.5,80\n" + f"1,00002.png,{bad},12\n"
    with pytest.raises(DataValidationError, match="line 3, column 'scores'"):
        read_ffhq_scores(_csv(text, "R.csv"))
    r = read_ffhq_scores(_csv(text, "R.csv"), on_invalid="report")
    assert r.tables["ffhq_scores"]["valid"].tolist() == [True, False]
    assert r.issues[["line", "column"]].values.tolist() == [[3, "scores"]]
    assert "missing score" in r.issues["problem"].iloc[0]


def test_non_finite_score_in_study2_and_top_bottom_files():
    r = read_study2(_csv(_study2_csv(score="1e309"), "Study2.csv"), on_invalid="report")
    assert not r.tables["study2_images"]["valid"].iloc[0]
    assert r.issues[["line", "column"]].values.tolist() == [[2, "discriminator_score"]]
    tb, rated = _top_bottom_files(score="-inf")
    r = read_top_bottom(tb, rated, on_invalid="report")
    assert ((r.issues["file"] == "bottom_top_100_data.csv") & (r.issues["line"] == 2)).any()
    assert not r.tables["top_bottom"]["valid"].iloc[0]


# --------------------------------------------------------------------------- look-alike slots
def _study2_csv(extra_row="", score="120.5", extra_col="", extra_val="", luminance=True):
    lum_h, lum = (",luminance", ",0.4") if luminance else ("", "")
    head = (",X,stim.race,stim.gen,hairlength,stim.num,fullstimname,men.low.agree,dup,matches_prompt,"
            f"discriminator_score,red_mean,green_mean,blue_mean{lum_h},Skintone_1,Race.1,RaceTextbox.1,Hair_1,"
            f"Skintone_2,Race.2,RaceTextbox.2,Hair_2{extra_col}\n")
    rows = (f"1,1,Black,men,long,1.png,bml1.png,No,No,Yes,{score},100,90,80{lum},6,Black or African-American,,6,7,"
            f"Black or African-American,,5{extra_val}\n"
            f"2,2,White,women,short,3.png,wwb3.png,No,No,Yes,170,180,160,150{lum},1,White,,1,2,White,,2{extra_val}\n")
    return head + rows + extra_row


def test_lookalike_rater_column_is_not_a_rater():
    r = read_study2(_csv(_study2_csv(extra_col=",Hair_99,Skintone_3", extra_val=",4,3"), "Study2.csv"),
                    on_invalid="report")
    long = r.tables["study2_ratings"]
    assert set(long["slot"]) == {1, 2}
    im = r.tables["study2_images"].set_index("image")
    assert im.loc["bml1.png", "hair_length_n"] == 2 and im.loc["bml1.png", "skintone_n"] == 2
    ignored = r.issues[r.issues["line"] == 1]
    assert set(ignored["column"]) == {"Hair_99", "Skintone_3"}
    assert ignored["problem"].str.contains("rater slots are 1-2").all()
    with pytest.raises(DataValidationError, match="Hair_99"):
        read_study2(_csv(_study2_csv(extra_col=",Hair_99", extra_val=",4"), "Study2.csv"))


# --------------------------------------------------------------------------- malformed files
def test_ragged_long_row_names_file_and_line():
    bad = "3,3,Asian,women,long,4.png,awl4.png,No,No,Yes,165,170,150,140,0.6,2,Asian,,7,,,,,EXTRA\n"
    with pytest.raises(CsvFormatError, match=r"Study2\.csv line 4: 24 fields, the header has 23") as err:
        read_study2(_csv(_study2_csv(bad), "Study2.csv"))
    assert err.value.file == "Study2.csv" and err.value.line == 4


def test_short_row_names_file_and_line():
    with pytest.raises(CsvFormatError, match=r"R\.csv line 3: 3 fields, the header has 4"):
        read_ffhq_scores(_csv(FFHQ_HEAD + "0,00001.png,150.5,80\n1,00002.png,12\n", "R.csv"))


def test_unterminated_quote_names_the_line_where_it_opens():
    text = FFHQ_HEAD + "0,00001.png,150.5,80\n1,\"00002.png,12,3\n2,00003.png,1,2\n"
    with pytest.raises(CsvFormatError, match=r"R\.csv line 3: unterminated quote") as err:
        read_ffhq_scores(_csv(text, "R.csv"))
    assert err.value.line == 3


def test_missing_image_column_names_the_file():
    tb, rated = _top_bottom_files()
    no_image = _csv(tb.getvalue().replace("image,", "img,", 1), "bottom_top_100_data.csv")
    with pytest.raises(CsvFormatError, match=r"bottom_top_100_data\.csv line 1: missing column\(s\) \['image'\]"):
        read_top_bottom(no_image, rated)
    tb, rated = _top_bottom_files()
    with pytest.raises(CsvFormatError, match=r"all_face_data_matched\.csv line 1: missing column\(s\) \['image'\]"):
        read_top_bottom(tb, _csv(rated.getvalue().replace("image,", "name,", 1), "all_face_data_matched.csv"))


def test_missing_luminance_is_reported_by_the_adapter():
    with pytest.raises(CsvFormatError, match=r"Study2\.csv line 1: missing column\(s\) \['luminance'\]"):
        read_study2(_csv(_study2_csv(luminance=False), "Study2.csv"))
    tb, rated = _top_bottom_files()
    cut = "\n".join(",".join(line.split(",")[:-1]) for line in tb.getvalue().splitlines()) + "\n"
    with pytest.raises(CsvFormatError, match=r"bottom_top_100_data\.csv line 1: .*'luminance'"):
        read_top_bottom(_csv(cut, "bottom_top_100_data.csv"), rated)


def test_blank_lines_do_not_shift_line_numbers():
    text = FFHQ_HEAD + "0,00001.png,150.5,80\n\n\n1,00002.png,oops,12\n"
    r = read_ffhq_scores(_csv(text, "R.csv"), on_invalid="report")
    assert r.issues["line"].tolist() == [5]
    assert len(r.tables["ffhq_scores"]) == 2
    # a quoted field spanning two lines: the next record's line is the physical one
    text = FFHQ_HEAD + '0,"00001\n.png",150.5,80\n1,00002.png,oops,12\n'
    assert read_ffhq_scores(_csv(text, "R.csv"), on_invalid="report").issues["line"].tolist() == [4]


def test_rating_issue_lines_are_the_ratings_files_lines():
    # The extremes are not the first rows of the ratings file: the line must still be right.
    tb, rated = _top_bottom_files()
    lines = rated.getvalue().splitlines()
    reordered = "\n".join([lines[0], lines[5], lines[1], lines[2], lines[3], lines[4]]) + "\n"
    r = read_top_bottom(tb, _csv(reordered, "all_face_data_matched.csv"), on_invalid="report")
    problems = r.issues.set_index("value")
    assert problems.loc["9", "line"] == 6 and problems.loc["Martian", "line"] == 6


# --------------------------------------------------------------------------- through the pipeline
@pytest.fixture()
def small_study(tmp_path, monkeypatch):
    from discbias.studies.synthetic import make_synthetic_study

    cfg = make_synthetic_study(tmp_path, n_ffhq=300, n_per_cell=3)
    monkeypatch.setenv("DISCBIAS_DATA_MIRROR", str(tmp_path / "mirror"))
    return cfg


def _replace_raw(path, text):
    os.chmod(path, 0o644)
    path.write_text(text)


def test_changed_raw_file_stops_measure(small_study, capsys):
    root = small_study.parent.parent
    config, paths = load_config(small_study), project_paths(root)
    run_fetch(config, paths, allow_download=False)
    raw = paths.raw / "study2.csv"
    expected = config.sources["study2_unbalanced"].sha256
    _replace_raw(raw, raw.read_text().replace("Black", "White", 1))
    with pytest.raises(ChecksumError) as err:
        run_measure(config, paths)
    msg = str(err.value)
    assert "study2.csv" in msg and expected in msg and "discbias fetch" in msg
    assert not (paths.measures / "study2_images.parquet").exists()
    assert main(["measure", "--config", str(small_study), "--root", str(root)]) == 2
    err_text = capsys.readouterr().err
    assert "study2.csv" in err_text and "Traceback" not in err_text


def _with_raw_file(cfg_path, source, new_text):
    """Rewrite a synthetic study's mirror file and its configured sha256 (a *consistent* bad file)."""
    import hashlib

    root = cfg_path.parent.parent
    config = load_config(cfg_path)
    src = config.sources[source]
    path = root / "mirror" / src.file
    path.write_text(new_text)
    new = hashlib.sha256(path.read_bytes()).hexdigest()
    cfg_path.write_text(cfg_path.read_text().replace(src.sha256, new))


def test_ragged_raw_file_is_one_cli_error_line(small_study, capsys):
    root = small_study.parent.parent
    text = (root / "mirror" / "study2.csv").read_text().splitlines()
    text[3] += ",EXTRA"
    _with_raw_file(small_study, "study2_unbalanced", "\n".join(text) + "\n")
    args = ["--config", str(small_study), "--root", str(root)]
    assert main(["fetch", *args]) == 0
    capsys.readouterr()
    assert main(["measure", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[discbias]")]
    assert len(err) == 1 and "study2.csv line 4: " in err[0] and err[0].startswith("discbias measure: error:")


def test_missing_luminance_stops_measure_not_fit(small_study, capsys):
    root = small_study.parent.parent
    df = pd.read_csv(root / "mirror" / "study2.csv", dtype=str, keep_default_na=False)
    _with_raw_file(small_study, "study2_unbalanced", df.drop(columns="luminance").to_csv(index=False))
    args = ["--config", str(small_study), "--root", str(root)]
    assert main(["fetch", *args]) == 0
    capsys.readouterr()
    assert main(["measure", *args]) == 2
    err = capsys.readouterr().err
    assert "study2.csv" in err and "luminance" in err and "Traceback" not in err


def test_json_tree_archive_is_checked_by_content_at_measure(small_study):
    """A repacked face-attribute archive (other bytes, same files) passes; a changed member stops
    measure; the memo does not hide a later change."""
    import io as _io
    import tarfile

    from discbias.fetch import pack_tree
    from discbias.pipeline import RawFileChangedError, verify_raw

    root = small_study.parent.parent
    config, paths = load_config(small_study), project_paths(root)
    run_fetch(config, paths, allow_download=False)
    raw = paths.raw / config.sources["ffhq_features"].file
    repacked = root / "repacked.tar.gz"
    pack_tree(raw, repacked)
    os.chmod(raw, 0o644)
    os.replace(repacked, raw)
    assert verify_raw(config, paths)["ffhq_features"] != config.sources["ffhq_features"].sha256
    assert verify_raw(config, paths)  # second call: from the memo
    with tarfile.open(raw, "w:gz") as tf:  # same name, other files (one changed member, the rest gone)
        data = b'[{"faceAttributes": {}}]'
        info = tarfile.TarInfo("json/00000.json")
        info.size = len(data)
        tf.addfile(info, _io.BytesIO(data))
    with pytest.raises(RawFileChangedError, match="content digest"):
        verify_raw(config, paths)
