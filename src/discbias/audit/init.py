"""``discbias audit init``: a commented starter configuration from a manifest's columns.

Column roles are guessed from names and values and every guess is written as a comment, so the
user reads and edits one file:

* the image column: ``image`` / ``path`` / ``file`` / ``filename``, or the first column whose values
  end in an image suffix;
* rater columns: numeric columns sharing a stem and ending in a rater number (``skin_r1``,
  ``skin_r2``, ``skin_r3`` -> item ``skin``), at least two;
* group columns: text (or few-valued integer) columns with 2..12 levels;
* a class-label column for conditional networks: named ``label``/``class``/``class_label``/``cls``,
  written as ``label_column`` only when the weights (read with the safe reader) are class-conditional
  (an unconditional network gets no conditioning, a conditional one without such a column
  ``average_classes = true``);
* everything else numeric: a covariate.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = ["guess_roles", "guess_long_ratings", "starter_config"]

_IMAGE_NAMES = ("image", "path", "file", "filename", "img")
_LABEL_NAMES = ("label", "class", "class_label", "cls")
_RATER = re.compile(r"^(?P<stem>.+?)[_-]?(?:r|rater|rating)?[_-]?(?P<k>\d+)$")
_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def guess_roles(df: pd.DataFrame) -> dict:
    """Guess the role of every column of a manifest.

    Returns
    -------
    dict
        ``image`` (column or None), ``groups`` (list), ``items`` ({item: [rater columns]}),
        ``label`` (column or None), ``covariates`` (list), ``other`` (list).

    Examples
    --------
    >>> df = pd.DataFrame({"image": ["a.png", "b.png"], "group": ["x", "y"], "hair": [1.0, 2.5],
    ...                    "skin_r1": [3, 4], "skin_r2": [3, 5], "skin_r3": [2, 4]})
    >>> r = guess_roles(df)
    >>> r["image"], r["groups"], r["items"], r["covariates"]
    ('image', ['group'], {'skin': ['skin_r1', 'skin_r2', 'skin_r3']}, ['hair'])
    """
    cols = list(df.columns)
    image = next((c for c in cols if str(c).lower() in _IMAGE_NAMES), None)
    if image is None:
        image = next((c for c in cols if not pd.api.types.is_numeric_dtype(df[c])
                      and df[c].astype(str).str.lower().str.endswith(_SUFFIXES).mean() > 0.9), None)
    rest = [c for c in cols if c != image]
    label = next((c for c in rest if str(c).lower() in _LABEL_NAMES and pd.api.types.is_integer_dtype(df[c])), None)
    rest = [c for c in rest if c != label]
    stems: dict[str, list[str]] = {}
    for c in rest:
        m = _RATER.match(str(c))
        if m and pd.api.types.is_numeric_dtype(df[c]):
            stem = m.group("stem").rstrip("_-")
            stems.setdefault("rating" if stem.lower() in ("r", "rater", "rating") else stem, []).append(c)
    items = {s: v for s, v in stems.items() if len(v) >= 2}
    rated = {c for v in items.values() for c in v}
    groups, covs, other = [], [], []
    for c in rest:
        if c in rated:
            continue
        s = df[c]
        n = s.nunique(dropna=True)
        textual = not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
        if textual and 2 <= n <= 12:
            groups.append(c)
        elif pd.api.types.is_integer_dtype(s) and 2 <= n <= 5:
            groups.append(c)
        elif pd.api.types.is_numeric_dtype(s):
            covs.append(c)
        else:
            other.append(c)
    return dict(image=image, groups=groups, items=items, label=label, covariates=covs, other=other)


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


_RATER_NAMES = ("rater", "rater_id", "raterid", "worker", "worker_id", "annotator", "participant", "subject", "coder",
                "judge", "respondent", "who")
_ITEM_NAMES = ("item", "question", "attribute", "trait", "scale", "variable", "dimension")
_VALUE_NAMES = ("value", "rating", "response", "answer", "score")


def guess_long_ratings(path: Path) -> dict:
    """Guess the columns of a long ratings file (one row per image x rater, or x item).

    Returns
    -------
    dict
        ``columns``, ``image``, ``rater``, ``item``, ``value`` (column names or None) and
        ``items``: ``(key, name in the file, low, high)`` per item (``key`` a valid identifier;
        ``low``/``high`` the observed range).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "r.csv"
    >>> pd.DataFrame({"image": ["a.png", "a.png"], "worker": ["w1", "w2"], "question": ["skin tone", "hair_length"],
    ...               "rating": [3, 5]}).to_csv(p, index=False)
    >>> g = guess_long_ratings(p)
    >>> g["image"], g["rater"], g["item"], g["value"], g["items"]
    ('image', 'worker', 'question', 'rating', [('hair_length', 'hair_length', 5.0, 5.0), ('skin_tone', 'skin tone', 3.0, 3.0)])
    """
    df = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    cols = list(df.columns)

    def pick(names, pred=lambda c: True):
        return next((c for c in cols if str(c).lower() in names and pred(c)), None)

    image = pick(_IMAGE_NAMES) or next((c for c in cols if not pd.api.types.is_numeric_dtype(df[c]) and
                                        df[c].astype(str).str.lower().str.endswith(_SUFFIXES).mean() > 0.5), None)
    rater = pick(_RATER_NAMES)
    item = pick(_ITEM_NAMES, lambda c: not pd.api.types.is_numeric_dtype(df[c]))
    value = pick(_VALUE_NAMES) or next((c for c in cols if c not in (image, rater, item)
                                        and pd.api.types.is_numeric_dtype(df[c])), None)
    vals = pd.to_numeric(df[value], errors="coerce") if value is not None else pd.Series(dtype=float)
    items = []
    groups = [(str(k), vals[df[item].astype(str) == k]) for k in sorted(df[item].dropna().astype(str).unique())] \
        if item is not None else [(path.stem, vals)]
    for name, v in groups:
        key = re.sub(r"\W+", "_", name).strip("_") or "item"
        if not key[0].isalpha():
            key = "item_" + key
        v = v.dropna()
        items.append((key, name, float(v.min()) if len(v) else None, float(v.max()) if len(v) else None))
    return dict(columns=cols, image=image, rater=rater, item=item, value=value, items=items)


def starter_config(manifest: str | Path, out: str | Path, *, weights: str | None = None, name: str | None = None,
                   ratings: str | Path | None = None) -> str:
    """The text of a starter audit configuration for ``manifest`` (written to ``out`` by the CLI).

    Paths in the file are relative to ``out``'s folder. ``ratings``: a long ratings file (one row
    per image x rater, or x item with an item column); each item gets a ``[ratings.<item>]`` table.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"image": ["a.png", "b.png"], "group": ["x", "y"], "r1": [1, 2], "r2": [1, 3]}).to_csv(
    ...     d / "m.csv", index=False)
    >>> text = starter_config(d / "m.csv", d / "analysis" / "demo.toml")
    >>> 'manifest = "../m.csv"' in text and "[ratings.rating]" in text and 'groups = ["group"]' in text
    True
    """
    import os

    manifest, out = Path(manifest), Path(out)
    df = pd.read_parquet(manifest) if manifest.suffix.lower() == ".parquet" else pd.read_csv(manifest)
    r = guess_roles(df)
    name = name or re.sub(r"[^A-Za-z0-9_-]", "-", out.stem) or "audit"
    if not name[0].isalpha():
        name = "a-" + name
    rel = os.path.relpath(manifest.resolve(), out.resolve().parent)
    L = []
    L += ["# discbias audit configuration (written by `discbias audit init`; every guess is commented: check them)",
          f"# manifest columns: {', '.join(map(str, df.columns))}",
          "# Run: discbias audit run --config " + str(out),
          "",
          "[audit]",
          f"name = {_q(name)}                # outputs go to build/<name>/, the report to build/<name>/report/<name>.html|pdf",
          f"title = {_q('Discriminator audit: ' + name)}",
          "stand_in_weights = false         # true prints a 'stand-in weights' watermark (for random or placeholder weights)",
          "seed = 0                         # seed of bootstrap intervals and samplers",
          "",
          "[data]",
          f"manifest = {_q(rel)}             # CSV or Parquet, one row per image (paths relative to this file's folder)"]
    if r["image"] is None:
        L.append('image_column = "image"         # GUESS FAILED: no column looks like image paths; name it here')
    else:
        L.append(f"image_column = {_q(r['image'])}         # guessed: the column of image paths (relative to the manifest)")
    L.append(f"groups = [{', '.join(_q(g) for g in r['groups'])}]   # guessed: text columns with 2-12 levels; "
             f"the report plots scores per level of each")
    L += ["", "[scoring]",
          f"weights = {_q(weights or 'stylegan3-r-ffhq-1024x1024.pkl')}   # NVIDIA pickle, .safetensors/.pt, or a registry name",
          'protocols = ["nvidia"]           # input scaling: "nvidia" (as trained) and/or "grissom2024"; the first is primary',
          'resize = "stretch"               # non-square images: "stretch", "center-crop" or "pad"',
          'device = "cpu"                   # "cpu", "cuda" or "cuda:N"',
          "batch_size = 8"]
    from .conditioning import weights_c_dim

    c_dim, source = weights_c_dim(weights, out.parent) if weights else (None, "no --weights given")
    if c_dim == 0:
        L.append(f"# unconditional network (c_dim = 0, {source}): no class conditioning")
    elif c_dim:
        if r["label"]:
            L.append(f"label_column = {_q(r['label'])}     # class-conditional network (c_dim = {c_dim}, {source}); "
                     f"guessed: each image's class from this column; or class = K, or average_classes = true")
        else:
            L.append(f"average_classes = true         # class-conditional network (c_dim = {c_dim}, {source}): the "
                     f"mean score over its classes; or label_column = \"COLUMN\" or class = K (0..{c_dim - 1})")
    else:
        L.append(f"# Conditioning not known ({source}). For a class-conditional network (c_dim > 0) give one of: "
                 f"label_column = \"COLUMN\" | class = K | average_classes = true")
        if r["label"]:
            L.append(f"# label_column = {_q(r['label'])}   # a class-label column of the manifest, for a conditional "
                     f"network")
    L += ["", "[measures]",
          'image = ["luma_709", "lab_l", "lab_a", "lab_b", "chroma"]   # or ["all"]; see `discbias measure-images --help`',
          'faces = "none"                   # "template" (FFHQ-aligned faces), "mediapipe" or "haar": skin/background regions']
    long_items = []
    if ratings is not None:
        lr = guess_long_ratings(Path(ratings))
        rel_r = os.path.relpath(Path(ratings).resolve(), out.resolve().parent)
        cols = lr["columns"]
        L += ["", f"# Long ratings file {Path(ratings).name} (columns: {', '.join(map(str, cols))}); guessed roles below."]
        for key, name, lo, hi in lr["items"]:
            long_items.append(key)
            L += ["", f"[ratings.{key}]", f"file = {_q(rel_r)}"]
            for role in ("image", "rater", "value", "item"):
                c = lr[role]
                if role == "item" and c is None:
                    continue
                if c is None:
                    L.append(f"{role}_column = \"{role}\"   # GUESS FAILED: no column looks like the {role}; name it here")
                elif role != "item" and c == role:
                    continue
                else:
                    L.append(f"{role}_column = {_q(c)}   # guessed")
            if lr["item"] is not None and name != key:
                L.append(f"item = {_q(name)}   # this item's name in the file")
            L.append(f"scale = [{lo:g}, {hi:g}]   # guessed from the data: set the scale the raters used (values "
                     f"outside it are listed as data issues)" if lo is not None else
                     "scale = [1, 7]   # GUESS: no numeric values found; set the scale the raters used")
    for item, cols in r["items"].items():
        L += ["", f"[ratings.{item}]",
              f"columns = [{', '.join(_q(c) for c in cols)}]   # guessed: one column per rater (wide); "
              f"or file = \"ratings.csv\" with image/rater/value columns (long)",
              f"scale = [{float(df[cols].min().min()):g}, {float(df[cols].max().max()):g}]   "
              f"# guessed from the data: set the scale the raters used"]
    grp = r["groups"][0] if r["groups"] else None
    meas = "luma_709"
    rhs = " + ".join([x for x in (grp, meas) if x])
    L += ["", "# Models: lme4-style formulas over manifest, measure and rating columns (and score).",
          "# level = \"image\" (one row per image; a rated item is its mean over raters) or \"rating\"",
          "# (one row per image x rater: random intercepts (1|rater) + (1|image) are crossed).",
          '# engine = "statsmodels" (REML, seconds) or "bambi" (Bayesian, PyMC; minutes) for random effects.',
          "# compare: comparison specifications, \"ols_hc3\" and \"cluster:<column>\".",
          "[[models]]",
          'id = "score_main"',
          f'formula = "score ~ {rhs}"',
          'level = "image"',
          'standardize = ["score", "luma_709"]',
          'compare = ["ols_hc3"' + (f', "cluster:{grp}"' if grp else "") + "]"]
    for item in list(r["items"]) + long_items:
        L += ["", "[[models]]", f'id = "{item}_rating"',
              f'formula = "{item} ~ {grp + " + " if grp else ""}score + (1|rater) + (1|image)"',
              'level = "rating"', 'engine = "statsmodels"', 'standardize = ["score"]',
              'compare = ["ols_hc3", "cluster:image"]']
        break
    if grp:
        lv = sorted(df[grp].dropna().astype(str).unique())
        L += ["", "# Claims: a model term, the claimed direction (+1 / -1), the claims engine's verdict rule.",
              "[[claims]]", 'id = "group_difference"',
              f'description = "Images of {grp} {lv[-1]} score higher than those of {grp} {lv[0]}"',
              'model = "score_main"', f'term = "{grp}[{lv[-1]}]"        # a level of a categorical column: column[level]',
              "direction = 1"]
    L += ["", "# Readable names for the report (column = label).", "[labels]"]
    L += [f"{c if re.fullmatch(r'[A-Za-z0-9_-]+', str(c)) else _q(c)} = {_q(str(c).replace('_', ' ').capitalize())}"
          for c in r["groups"] + r["covariates"]]
    return "\n".join(L) + "\n"
