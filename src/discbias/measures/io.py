"""Image sources and the streaming, parallel measurement of many images.

Images are found and decoded by the scoring stage's rules, so a file is measured if and only if
``discbias score`` would score it, and bad files are handled exactly as in scoring:

* sources: :func:`discbias.scoring.discover` (a folder searched recursively for png, jpg, jpeg
  and webp, so the FFHQ layout ``00000/00012.png`` works, or a manifest CSV with an ``image``
  column of paths relative to the manifest and any metadata columns);
* decoding: :func:`discbias.scoring.decode_rgb` (EXIF orientation, grayscale, 16-bit, palette,
  alpha over white, CMYK... with the applied rules recorded in ``conversion``; empty, corrupt,
  truncated, floating-point and too-small images rejected with a reason);
* failures: one row ``image, image_sha256, reason`` per rejected file, the columns of the
  scoring stage's failures; ``on_error="error"`` stops at the first one instead.

Each row carries the file's ``image_sha256`` (the score cache's image identity), so measures join
scores by content.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..scoring.images import DEFAULT_MIN_SIDE, ImageError, decode_rgb, display_name, read_regular_file, sha256_bytes
from ..scoring.columns import FAILURE_COLUMNS
from ..scoring.sources import SourceError, discover
from .image import ColourHistograms, image_measures

#: Columns that identify an image in :func:`measure_images`' output (the measures follow).
ID_COLUMNS = ["image", "image_id", "path", "image_sha256", "conversion", "width", "height"]


def discover_images(source: str | os.PathLike, *, failures: list | None = None) -> pd.DataFrame:
    """List the images of a source as the scoring stage does: ``image, image_id, path`` (+ manifest columns).

    ``image`` is the path relative to the folder (or as written in the manifest), ``image_id`` the
    file stem (FFHQ: ``00012``). Raises :class:`~discbias.scoring.SourceError` for a missing or
    empty folder or a manifest without an ``image`` column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "00000").mkdir()
    >>> Image.new("RGB", (4, 4)).save(d / "00000" / "00012.png")
    >>> discover_images(d)[["image", "image_id"]].values.tolist()
    [['00000/00012.png', '00012']]
    """
    found = discover(source)
    items = [it for it in found if it.error is None]
    if failures is not None:  # special files, broken links, unlistable folders: listed, never opened
        failures += [dict(image=display_name(it.image), image_sha256="", reason=it.error) for it in found if it.error]
    df = pd.DataFrame([dict(image=it.image, image_id=it.image_id, path=str(it.path), **it.meta) for it in items],
                      columns=None if items else ["image", "image_id", "path"],
                      dtype=object)  # Python strings: names that are not UTF-8 keep their surrogate escapes
    if df["image"].duplicated().any():
        dup = df.loc[df["image"].duplicated(), "image"].iloc[0]
        raise SourceError(f"{source}: image {dup!r} appears twice; each image must be listed once")
    return df


def read_rgb8(path: str | os.PathLike, *, min_side: int = 1) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 array by the scoring stage's rules.

    Raises :class:`~discbias.scoring.ImageError` (the reason scoring would record) or ``OSError``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.png"; Image.new("L", (3, 2), 9).save(p)
    >>> read_rgb8(p).shape
    (2, 3, 3)
    """
    return decode_rgb(read_regular_file(path), min_side=min_side)[0]


def _single_threaded_blas() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _measure_one(args):
    """Measure one file; bad files (unreadable, or rejected by the scoring stage's decoder) come back
    as a failure row. Any other exception is a bug and propagates."""
    image, image_id, path, face_method, mask_dir, min_side, kw = args
    sha = ""
    read_path, image, path = path, display_name(image), display_name(path)  # outputs: printable names
    image_id = display_name(image_id)
    try:
        data = read_regular_file(read_path)
        sha = sha256_bytes(data)
        rgb, notes = decode_rgb(data, min_side=min_side)
    except OSError as exc:
        return None, dict(image=image, image_sha256=sha, reason=f"cannot read file ({exc.strerror or exc})")
    except ImageError as exc:
        return None, dict(image=image, image_sha256=sha, reason=str(exc))
    masks = {}
    hists = ColourHistograms(rgb)  # shared by the face and the image measures
    row = dict(image=image, image_id=image_id, path=path, image_sha256=sha, conversion="; ".join(notes),
               width=int(rgb.shape[1]), height=int(rgb.shape[0]))
    if face_method:
        from .faces import face_measures, face_regions

        regions = face_regions(rgb, face_method)
        if regions is not None:
            masks = {"skin": regions.skin, "bg": regions.background}
        row.update(face_measures(rgb, face_method, regions=regions, histograms=hists))
    if mask_dir:
        mp = Path(mask_dir) / f"{image_id}.png"
        if mp.exists():
            try:
                m = read_rgb8(mp)[..., 0] > 127
            except (OSError, ImageError) as exc:
                return None, dict(image=image, image_sha256=sha, reason=f"mask {mp}: {exc}")
            if m.shape != rgb.shape[:2]:
                return None, dict(image=image, image_sha256=sha,
                                  reason=f"mask {mp} is {m.shape[1]}x{m.shape[0]}, the image {rgb.shape[1]}x{rgb.shape[0]}")
            masks = {"skin": m, "bg": ~m}
    row.update(image_measures(rgb, masks, histograms=hists, **kw))
    return row, None


