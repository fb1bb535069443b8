"""Image sources and the streaming, parallel measurement of many images.

A source is a folder (searched recursively, so the FFHQ layout ``00000/00012.png`` works), a
manifest CSV with a ``path`` column (relative to the manifest; optional ``image`` id column), or
one image file. Bad files (unreadable, truncated, not an image) are handled as the scoring stage
does: with ``on_error="report"`` they are listed with the reason and skipped; with
``on_error="error"`` the run stops naming the file.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .image import image_measures

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class ImageSourceError(ValueError):
    """An image source (folder, manifest) is missing or malformed, or an image cannot be read."""


def discover_images(source: str | os.PathLike) -> pd.DataFrame:
    """List the images of a source as a frame with columns ``image`` (id) and ``path``.

    The id is the file stem when stems are unique (FFHQ: ``00012``), else the path relative to
    the folder without its suffix.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "00000").mkdir()
    >>> Image.new("RGB", (4, 4)).save(d / "00000" / "00012.png")
    >>> discover_images(d)["image"].tolist()
    ['00012']
    """
    source = Path(source)
    if not source.exists():
        raise ImageSourceError(f"image source {source} does not exist; give a folder, a manifest CSV or an image file")
    if source.is_file() and source.suffix.lower() == ".csv":
        man = pd.read_csv(source)
        if "path" not in man.columns:
            raise ImageSourceError(f"manifest {source} needs a 'path' column (image paths relative to the manifest)")
        paths = [str((source.parent / p).resolve()) if not os.path.isabs(str(p)) else str(p) for p in man["path"]]
        ids = man["image"].astype(str).tolist() if "image" in man.columns else [Path(p).stem for p in paths]
        df = pd.DataFrame({"image": ids, "path": paths})
    elif source.is_file():
        df = pd.DataFrame({"image": [source.stem], "path": [str(source.resolve())]})
    else:
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise ImageSourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {source}")
        stems = [p.stem for p in files]
        ids = stems if len(set(stems)) == len(stems) else [p.relative_to(source).with_suffix("").as_posix() for p in files]
        df = pd.DataFrame({"image": ids, "path": [str(p.resolve()) for p in files]})
    if df["image"].duplicated().any():
        dup = df.loc[df["image"].duplicated(), "image"].iloc[0]
        raise ImageSourceError(f"{source}: image id {dup!r} appears twice; ids must be unique")
    return df


def read_rgb8(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 array (fully decoded; truncation is an error)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # PIL raises several types for bad files
        raise ImageSourceError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def _measure_one(args):
    image, path, face_method, mask_dir, kw = args
    try:
        rgb = read_rgb8(path)
        masks = {}
        row = {"image": image, "path": path}
        if face_method:
            from .faces import face_measures, face_regions

            regions = face_regions(rgb, face_method)
            if regions is not None:
                masks = {"skin": regions.skin, "bg": regions.background}
            row.update(face_measures(rgb, face_method, regions=regions))
        if mask_dir:
            mp = Path(mask_dir) / f"{image}.png"
            if mp.exists():
                m = read_rgb8(mp)[..., 0] > 127
                masks = {"skin": m, "bg": ~m}
        row.update(image_measures(rgb, masks, **kw))
        return row, None
    except Exception as exc:
        return None, {"image": image, "path": path, "error": f"{type(exc).__name__}: {exc}"}


def measure_images(source, *, out: str | os.PathLike | None = None, workers: int | None = None,
                   faces: str | None = None, mask_dir: str | os.PathLike | None = None,
                   on_error: str = "report", chunk: int = 256, progress: bool = True,
                   **measure_kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure every image of a source; stream the rows to a Parquet file when ``out`` is given.

    Parameters
    ----------
    source : path
        Folder, manifest CSV or image (see :func:`discover_images`).
    out : path, optional
        Parquet file written chunk by chunk (a crash keeps the chunks written so far in
        ``<out>.partial``; the file appears under its name only when complete).
    workers : int, optional
        Processes (default: the number of CPUs); 1 runs in this process.
    faces : {"template", "mediapipe", "haar"}, optional
        Also compute face measures and skin/background region measures.
    mask_dir : path, optional
        Folder of ``<image>.png`` skin masks (white = skin) for region measures.
    on_error : {"report", "error"}
        Bad files: list and skip, or stop.

    Returns
    -------
    measures, errors : DataFrame
        One row per image (in source order) and one per bad file (``image, path, error``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (8, 8), (255, 0, 0)).save(d / "a.png"); _ = (d / "b.png").write_text("no")
    >>> m, e = measure_images(d, workers=1, progress=False)
    >>> m["mean_r"].tolist(), e["image"].tolist()
    ([255.0], ['b'])
    """
    if on_error not in ("report", "error"):
        raise ValueError(f"on_error must be 'report' or 'error', not {on_error!r}")
    files = discover_images(source)
    workers = workers or os.cpu_count() or 1
    tasks = [(r.image, r.path, faces, str(mask_dir) if mask_dir else None, measure_kwargs) for r in files.itertuples()]
    rows, errors = [], []
    writer, tmp = None, None
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="measure images", file=sys.stderr, unit="img")
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for start in range(0, len(tasks), chunk):
            batch = tasks[start:start + chunk]
            results = list(pool.map(_measure_one, batch, chunksize=max(1, len(batch) // (4 * workers))) if pool
                           else map(_measure_one, batch))
            got = []
            for row, err in results:
                if err is not None:
                    if on_error == "error":
                        raise ImageSourceError(f"{err['path']}: {err['error']} (use on_error='report' to skip bad files)")
                    errors.append(err)
                else:
                    got.append(row)
            if got and out is not None:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(pd.DataFrame(got), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
            rows.extend(got)
            if bar:
                bar.update(len(batch))
    finally:
        if pool:
            pool.shutdown()
        if bar:
            bar.close()
        if writer is not None:
            writer.close()
    if out is not None:
        if writer is None:
            pd.DataFrame(rows).to_parquet(tmp, index=False)
        os.replace(tmp, out)
    return pd.DataFrame(rows), pd.DataFrame(errors, columns=["image", "path", "error"])
