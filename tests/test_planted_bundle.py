"""`discbias bundle` and `discbias verify` on a tiny planted-bias study: the bundle carries the
results (the checkpoints' sha256 in training.csv, not the networks), a rebuild in a fresh folder
matches it cell for cell (exit 0), a changed number is named (exit 1) and a tampered file is
refused (exit 2)."""

from __future__ import annotations

import hashlib
import textwrap
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from discbias.cli import main

REPO = Path(__file__).resolve().parents[1]

TINY = """
[planted]
id = "tinyb"
title = "Planted-bias validation (bundle test)"
resolution = 16
seeds = 2
n_train = 64
steps = 8
batch_size = 8
n_heldout = 20
n_probe_bases = 3
threads = 1

[planted.network]
channel_base = 64
channel_max = 8

[[planted.conditions]]
id = "unplanted"

[[planted.conditions]]
id = "lum-1.5"
luminance_shift = 1.5
"""


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    from discbias.planted.parallel import shutdown_pool

    mp = pytest.MonkeyPatch()
    mp.setenv("DISCBIAS_TEMPLATES", str(REPO / "report"))
    mp.delenv("DISCBIAS_CACHE_DIR", raising=False)
    root = tmp_path_factory.mktemp("planted-bundle")
    cfg = root / "analysis" / "tinyb.toml"
    cfg.parent.mkdir()
    cfg.write_text(textwrap.dedent(TINY))
    try:
        assert main(["report", "--config", str(cfg), "--root", str(root)]) == 0
        assert main(["bundle", "--config", str(cfg), "--root", str(root)]) == 0
        zips = list((root / "build" / "bundle").glob("tinyb-*.zip"))
        assert len(zips) == 1
        yield root, cfg, zips[0], mp
    finally:
        shutdown_pool()
        mp.undo()


def _rewrite(src: Path, dst: Path, name: str, edit) -> None:
    """Copy a bundle changing one file, with the manifest updated (a bundle whose numbers differ) or not."""
    with zipfile.ZipFile(src) as zin:
        files = {i.filename: zin.read(i) for i in zin.infolist()}
    files[name] = edit(files[name])
    if edit.__name__ != "tamper":
        lines = []
        for line in files["manifest-sha256.txt"].decode().splitlines():
            h, rel = line.split("  ", 1)
            lines.append(f"{hashlib.sha256(files[rel]).hexdigest() if rel == name else h}  {rel}")
        files["manifest-sha256.txt"] = ("\n".join(lines) + "\n").encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for rel, data in files.items():
            zout.writestr(rel, data)


@pytest.mark.slow  # builds a 2 x 2 planted study (PDF included), bundles it and rebuilds it: about 1-2 min
def test_planted_bundle_and_verify(bundled, capsys, tmp_path):
    from discbias.reproduce import read_bundle

    root, cfg, zp, _ = bundled
    b = read_bundle(zp)
    names = set(b.files)
    assert {"results/operating.csv", "results/detections.csv", "results/training.csv", "results/training_log.csv",
            "values.json", "report/paper.html", "report/paper.pdf", "config/tinyb.toml"} <= names
    assert not any(n.endswith(".pkl") for n in names)  # the networks are not carried; their sha256 are
    training = b.tables()["training"]
    assert training["sha256"].str.fullmatch(r"[0-9a-f]{64}").all() and len(training) == 4

    # a rebuild from scratch in another folder: every cell matches (the checkpoints' sha256 included)
    out = tmp_path / "verify"
    code = main(["verify", str(zp), "--config", str(cfg), "--root", str(root), "--rebuild",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = pd.read_csv(out / "tables.csv")
    assert summary["differing"].sum() == 0 and summary["compared"].sum() > 50
    assert set(summary["table"]) >= {"operating", "detections", "training", "training_log", "values.json"}
    rebuild = root / "build" / "tinyb" / "verify" / "rebuild" / "build" / "tinyb"
    rebuilt = pd.read_csv(rebuild / "results" / "training.csv")
    assert rebuilt["sha256"].tolist() == training["sha256"].tolist()

    # one number of the bundle changed (manifest updated): exit 1, the cell named
    det = b.tables()["detections"]
    row = det.index[(det["detector"] == "luminance") & (det["condition"] == "lum-1.5") & (det["seed"] == 1)][0]

    def change(data: bytes) -> bytes:
        t = pd.read_csv(pd.io.common.BytesIO(data))
        t.loc[row, "estimate"] = t.loc[row, "estimate"] + 0.01
        return t.to_csv(index=False).encode()

    changed = tmp_path / "changed.zip"
    _rewrite(zp, changed, "results/detections.csv", change)
    out2 = tmp_path / "verify2"
    code = main(["verify", str(changed), "--config", str(cfg), "--root", str(root),
                 "--build", str(rebuild), "--out", str(out2)])
    err = capsys.readouterr().err
    assert code == 1
    diffs = pd.read_csv(out2 / "differences.csv")
    assert diffs[["table", "column"]].values.tolist() == [["detections", "estimate"]]
    assert "lum-1.5" in diffs.loc[0, "key"] and "luminance" in diffs.loc[0, "key"] and "1" in diffs.loc[0, "key"]
    assert "detections" in err and "estimate" in err

    # the same change without the manifest updated: a tampered bundle, exit 2, the file named
    def tamper(data: bytes) -> bytes:
        return change(data)

    tampered = tmp_path / "tampered.zip"
    _rewrite(zp, tampered, "results/detections.csv", tamper)
    code = main(["verify", str(tampered), "--config", str(cfg), "--root", str(root)])
    assert code == 2 and "results/detections.csv was modified" in capsys.readouterr().err