def measure_images(source, *, out: str | os.PathLike | None = None, workers: int | None = None,
                   faces: str | None = None, mask_dir: str | os.PathLike | None = None,
                   on_error: str = "report", chunk: int = 256, progress: bool = True,
                   min_side: int = DEFAULT_MIN_SIDE, **measure_kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure every image of a source; stream the rows to a Parquet file when ``out`` is given.

    Parameters
    ----------
    source : path
        Folder or manifest CSV (see :func:`discover_images`).
    out : path, optional
        Parquet file written chunk by chunk (a crash keeps the chunks written so far in
        ``<out>.partial``; the file appears under its name only when complete).
    workers : int, optional
        Processes (default: the number of CPUs); 1 runs in this process.
    faces : {"template", "mediapipe", "haar"}, optional
        Also compute face measures and skin/background region measures.
    mask_dir : path, optional
        Folder of ``<image_id>.png`` skin masks (white = skin) for region measures.
    on_error : {"report", "error"}
        Bad files: list and skip, or stop (:class:`~discbias.scoring.ImageError` naming the file).
    min_side : int
        Smallest accepted side, as in scoring (default 32).

    Returns
    -------
    measures, failures : DataFrame
        One row per image (in source order; :data:`ID_COLUMNS`, then the measures, then the
        manifest's metadata columns, kept as they are) and one per
        bad file (``image, image_sha256, reason``, as the scoring stage's failures).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (32, 32), (255, 0, 0)).save(d / "a.png"); _ = (d / "b.png").write_text("no")
    >>> Image.new("RGB", (8, 8)).save(d / "c.png")
    >>> m, e = measure_images(d, workers=1, progress=False)
    >>> m["mean_r"].tolist(), e["image"].tolist(), e["reason"].str[:14].tolist()
    ([255.0], ['b.png', 'c.png'], ['not a readable', 'too small: 8x8'])
    """
    if on_error not in ("report", "error"):
        raise ValueError(f"on_error must be 'report' or 'error', not {on_error!r}")
    listed: list[dict] = []
    files = discover_images(source, failures=listed)
    if listed and on_error == "error":
        raise ImageError(f"{listed[0]['image']}: {listed[0]['reason']} (use on_error='report' to skip bad files, "
                         f"as the scoring stage does)")
    workers = workers or os.cpu_count() or 1
    meta_cols = [c for c in files.columns if c not in ("image", "image_id", "path")]
    meta_df = files.set_index("image")[meta_cols].copy()
    for c in meta_cols:  # the manifest is read as text; numeric columns become numbers again
        num = pd.to_numeric(meta_df[c], errors="coerce")
        if num.notna().sum() == meta_df[c].replace("", np.nan).notna().sum():
            meta_df[c] = num
    meta = meta_df.to_dict("index") if meta_cols else {}
    tasks = [(r.image, r.image_id, r.path, faces, str(mask_dir) if mask_dir else None, int(min_side), measure_kwargs)
             for r in files.itertuples()]
    rows, errors = [], list(listed)
    writer, tmp = None, None
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
    bar = None
    if progress:
        from ..progress import progress as _progress

        bar = _progress(total=len(tasks), desc="measure images", unit="img")
    # Each worker process reads, decodes and measures whole images, so decoding overlaps measuring;
    # BLAS runs single-threaded in the workers (its threads would only contend for the same cores).
    pool = ProcessPoolExecutor(workers, initializer=_single_threaded_blas) if workers > 1 else None
    from threadpoolctl import threadpool_limits

    limit = threadpool_limits(1) if pool is None else None  # serial: BLAS single-threaded here too, restored after
    try:
        for start in range(0, len(tasks), chunk):
            batch = tasks[start:start + chunk]
            results = list(pool.map(_measure_one, batch, chunksize=max(1, len(batch) // (4 * workers))) if pool
                           else map(_measure_one, batch))
            got = []
            for row, err in results:
                if err is not None:
                    if on_error == "error":
                        raise ImageError(f"{err['image']}: {err['reason']} (use on_error='report' to skip bad files, "
                                         f"as the scoring stage does)")
                    errors.append(err)
                else:
                    if meta_cols:  # the manifest's metadata columns travel with the measures
                        clash = [c for c in meta_cols if c in row]
                        if clash:
                            raise ValueError(f"manifest column(s) {clash} have the names of measures; rename them "
                                             f"in the manifest (e.g. to meta_{clash[0]})")
                        row = {**row, **meta[row["image"]]}
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
        if limit is not None:
            limit.restore_original_limits()
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
    return pd.DataFrame(rows), pd.DataFrame(errors, columns=FAILURE_COLUMNS)


def measure_file(image: str, path: str | os.PathLike, *, faces: str | None = None, min_side: int = DEFAULT_MIN_SIDE,
                 **measure_kwargs) -> tuple[dict | None, dict | None]:
    """Measure one image file: ``(row, None)``, or ``(None, failure)`` for a file that cannot be decoded.

    The per-file work of :func:`measure_images` (same decoding, conversion and failure rules), for
    callers that hold their own list of files (the audit's manifest).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (32, 32), (0, 0, 255)).save(d / "a.png")
    >>> row, err = measure_file("a.png", d / "a.png"); row["mean_b"], err
    (255.0, None)
    >>> measure_file("b.png", d / "b.png")[1]["reason"][:14]
    'cannot read fi'
    """
    return _measure_one((image, Path(path).stem, str(path), faces, None, int(min_side), measure_kwargs))
