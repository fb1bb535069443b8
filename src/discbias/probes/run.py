"""A probe run: generate every probe image, measure it, score it under each protocol.

Scoring goes through the scoring stage (:meth:`discbias.scoring.Scorer.score_arrays`): its input
protocols, its ``single`` grouping (each image its own minibatch-std group), its resize rule, its
batch transactions and its score cache, where each probe image is keyed by the sha256 of its
pixels (:func:`discbias.scoring.sha256_pixels`), the weights' sha256 and the protocol settings.
Probe images are deterministic, so a rerun reads every score from the cache.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from ..measures.image import image_measures
from .generate import GENERATOR_VERSION, BaseImage, generate_probes, probe_plan
from ..errors import ConfigError

#: Measures recorded for each probe image (the x axis of the training-distribution comparison).
PROBE_MEASURES = ["luma_709", "rel_luminance", "lab_l", "lab_a", "lab_b", "chroma", "hue_deg", "mean_r", "mean_g",
                  "mean_b", "colorfulness"]


def probe_protocols(protocols) -> dict[str, "ScoringProtocol"]:
    """Named scoring protocols for probes, from names, tables or :class:`~discbias.scoring.ScoringProtocol`.

    A name is an input protocol (``nvidia`` or ``grissom2024``); a table (dict) holds ``name`` and
    any :class:`~discbias.scoring.ScoringProtocol` field. Probes use the ``single`` grouping only:
    a probe's score must not depend on other images.

    Examples
    --------
    >>> {k: v.label for k, v in probe_protocols(["nvidia", {"name": "g-flip", "input": "grissom2024", "flip": True}]).items()}
    {'nvidia': 'nvidia/single/stretch-lanczos', 'g-flip': 'grissom2024/single/stretch-lanczos/flip'}
    >>> probe_protocols([{"input": "nvidia", "grouping": "reference-group"}])
    Traceback (most recent call last):
    ...
    discbias.scoring.protocols.ProtocolError: probe protocol 'nvidia' uses grouping 'reference-group'; probes are scored with grouping 'single'
    """
    from ..scoring import ProtocolError, ScoringProtocol

    out: dict[str, ScoringProtocol] = {}
    for spec in ([protocols] if isinstance(protocols, (str, dict, ScoringProtocol)) else protocols):
        if isinstance(spec, ScoringProtocol):
            name, proto = spec.input, spec
        elif isinstance(spec, str):
            name, proto = spec, ScoringProtocol(input=spec)
        elif isinstance(spec, dict):
            kw = dict(spec)
            name = str(kw.pop("name", kw.get("input", "nvidia")))
            proto = ScoringProtocol(**kw)
        else:
            raise ProtocolError(f"a probe protocol must be a name, a table or a ScoringProtocol, not {spec!r}")
        if proto.grouping != "single":
            raise ProtocolError(f"probe protocol {name!r} uses grouping {proto.grouping!r}; probes are scored with "
                                f"grouping 'single'")
        if name in out:
            raise ProtocolError(f"probe protocol name {name!r} appears twice; give each table a unique `name`")
        out[name] = proto
    if not out:
        raise ProtocolError("no probe protocols given; use e.g. protocols = [\"nvidia\", \"grissom2024\"]")
    return out


def probe_scorers(weights, protocols=("nvidia",), *, device: str = "cpu", batch_size: int = 8,
                  min_side: int | None = None) -> dict[str, "Scorer"]:
    """One :class:`~discbias.scoring.Scorer` per named protocol, sharing one loaded network.

    ``min_side`` defaults to the scoring stage's ``DEFAULT_MIN_SIDE`` or the network's
    resolution when that is smaller (probe images are made at the network's resolution).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from discbias.scoring.testing import save_random_discriminator
    >>> w = save_random_discriminator(pathlib.Path(tempfile.mkdtemp()) / "D.pt", resolution=16)
    >>> s = probe_scorers(w, ["nvidia", "grissom2024"])
    >>> [(k, v.resolution, v.min_side) for k, v in s.items()]
    [('nvidia', 16, 16), ('grissom2024', 16, 16)]
    """
    from ..nets import load_discriminator
    from ..scoring import DEFAULT_MIN_SIDE, Scorer, resolve_weights, sha256_file

    protos = probe_protocols(protocols)
    path = resolve_weights(weights)
    D = load_discriminator(path, device=device)
    sha = sha256_file(path)
    ms = min(DEFAULT_MIN_SIDE, int(D.img_resolution)) if min_side is None else int(min_side)
    out = {}
    for name, proto in protos.items():  # all 'single': sharing the network is safe
        s = Scorer(path, proto, network=D, weights_sha256=sha, device=device, batch_size=batch_size, min_side=ms)
        s.weights_path = path
        out[name] = s
    return out


def _cache_name(row: dict) -> str:
    if row["probe"] == "uniform_field":
        return f"probe/uniform_field/L={row['field_lightness']:g},hue={row['field_hue']:g}"
    return f"probe/{row['base']}/{row['probe']}={row['level']:g}"


def run_probes(bases: list[BaseImage], *, weights=None, cache, protocols=("nvidia",), levels: dict | None = None,
               scorers: dict | None = None, fields: bool = False, field_size: int | None = None,
               batch_size: int = 8, chunk: int = 64, device: str = "cpu", progress: bool = True) -> pd.DataFrame:
    """Generate, measure and score the probe images of ``bases`` through the score cache.

    Parameters
    ----------
    bases : list of BaseImage
    weights : path or registry name
        The discriminator (ignored when ``scorers`` is given).
    cache : ScoreCache or path
        The scoring stage's cache (a folder or ``.sqlite`` file).
    protocols : sequence
        Names or tables, see :func:`probe_protocols`.
    scorers : dict, optional
        Prebuilt :func:`probe_scorers` (name -> Scorer).
    chunk : int
        Probe images generated, measured and scored together (bounds memory).

    Returns
    -------
    DataFrame
        One row per probe image and protocol: ``probe_id, base, base_sha256, probe, level,
        field_lightness, field_hue, image_sha256, clipped``, the :data:`PROBE_MEASURES` (also
        ``skin_``/``background_`` versions when the base has masks), ``protocol`` (the name),
        ``protocol_label, weights_sha256, from_cache, score``. ``attrs["n_computed"]`` says how
        many scores were computed rather than read from the cache.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from discbias.scoring.testing import save_random_discriminator
    >>> from discbias.probes.generate import base_from_array
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> w = save_random_discriminator(d / "D.pt", resolution=16)
    >>> b = [base_from_array("a", np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))]
    >>> df = run_probes(b, weights=w, cache=d / "cache", levels={"exposure": [-1, 1]}, progress=False)
    >>> df[["probe", "level", "protocol"]].shape, df["score"].notna().all(), df.attrs["n_computed"]
    ((3, 3), np.True_, 3)
    >>> run_probes(b, weights=w, cache=d / "cache", levels={"exposure": [-1, 1]}, progress=False).attrs["n_computed"]
    0
    """
    from ..scoring import ScoreCache

    if scorers is None:
        if weights is None:
            raise ValueError("run_probes needs weights or scorers")
        scorers = probe_scorers(weights, protocols, device=device, batch_size=batch_size)
    own_cache = not isinstance(cache, ScoreCache)
    db = ScoreCache(cache) if own_cache else cache
    plan = probe_plan(bases, levels, fields=fields, field_size=field_size or 64)
    if plan.empty:
        raise ConfigError("the probe plan is empty: no base images, no probes, and no uniform fields; configure [probes] images, levels or fields")
    by_name = {b.image: b for b in bases}
    rows, n_computed, t0 = [], 0, time.perf_counter()
    gen = generate_probes(bases, plan, field_size=field_size)
    done = 0
    try:
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
            for name, scorer in scorers.items():
                run = scorer.score_arrays(imgs, db, names=[_cache_name(r) for r in meta],
                                          image_sha256s=[r["image_sha256"] for r in meta],
                                          source=f"discbias.probes v{GENERATOR_VERSION}")
                if run.failed:
                    f = run.failures.iloc[0]
                    raise ValueError(f"probe image {f['image']} could not be scored ({f['reason']}); probe images are "
                                     f"made at the network's resolution: check [probes] resolution / field size")
                n_computed += run.scored
                for rec, (_, r) in zip(meta, run.table.iterrows()):
                    rows.append({**rec, "protocol": name, "protocol_label": r["label"],
                                 "weights_sha256": r["weights_sha256"], "from_cache": bool(r["from_cache"]),
                                 "score": float(r["score"])})
            done += len(part)
            if progress:
                print(f"\r[discbias] probes {done}/{len(plan)} images x {len(scorers)} protocols "
                      f"({time.perf_counter() - t0:.0f}s)", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    finally:
        if own_cache:
            db.close()
    out = pd.DataFrame(rows)
    out.attrs["n_computed"] = n_computed
    return out
