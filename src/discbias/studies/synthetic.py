"""Synthetic studies in the released schema of Grissom II et al. (2024).

Used by the tests and the end-to-end check: files with the same columns, names and quirks as
the released CSVs (``luminance`` = blue mean in the 70k file, ``top<k>``/``bot<k>`` names,
per-rater slots, ``<race><m|w><l|s|b><k>.png`` names), filled with seeded random values with
known built-in effects, plus a study configuration carrying their sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from .grissom2024 import RACE_CATEGORIES, RATING_ITEMS

_RACES = ["Asian", "Black", "White"]


def _ratings(rng, n, slots, race_labels, prefix_style="underscore"):
    cols = {}
    for k in range(1, slots + 1):
        present = rng.random(n) < (0.9 if k <= 3 else 0.3)
        for item in ["Skintone", "Race", "RaceTextbox"] + RATING_ITEMS[1:]:
            name = (f"{item}_{k}" if item not in ("Race", "RaceTextbox") else f"{item}.{k}") \
                if prefix_style == "underscore" else f"{item} {k}"
            if item == "Race":
                vals = np.where(present, race_labels(rng, n), None)
            elif item == "RaceTextbox":
                vals = np.array([None] * n)
            else:
                vals = np.where(present, rng.integers(1, 8, n).astype(float), np.nan)
            cols[name] = vals
    return pd.DataFrame(cols)


def face_record(rng, *, exposure: float, box: int | None = None) -> dict:
    """One synthetic Microsoft Face API v1.0 ``detect`` record (the schema of the FFHQ features).

    Examples
    --------
    >>> sorted(face_record(np.random.default_rng(0), exposure=0.5)["faceAttributes"])[:3]
    ['accessories', 'age', 'blur']
    """
    box = int(rng.integers(50, 90)) if box is None else box
    smile = float(rng.uniform())
    glasses = rng.choice(["NoGlasses", "ReadingGlasses", "Sunglasses", "SwimmingGoggles"], p=[0.8, 0.12, 0.06, 0.02])
    headwear = bool(rng.uniform() < 0.08)
    hair = rng.choice(["brown", "black", "blond", "gray", "red", "other"], size=2, replace=False)
    blur, noise = float(rng.uniform(0, 0.8)), float(rng.uniform(0, 0.8))
    level = lambda v, names: names[0] if v < 0.25 else (names[1] if v < 0.75 else names[2])  # noqa: E731
    return {
        "faceId": "00000000-0000-0000-0000-000000000000",
        "faceRectangle": {"top": int(rng.integers(20, 40)), "left": int(rng.integers(20, 40)), "width": box,
                          "height": box},
        "faceAttributes": {
            "smile": smile, "headPose": {"pitch": float(rng.normal(0, 5)), "roll": float(rng.normal(0, 5)),
                                         "yaw": float(rng.normal(0, 15))},
            "gender": str(rng.choice(["female", "male"])), "age": float(rng.uniform(1, 80)),
            "facialHair": {"moustache": float(rng.uniform(0, 0.5)), "beard": float(rng.uniform(0, 0.5)),
                           "sideburns": float(rng.uniform(0, 0.5))},
            "glasses": str(glasses),
            "emotion": {"anger": 0.0, "contempt": 0.0, "disgust": 0.0, "fear": 0.0, "happiness": smile,
                        "neutral": 1 - smile, "sadness": 0.0, "surprise": 0.0},
            "blur": {"blurLevel": level(blur, ["low", "medium", "high"]), "value": blur},
            "exposure": {"exposureLevel": level(exposure, ["underExposure", "goodExposure", "overExposure"]),
                         "value": float(exposure)},
            "noise": {"noiseLevel": level(noise, ["low", "medium", "high"]), "value": noise},
            "makeup": {"eyeMakeup": bool(rng.uniform() < 0.4), "lipMakeup": bool(rng.uniform() < 0.4)},
            "accessories": [{"type": "headwear", "confidence": 0.99}] if headwear else [],
            "occlusion": {"foreheadOccluded": bool(rng.uniform() < 0.05), "eyeOccluded": False,
                          "mouthOccluded": bool(rng.uniform() < 0.05)},
            "hair": {"bald": float(rng.uniform(0, 0.3)), "invisible": headwear,
                     "hairColor": [{"color": str(c), "confidence": float(p)} for c, p in zip(hair, (0.95, 0.4))]},
        },
    }


def write_face_features(path: str | Path, exposures: np.ndarray, rng) -> str:
    """Write ``json/<id>.json`` for each image into a gzip tarball; returns the content digest.

    About 1% of the files are empty and 0.5% hold two faces, as in the real set.
    """
    from ..fetch import digest_of_hashes

    hashes = {}
    with tarfile.open(path, "w:gz") as tf:
        for i, e in enumerate(exposures):
            u = rng.uniform()
            faces = [] if u < 0.01 else [face_record(rng, exposure=e)]
            if 0.01 <= u < 0.015:
                faces.append(face_record(rng, exposure=e, box=30))
            data = json.dumps(faces).encode()
            name = f"{i:05d}.json"
            hashes[name] = hashlib.sha256(data).hexdigest()
            info = tarfile.TarInfo(f"json/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return digest_of_hashes(hashes)


def _authors_faces(mirror: Path, n_per_cell: int, seed: int) -> tuple[int, int]:
    """``atypical_men.csv`` / ``women_faces.csv`` in the schema of ``AtypicalFaceData.csv`` /
    ``WomenFaceData.csv`` (own random stream, so the other synthetic files do not change).
    Men: ``n_per_cell`` per race x hair cell; women: unbalanced, short = short-hair + buzz-cut
    folders, long = long-hair (+ locs for Black women). Score rises with luminance; Black long-haired
    men score lower."""
    rng = np.random.default_rng(seed + 7919)
    out = {}
    for gen, folder_gen in (("men", "Men"), ("women", "Women")):
        rows = []
        for race in ("asian", "black", "white"):
            prompts = {"long": ["LongHair"], "short": ["ShortHair"]} if gen == "men" else \
                {"long": ["LongHair"] + (["Locs"] if race == "black" else []), "short": ["ShortHair", "BuzzCut"]}
            for hair, folders in prompts.items():
                for folder in folders:
                    n = n_per_cell if gen == "men" else int(rng.integers(max(3, n_per_cell // 2), 2 * n_per_cell + 1))
                    rgb = rng.uniform(30, 220, size=(n, 3))
                    lum = (0.2126 * rgb[:, 0] + 0.7152 * rgb[:, 1] + 0.0722 * rgb[:, 2]) / 255
                    sc = 90 + 110 * lum + 12 * (hair == "short") + rng.normal(0, 12, n)
                    if gen == "men" and race == "black" and hair == "long":
                        sc -= 15
                    for k in range(n):
                        rows.append(dict(discriminator_score=sc[k],
                                         image=f"images/{race.title()}{folder_gen}{folder}/{k}_cropped.png",
                                         race=race, hair_length=hair, red_mean=rgb[k, 0], green_mean=rgb[k, 1],
                                         blue_mean=rgb[k, 2], luminance=lum[k]))
        out[gen] = pd.DataFrame(rows)
    out["men"].to_csv(mirror / "atypical_men.csv")
    out["women"].to_csv(mirror / "women_faces.csv")
    return len(out["men"]), len(out["women"])


def make_synthetic_study(root: str | Path, *, seed: int = 0, n_ffhq: int = 2000, n_per_cell: int = 20) -> Path:
    """Write a synthetic study into ``root`` and return its configuration path.

    Creates ``root/mirror/*.csv`` (released schema) and ``root/analysis/synthetic.toml`` whose
    sources point at them with the right sha256 (set ``DISCBIAS_DATA_MIRROR=root/mirror``).
    Built-in effects: score rises with luminance and red; Black long-haired men score lower.

    Parameters
    ----------
    root : path
    seed : int
    n_ffhq : int
        Rows of the synthetic 70k-style file (at least 200).
    n_per_cell : int
        Images per race x gender x hair cell of Study 2.

    Examples
    --------
    >>> import tempfile
    >>> cfg = make_synthetic_study(tempfile.mkdtemp(), n_ffhq=300, n_per_cell=5)
    >>> cfg.name
    'synthetic.toml'
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    mirror = root / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)

    # Study 1: 70k-style file; blue mean drives the score.
    rgb = rng.uniform(20, 230, size=(n_ffhq, 3))
    lum = (0.2126 * rgb[:, 0] + 0.7152 * rgb[:, 1] + 0.0722 * rgb[:, 2]) / 255
    # the blue mean (released as "luminance") also drives the score, as on the released data (r about 0.4)
    score = 100 + 120 * lum + 0.2 * rgb[:, 2] + rng.normal(0, 10, n_ffhq)
    perm = rng.permutation(n_ffhq)
    ids = [f"{i:05d}.png" for i in perm]
    pd.DataFrame({"image_id": ids, "scores": score, "luminance": rgb[:, 2]}).to_csv(mirror / "ffhq.csv")
    # Face attributes per image id; the Face API's exposure follows the image's luminance.
    exposure = np.empty(n_ffhq)
    exposure[perm] = np.clip(lum + rng.normal(0, 0.05, n_ffhq), 0, 1)
    features_digest = write_face_features(mirror / "features.tar.gz", exposure, rng)
    order = np.argsort(score)
    ext = np.concatenate([order[:100], order[-100:]])
    tb = pd.DataFrame({"discriminator_score": score[ext], "image": [ids[i] for i in ext], "red_mean": rgb[ext, 0],
                       "green_mean": rgb[ext, 1], "blue_mean": rgb[ext, 2], "luminance": lum[ext]})
    tb.sample(frac=1, random_state=seed).to_csv(mirror / "top_bottom.csv", index=False)
    names = [f"bot{k}.png" for k in rng.permutation(100) + 1] + [f"top{k}.png" for k in rng.permutation(100) + 1]
    is_bottom = np.array([True] * 100 + [False] * 100)

    def race_for_extremes(r, n):
        p_bottom = [0.25, 0.45, 0.15, 0.05, 0.05, 0.05]
        p_top = [0.7, 0.05, 0.15, 0.04, 0.03, 0.03]
        return np.array([r.choice(RACE_CATEGORIES, p=p_bottom if b else p_top) for b in is_bottom])

    rated = pd.concat([pd.DataFrame({"image": names, "matches_prompt": "Yes", "discriminator_Score": score[ext],
                                     "red_mean": rgb[ext, 0], "green_mean": rgb[ext, 1], "blue_mean": rgb[ext, 2],
                                     "luminance": lum[ext]}),
                       _ratings(rng, 200, 5, race_for_extremes, "space")], axis=1)

    # Study 2: race x gender x hair cells.
    rows = []
    for race in _RACES:
        for gen in ("men", "women"):
            for hair in ("long", "short"):
                code = "b" if (gen == "women" and hair == "short") else hair[0]
                for k in range(1, n_per_cell + 1):
                    rows.append(dict(race=race, gen=gen, hair=hair, name=f"{race[0].lower()}{gen[0]}{code}{k}.png"))
    s2 = pd.DataFrame(rows)
    n2 = len(s2)
    c = rng.uniform(40, 220, size=(n2, 3))
    lum2 = (0.2126 * c[:, 0] + 0.7152 * c[:, 1] + 0.0722 * c[:, 2]) / 255
    sc2 = 60 + 0.6 * c[:, 0] - 0.3 * c[:, 1] + 0.2 * c[:, 2] + rng.normal(0, 8, n2)
    sc2 -= 80 * ((s2["race"] == "Black") & (s2["gen"] == "men") & (s2["hair"] == "long")).to_numpy()
    base = pd.DataFrame({"X": np.arange(1, n2 + 1), "stim.race": s2["race"], "stim.gen": s2["gen"],
                         "hairlength": s2["hair"], "stim.num": [n.split(".")[0][3:] + ".png" for n in s2["name"]],
                         "fullstimname": s2["name"], "men.low.agree": "No", "dup": "No", "matches_prompt": "Yes",
                         "discriminator_score": sc2, "red_mean": c[:, 0], "green_mean": c[:, 1], "blue_mean": c[:, 2],
                         "luminance": lum2})
    study2 = pd.concat([base, _ratings(rng, n2, 6, lambda r, n: r.choice(RACE_CATEGORIES[:3], n))], axis=1)
    study2.to_csv(mirror / "study2.csv")
    # The uncleaned rated set (all_face_data_matched.csv) holds the extremes and the scraped
    # images, before the matches_prompt exclusion.
    scraped = pd.concat([pd.DataFrame({"image": s2["name"], "matches_prompt": np.where(rng.random(n2) < 0.8, "Yes", "No"),
                                       "discriminator_Score": sc2, "red_mean": c[:, 0], "green_mean": c[:, 1],
                                       "blue_mean": c[:, 2], "luminance": lum2}),
                         _ratings(rng, n2, 5, lambda r, n: r.choice(RACE_CATEGORIES[:3], n), "space")], axis=1)
    rated = pd.concat([rated, scraped], ignore_index=True)
    rated.to_csv(mirror / "rated.csv", index=False)
    agg = study2.copy()
    for item in RATING_ITEMS:
        slots = agg[[f"{item}_{k}" for k in range(1, 7)]].astype(float)
        agg[f"{item}Std"] = slots.std(axis=1)
        agg[f"{item}Mean"] = slots.mean(axis=1)
    agg.to_csv(mirror / "study2_agg.csv")
    n_men, n_women = _authors_faces(mirror, n_per_cell, seed)

    files = {"ffhq_scores": ("ffhq.csv", n_ffhq), "ffhq_top_bottom": ("top_bottom.csv", 200),
             "all_faces_matched": ("rated.csv", 200 + n2), "study2_unbalanced": ("study2.csv", n2),
             "study2_aggregated": ("study2_agg.csv", n2), "atypical_men": ("atypical_men.csv", n_men),
             "women": ("women_faces.csv", n_women)}
    lines = ['[study]', 'id = "synthetic"', 'title = "Synthetic study in the released schema"',
             'paper = "none (synthetic data)"', 'released_scores_protocol = "grissom2024"', '',
             '[paper]', 'title = "Synthetic study in the released schema"',
             'authors = [{name = "Test Author", affiliation = "Synthetic Institute"}]',
             'keywords = ["synthetic data", "discriminator bias"]', '',
             "# small sampler and bootstrap sizes: a test-sized build (the models are the same)",
             '[models]', 'draws = 500', 'tune = 500', 'chains = 2', 'n_boot = 30', '', '[upstream]', 'repository = "example/synthetic"',
             'commit = "0000000"', 'url = ""', 'licence = "synthetic data, no licence needed"', '']
    for name, (fname, rows_) in files.items():
        digest = hashlib.sha256((mirror / fname).read_bytes()).hexdigest()
        lines += [f"[sources.{name}]", f'file = "{fname}"', f'sha256 = "{digest}"', f"rows = {rows_}", ""]
    lines += ["[sources.ffhq_features]", 'kind = "json_tree"', 'file = "features.tar.gz"',
              f'sha256 = "{hashlib.sha256((mirror / "features.tar.gz").read_bytes()).hexdigest()}"',
              f'content_digest = "{features_digest}"', 'member_dir = "json"', f"files = {n_ffhq}",
              f"rows = {n_ffhq}", 'repository = "example/synthetic-features"', 'commit = "0000000"',
              'licence = "synthetic data"', ""]
    lines += ["[roles]", 'study1_scores = "ffhq_scores"', 'study1_top_bottom = "ffhq_top_bottom"',
              'study1_ratings = "all_faces_matched"', 'study2_images = "study2_unbalanced"',
              'study2_aggregated = "study2_aggregated"', 'ffhq_features = "ffhq_features"',
              'authors_men = "atypical_men"', 'authors_women = "women"', "",
              "# readable labels over the package defaults (discbias.report.labels)", "[labels]",
              's1_black_share = "Bottom vs top 100: share of \u201cBlack\u201d ratings"',
              's1_top_bottom_luminance = "Top vs bottom 100: luminance"', ""]
    cfg = root / "analysis" / "synthetic.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("\n".join(lines))
    return cfg
