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


class _Doc:
    """A commented TOML document whose every key and value is written by ``tomli_w``.

    Values and keys come from the manifest (column names, levels), so they are never formatted
    into TOML by hand: :meth:`kv` serialises one ``key = value`` pair with the TOML library, table
    headers quote their keys the same way, and comments have control characters escaped (a newline
    in a column name cannot end a comment). :meth:`text` parses the result back and checks that it
    holds exactly the data meant, so a value can never add a table or a key.
    """

    def __init__(self):
        self.lines: list[str] = []
        self.data: dict = {}
        self._table: dict = self.data

    @staticmethod
    def key(k) -> str:
        import tomli_w

        return tomli_w.dumps({str(k): 0}).rsplit(" = ", 1)[0]

    @staticmethod
    def comment(text) -> str:
        return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))

    def line(self, text: str = "") -> None:
        """A literal line: blank or a comment written by this module (data goes through :meth:`note`)."""
        assert not text or text.startswith("#")
        self.lines.append(text)

    def note(self, text) -> None:
        self.lines.append("# " + self.comment(text))

    def table(self, *path, array: bool = False) -> None:
        t = self.data
        for k in path[:-1]:
            t = t.setdefault(str(k), {})
        if array:
            t = t.setdefault(str(path[-1]), [])
            t.append({})
            self._table = t[-1]
        else:
            self._table = t.setdefault(str(path[-1]), {})
        name = ".".join(self.key(k) for k in path)
        self.lines.append(f"[[{name}]]" if array else f"[{name}]")

    def kv(self, k, v, comment: str = "") -> None:
        import tomli_w

        self._table[str(k)] = v

        def value(x) -> str:  # one scalar, serialised by the TOML library
            return tomli_w.dumps({"k": x}).rstrip("\n")[4:]

        text = self.key(k) + " = " + ("[" + ", ".join(value(x) for x in v) + "]" if isinstance(v, list) else value(v))
        self.lines.append(text + (f"   # {self.comment(comment)}" if comment else ""))

    def text(self) -> str:
        import tomllib

        out = "\n".join(self.lines) + "\n"
        if tomllib.loads(out) != self.data:  # cannot happen unless a value broke out of its line
            raise RuntimeError("audit init: the starter configuration does not parse back to its data")
        return out


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
    d = _Doc()
    d.line("# discbias audit configuration (written by `discbias audit init`; every guess is commented: check them)")
    d.note(f"manifest columns: {', '.join(map(str, df.columns))}")
    d.note("Run: discbias audit run --config " + str(out))
    d.line()
    d.table("audit")
    d.kv("name", name, "outputs go to build/<name>/, the report to build/<name>/report/<name>.html|pdf")
    d.kv("title", "Discriminator audit: " + name)
    d.kv("stand_in_weights", False, "true prints a 'stand-in weights' watermark (for random or placeholder weights)")
    d.kv("seed", 0, "seed of bootstrap intervals and samplers")
    d.line()
    d.table("data")
    d.kv("manifest", rel, "CSV or Parquet, one row per image (paths relative to this file's folder)")
    if r["image"] is None:
        d.kv("image_column", "image", "GUESS FAILED: no column looks like image paths; name it here")
    else:
        d.kv("image_column", str(r["image"]), "guessed: the column of image paths (relative to the manifest)")
    d.kv("groups", [str(g) for g in r["groups"]],
         "guessed: text columns with 2-12 levels; the report plots scores per level of each")
    d.line()
    d.table("scoring")
    d.kv("weights", weights or "stylegan3-r-ffhq-1024x1024.pkl", "NVIDIA pickle, .safetensors/.pt, or a registry name")
    d.kv("protocols", ["nvidia"], 'input scaling: "nvidia" (as trained) and/or "grissom2024"; the first is primary')
    d.kv("resize", "stretch", 'non-square images: "stretch", "center-crop" or "pad"')
    d.kv("device", "cpu", '"cpu", "cuda" or "cuda:N"')
    d.kv("batch_size", 8)
    from .conditioning import weights_c_dim

    c_dim, source = weights_c_dim(weights, out.parent) if weights else (None, "no --weights given")
    if c_dim == 0:
        d.note(f"unconditional network (c_dim = 0, {source}): no class conditioning")
    elif c_dim:
        if r["label"]:
            d.kv("label_column", str(r["label"]), f"class-conditional network (c_dim = {c_dim}, {source}); guessed: "
                 f"each image's class from this column; or class = K, or average_classes = true")
        else:
            d.kv("average_classes", True, f"class-conditional network (c_dim = {c_dim}, {source}): the mean score over "
                 f"its classes; or label_column = \"COLUMN\" or class = K (0..{c_dim - 1})")
    else:
        d.note(f"Conditioning not known ({source}). For a class-conditional network (c_dim > 0) give one of: "
               f'label_column = "COLUMN" | class = K | average_classes = true')
        if r["label"]:
            d.note(f'label_column = "{r["label"]}"   (a class-label column of the manifest, for a conditional network)')
    d.line()
    d.table("measures")
    d.kv("image", ["luma_709", "lab_l", "lab_a", "lab_b", "chroma"], 'or ["all"]; see `discbias measure-images --help`')
    d.kv("faces", "none", '"template" (FFHQ-aligned faces), "mediapipe" or "haar": skin/background regions')
    for item, cols in r["items"].items():
        d.line()
        d.table("ratings", item)
        d.kv("columns", [str(c) for c in cols], "guessed: one column per rater (wide); "
             'or file = "ratings.csv" with image/rater/value columns (long)')
        d.kv("scale", [float(df[cols].min().min()), float(df[cols].max().max())],
             "guessed from the data: set the scale the raters used")
    long_items = []
    if ratings is not None:
        lr = guess_long_ratings(Path(ratings))
        rel_r = os.path.relpath(Path(ratings).resolve(), out.resolve().parent)
        d.line()
        d.note(f"Long ratings file {Path(ratings).name} ({len(lr['columns'])} columns); guessed roles below.")
        for key, name_in_file, lo, hi in lr["items"]:
            long_items.append(key)
            d.line()
            d.table("ratings", key)
            d.kv("file", rel_r)
            for role in ("image", "rater", "value", "item"):
                c = lr[role]
                if role == "item" and c is None:
                    continue
                if c is None:
                    d.kv(f"{role}_column", role, f"GUESS FAILED: no column looks like the {role}; name it here")
                elif role == "item" or c != role:
                    d.kv(f"{role}_column", str(c), "guessed")
            if lr["item"] is not None and name_in_file != key:
                d.kv("item", name_in_file, "this item's name in the file")
            if lo is not None:
                d.kv("scale", [lo, hi], "guessed from the data: set the scale the raters used (values outside it "
                     "are listed as data issues)")
            else:
                d.kv("scale", [1.0, 7.0], "GUESS: no numeric values found; set the scale the raters used")
    grp = str(r["groups"][0]) if r["groups"] else None
    meas = "luma_709"
    rhs = " + ".join([x for x in (grp, meas) if x])
    d.line()
    d.line("# Models: lme4-style formulas over manifest, measure and rating columns (and score).")
    d.line('# level = "image" (one row per image; a rated item is its mean over raters) or "rating"')
    d.line("# (one row per image x rater: random intercepts (1|rater) + (1|image) are crossed).")
    d.line('# engine = "statsmodels" (REML, seconds) or "bambi" (Bayesian, PyMC; minutes) for random effects.')
    d.line('# compare: comparison specifications, "ols_hc3" and "cluster:<column>".')
    d.table("models", array=True)
    d.kv("id", "score_main")
    d.kv("formula", f"score ~ {rhs}")
    d.kv("level", "image")
    d.kv("standardize", ["score", "luma_709"])
    d.kv("compare", ["ols_hc3"] + ([f"cluster:{grp}"] if grp else []))
    for item in list(r["items"]) + long_items:
        d.line()
        d.table("models", array=True)
        d.kv("id", f"{item}_rating")
        d.kv("formula", f"{item} ~ {grp + ' + ' if grp else ''}score + (1|rater) + (1|image)")
        d.kv("level", "rating")
        d.kv("engine", "statsmodels")
        d.kv("standardize", ["score"])
        d.kv("compare", ["ols_hc3", "cluster:image"])
        break
    if grp:
        lv = sorted(df[grp].dropna().astype(str).unique())
        d.line()
        d.line("# Claims: a model term, the claimed direction (+1 / -1), the claims engine's verdict rule.")
        d.table("claims", array=True)
        d.kv("id", "group_difference")
        d.kv("description", f"Images of {grp} {lv[-1]} score higher than those of {grp} {lv[0]}")
        d.kv("model", "score_main")
        d.kv("term", f"{grp}[{lv[-1]}]", "a level of a categorical column: column[level]")
        d.kv("direction", 1)
    d.line()
    d.line("# Readable names for the report (column = label).")
    d.table("labels")
    for c in r["groups"] + r["covariates"]:
        d.kv(str(c), str(c).replace("_", " ").capitalize())
    return d.text()
