"""A probe run: generate every probe image, measure it, score it under each protocol (cached)."""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from ..measures.image import image_measures
from .generate import BaseImage, generate_probes, probe_plan
from .scoring import score_images

#: Measures recorded for each probe image (the x axis of the training-distribution comparison).
PROBE_MEASURES = ["luma_709", "rel_luminance", "lab_l", "lab_a", "lab_b", "chroma", "hue_deg", "mean_r", "mean_g",
                  "mean_b", "colorfulness"]


def run_probes(bases: list[BaseImage], *, weights, protocols=("nvidia",), levels: dict | None = None,
               cache=None, fields: bool = False, field_size: int | None = None, batch_size: int = 8,
               chunk: int = 64, device: str = "cpu", progress: bool = True) -> pd.DataFrame:
    """Generate, measure and score the probe images of ``bases``.

    Returns
    -------
    DataFrame
        One row per probe image and protocol: ``probe_id, base, base_sha256, probe, level,
        field_lightness, field_hue, image_sha256, clipped``, the :data:`PROBE_MEASURES` (also
        ``skin_``/``background_`` versions when the base has masks), ``protocol, score``. The
        table's ``attrs["n_computed"]`` says how many scores were computed rather than read from
        the cache.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from discbias.nets import Discriminator, save_discriminator
    >>> from discbias.probes.generate import base_from_array
    >>> torch.manual_seed(0) and None
    >>> w = os.path.join(tempfile.mkdtemp(), "d.pt")
    >>> save_discriminator(Discriminator(0, 16, 3, channel_base=256, channel_max=16), w)
    >>> b = [base_from_array("a", np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))]
    >>> df = run_probes(b, weights=w, levels={"exposure": [-1, 1]}, progress=False)
    >>> df[["probe", "level", "protocol"]].shape, df["score"].notna().all()
    ((3, 3), np.True_)
    """
    plan = probe_plan(bases, levels, fields=fields, field_size=field_size or 64)
    if plan.empty:
        raise ValueError("the probe plan is empty: no base images, no probes, and no uniform fields")
    by_name = {b.image: b for b in bases}
    rows, n_computed, t0 = [], 0, time.perf_counter()
    gen = generate_probes(bases, plan, field_size=field_size)
    done = 0
    while True:
        part = [x for _, x in zip(range(chunk), gen)]
        if not part:
            break
        imgs = [img for _, img in part]
        meta = []
        for (row, img) in part:
            masks = {}
            b = by_name.get(row["base"])
            if b is not None and row["probe"] != "uniform_field":
                masks = {k: v for k, v in b.masks.items()}
            m = image_measures(img, masks)
            rec = dict(row)
            rec.update({k: m[k] for k in PROBE_MEASURES})
            for region, prefix in (("skin", "skin"), ("background", "background")):
                if region in masks:
                    rec.update({f"{prefix}_{k}": m[f"{region}_{k}"] for k in ("luma_709", "lab_l", "lab_a", "lab_b")})
            meta.append(rec)
        for protocol in protocols:
            s, n = score_images(imgs, weights=weights, protocol=protocol, cache=cache, batch_size=batch_size,
                                device=device, image_hashes=[r["image_sha256"] for r in meta])
            n_computed += n
            for rec, v in zip(meta, s):
                rows.append({**rec, "protocol": protocol, "score": v})
        done += len(part)
        if progress:
            print(f"\r[discbias] probes {done}/{len(plan)} images x {len(protocols)} protocols "
                  f"({time.perf_counter() - t0:.0f}s)", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    out = pd.DataFrame(rows)
    out.attrs["n_computed"] = n_computed
    return out
