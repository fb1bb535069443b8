"""Bad input: every case is either converted by a documented rule or recorded as a failure."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from discbias.cli import main
from discbias.scoring import ScoreCache, discover
from discbias.scoring.images import ImageError, decode_rgb
from discbias.scoring.sources import SourceError, parse_shard, shard
from discbias.scoring.testing import make_images, random_image, save_random_discriminator

RNG = np.random.default_rng(0)


def _png(img, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def _jpeg(img, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _rgb(w=40, h=32):
    return Image.fromarray(random_image(RNG, (w, h)))


def test_cmyk_is_converted():
    arr, notes = decode_rgb(_jpeg(Image.new("CMYK", (40, 40), (0, 255, 255, 0))))
    assert notes == ["cmyk->rgb"] and arr.shape == (40, 40, 3)
    assert arr[..., 0].mean() > 200 and arr[..., 1].mean() < 40  # pure red


def test_palette_is_expanded():
    pal = _rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    arr, notes = decode_rgb(_png(pal))
    assert notes == ["palette->rgb"] and arr.shape == (32, 40, 3)
    np.testing.assert_array_equal(arr, np.asarray(pal.convert("RGB")))


def test_palette_with_transparency_is_composited_over_white():
    pal = Image.new("P", (40, 40), 0)
    pal.putpalette([10, 20, 30] * 256)
    arr, notes = decode_rgb(_png(pal, transparency=0))
    assert notes == ["palette->rgb", "alpha-over-white"] and (arr == 255).all()


def test_16bit_grayscale_is_scaled_to_8bit():
    a16 = np.full((40, 40), 257 * 100, np.uint16)
    a16[0, 0] = 65535
    arr, notes = decode_rgb(_png(Image.fromarray(a16)))
    assert notes == ["16bit->8bit", "gray->rgb"]
    assert arr[1, 1].tolist() == [100, 100, 100] and arr[0, 0].tolist() == [255, 255, 255]


def test_grayscale_is_replicated():
    arr, notes = decode_rgb(_png(Image.new("L", (40, 40), 77)))
    assert notes == ["gray->rgb"] and (arr == 77).all()


def test_rgba_is_composited_over_white():
    a = np.zeros((40, 40, 4), np.uint8)
    a[..., 0] = 255
    a[:20, :, 3] = 255  # top half opaque red, bottom half transparent
    arr, notes = decode_rgb(_png(Image.fromarray(a, "RGBA")))
    assert notes == ["alpha-over-white"]
    assert arr[0, 0].tolist() == [255, 0, 0] and arr[-1, -1].tolist() == [255, 255, 255]


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (60, 40), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 30, 40))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90 degrees clockwise
    arr, notes = decode_rgb(_jpeg(img, exif=exif.tobytes(), quality=100))
    assert notes == ["exif-transpose"] and arr.shape == (60, 40, 3)  # upright: 40 wide, 60 high
    assert arr[:25].mean() > 200 and arr[-25:].mean() < 50  # the white half is now on top


@pytest.mark.parametrize("data,reason", [
    (b"", "empty file"),
    (b"this is a text file, not an image\n" * 10, "not a readable image"),
    (None, "corrupt or truncated"),
    (b"\x89PNG\r\n\x1a\n" + bytes(RNG.integers(0, 256, 500, dtype=np.uint8)), "corrupt or truncated|not a readable"),
])
def test_unreadable_files_raise_with_reason(data, reason):
    if data is None:  # truncated: the first half of a valid PNG
        full = _png(_rgb(64, 64))
        data = full[: len(full) // 2]
    with pytest.raises(ImageError, match=reason):
        decode_rgb(data)


def test_tiny_and_float_images_are_rejected():
    with pytest.raises(ImageError, match="too small: 8x6 pixels"):
        decode_rgb(_png(Image.new("RGB", (8, 6))))
    buf = io.BytesIO()
    Image.fromarray(np.zeros((40, 40), np.float32)).save(buf, "TIFF")
    with pytest.raises(ImageError, match="floating-point"):
        decode_rgb(buf.getvalue())


def test_run_goes_on_records_failures_and_keeps_earlier_scores(tmp_path, capsys):
    w = save_random_discriminator(tmp_path / "D.pt", 16)
    src = tmp_path / "img"
    make_images(src, 4, size=(40, 40))
    cache = tmp_path / "cache"
    args = ["score", str(src), "--weights", str(w), "--cache-dir", str(cache), "--min-side", "16", "--workers", "0",
            "--batch-size", "3", "--no-progress", "--json"]
    assert main(args) == 0
    good = _rgb()
    files = {
        "zero.png": b"", "text.jpg": b"hello\n", "trunc.png": _png(_rgb(64, 64))[:300],
        "cmyk.jpg": _jpeg(Image.new("CMYK", (40, 40), (10, 200, 30, 5))),
        "pal.png": _png(good.convert("P")), "gray16.png": _png(Image.fromarray(np.full((40, 40), 30000, np.uint16))),
        "gray.png": _png(good.convert("L")), "rgba.png": _png(good.convert("RGBA")),
        "exif.jpg": _jpeg(good, exif=_exif6()), "tiny.png": _png(Image.new("RGB", (4, 4))),
    }
    for name, data in files.items():
        (src / name).write_bytes(data)
    capsys.readouterr()
    rc = main(args + ["--out", str(tmp_path / "out.csv")])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 3  # some inputs failed
    assert (summary["scored"], summary["from_cache"], summary["failed"]) == (6, 4, 4)
    fail = ScoreCache(cache).failures().set_index("image")["reason"]
    assert sorted(fail.index) == ["text.jpg", "tiny.png", "trunc.png", "zero.png"]
    assert fail["zero.png"].startswith("empty file") and fail["tiny.png"].startswith("too small")
    out = __import__("pandas").read_csv(tmp_path / "out.csv").set_index("image")
    assert out.loc["cmyk.jpg", "conversion"].startswith("cmyk->rgb")
    assert out.loc["exif.jpg", "conversion"].startswith("exif-transpose")
    assert out.loc["gray16.png", "conversion"].startswith("16bit->8bit")
    assert (tmp_path / "out.failures.csv").exists()
    # fixing a file removes its failure on the next run
    (src / "zero.png").write_bytes(_png(good))
    capsys.readouterr()
    assert main(args) == 3
    s = json.loads(capsys.readouterr().out)
    assert (s["scored"], s["from_cache"], s["failed"]) == (1, 10, 3)
    assert "zero.png" not in set(ScoreCache(cache).failures()["image"])


def _exif6() -> bytes:
    e = Image.Exif()
    e[0x0112] = 6
    return e.tobytes()


def test_sources_folder_manifest_ffhq_and_errors(tmp_path):
    make_images(tmp_path / "ffhq", 3, layout="ffhq")
    items = discover(tmp_path / "ffhq")
    assert [i.image for i in items] == ["00000/00000.png", "00000/00001.png", "00000/00002.png"]
    assert [i.image_id for i in items] == ["00000", "00001", "00002"]
    (tmp_path / "m.csv").write_text("image,race\nffhq/00000/00001.png,Black\nffhq/00000/00000.png,White\n")
    m = discover(tmp_path / "m.csv")
    assert [(i.image, i.meta["race"]) for i in m] == [("ffhq/00000/00001.png", "Black"), ("ffhq/00000/00000.png", "White")]
    assert m[0].path == tmp_path / "ffhq/00000/00001.png"
    (tmp_path / "bad.csv").write_text("file\nx.png\n")
    with pytest.raises(SourceError, match="needs an `image` column"):
        discover(tmp_path / "bad.csv")
    with pytest.raises(SourceError, match="does not exist"):
        discover(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        discover(tmp_path / "empty")


def test_manifest_metadata_reaches_the_output(tmp_path, capsys):
    w = save_random_discriminator(tmp_path / "D.pt", 16)
    make_images(tmp_path / "img", 2, size=(16, 16))
    (tmp_path / "m.csv").write_text("image,cell\nimg/00000.png,a\nimg/00001.png,b\n")
    out = tmp_path / "o.parquet"
    assert main(["score", str(tmp_path / "m.csv"), "--weights", str(w), "--cache-dir", str(tmp_path / "c"),
                 "--min-side", "8", "--workers", "0", "--no-progress", "--out", str(out)]) == 0
    df = __import__("pandas").read_parquet(out)
    assert df["cell"].tolist() == ["a", "b"] and df["image"].tolist() == ["img/00000.png", "img/00001.png"]
    assert {"image", "image_sha256", "score", "protocol", "grouping", "resize", "weights_sha256",
            "discbias_version"} <= set(df.columns)


def test_shards_partition_deterministically(tmp_path):
    make_images(tmp_path, 30, size=(8, 8))
    items = discover(tmp_path)
    parts = [shard(items, i, 4) for i in range(4)]
    names = [x.image for p in parts for x in p]
    assert sorted(names) == sorted(i.image for i in items) and len(names) == len(set(names))
    assert [x.image for x in shard(list(reversed(items)), 1, 4)] == [x.image for x in reversed(parts[1])]
    with pytest.raises(SourceError):
        parse_shard("4/4")


def test_clear_errors_for_missing_weights_registry_and_device(tmp_path, capsys):
    make_images(tmp_path / "img", 1, size=(16, 16))
    base = ["score", str(tmp_path / "img"), "--cache-dir", str(tmp_path / "c"), "--no-progress", "--workers", "0"]
    assert main(base + ["--weights", str(tmp_path / "nope.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    monkey_dir = tmp_path / "weights"
    import os

    old = os.environ.get("DISCBIAS_WEIGHTS_DIR")
    os.environ["DISCBIAS_WEIGHTS_DIR"] = str(monkey_dir)
    try:
        assert main(base + ["--weights", "stylegan3-r-ffhq-1024x1024.pkl"]) == 2
        assert "download_weights('stylegan3-r-ffhq-1024x1024.pkl')" in capsys.readouterr().err
    finally:
        if old is None:
            os.environ.pop("DISCBIAS_WEIGHTS_DIR")
        else:
            os.environ["DISCBIAS_WEIGHTS_DIR"] = old
    w = save_random_discriminator(tmp_path / "D.pt", 16)
    if not torch.cuda.is_available():
        assert main(base + ["--weights", str(w), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert main(base + ["--weights", str(w), "--grouping", "reference-group"]) == 2
    assert "--reference" in capsys.readouterr().err
    assert main(base + ["--weights", str(w), "--min-side", "8", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["settings"]["precision"] == "fp32"  # CPU always runs in float32
