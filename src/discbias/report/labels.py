"""Readable labels for the identifiers a reader would otherwise see in tables and figures.

The label dictionary is the package defaults (:data:`DEFAULT_LABELS`) updated with the study
configuration's ``[labels]`` table (``analysis/<study>.toml``), so a study can rename anything
without code. :func:`label` looks an id up exactly, then understands the few patterns the
models write (patsy terms ``C(race)[T.Black]:C(hair)[short]``, standardized ``z_`` predictors,
``x:hedges_g`` effect sizes, sensitivity variants ``model__variant``). Render checks use
:func:`known_ids` to find raw identifiers left in the paper.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Package defaults: the columns, terms and measures the package itself writes. A study's own
#: ids (its columns, items, models) are labelled in its configuration's ``[labels]`` table (the
#: replication's in ``analysis/grissom2024.toml``), which extends or overrides these.
DEFAULT_LABELS: dict[str, str] = {
    "score": "Score",
    # image measures (discbias.measures.image)
    "mean_r": "Mean red (0\u2013255)", "mean_g": "Mean green (0\u2013255)", "mean_b": "Mean blue (0\u2013255)",
    "luma_709": "Luma (Rec. 709)", "rel_luminance": "Relative luminance", "lab_l": "CIELAB L*",
    "lab_a": "CIELAB a*", "lab_b": "CIELAB b*", "chroma": "Chroma (C*ab)", "hue_deg": "Hue angle (degrees)",
    "colorfulness": "Colourfulness", "rms_contrast": "RMS contrast", "sharpness": "Sharpness",
    "clipped_dark": "Share of clipped dark pixels", "clipped_bright": "Share of clipped bright pixels",
    "width": "Width (px)", "height": "Height (px)", "n_pixels": "Pixels",
    # model terms
    "Intercept": "Intercept", "(Intercept)": "Intercept", "Group Var": "Cell intercept variance",
    "Residual": "Residual", "sigma": "Residual SD (\u03c3)", "nu": "Degrees of freedom (\u03bd)",
    "hedges_g": "Hedges\u2019 g",
    # probe results
    "preferred_value": "Preferred value", "preferred_quantile": "Quantile of the preferred value",
    "training_mode": "Reference mode", "training_median": "Reference median",
    "slope_at_training_mode": "Slope at the reference mode", "protocol": "Protocol",
    # result-table columns
    "estimate": "Estimate", "std_error": "SE", "statistic": "Statistic", "p_value": "p",
    "conf_low": "95% CI low", "conf_high": "95% CI high", "n_obs": "n", "n_groups": "Groups",
    "converged": "Converged", "warnings": "Warnings", "model": "Model", "term": "Term", "method": "Method",
}

_ACTIVE: dict[str, str] = dict(DEFAULT_LABELS)

_PATSY = re.compile(r"^C\((?P<var>[^,)]+)(?:,\s*Treatment\([^)]*\))?\)(?:\[(?:T\.)?(?P<level>[^\]]*)\])?$")
#: A level of a categorical variable as formulaic / patsy write it without C(): ``region[north]``, ``group[T.b]``.
_LEVEL = re.compile(r"^(?P<var>[A-Za-z_][\w.]*)\[(?:T\.)?(?P<level>[^\]]*)\]$")


def set_labels(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Make the defaults plus ``extra`` (a study's ``[labels]``) the active dictionary.

    Examples
    --------
    >>> _ = set_labels({"red_mean": "Red", "luma_709": "Luma"}); label("red_mean"), label("luma_709")
    ('Red', 'Luma')
    >>> _ = set_labels(); label("red_mean"), label("luma_709")
    ('red_mean', 'Luma (Rec. 709)')
    """
    global _ACTIVE
    _ACTIVE = {**DEFAULT_LABELS, **{str(k): str(v) for k, v in (extra or {}).items()}}
    return _ACTIVE


def labels_from_config(config) -> dict[str, str]:
    """The ``[labels]`` table of a study configuration (empty when it has none).

    Examples
    --------
    >>> from discbias.config import load_config
    >>> labels_from_config(load_config("analysis/grissom2024.toml"))["s1_top_bottom_red_mean"]
    'Top vs bottom 100: red'
    """
    raw = getattr(config, "raw", {}) or {}
    return dict(raw.get("labels", {}))


def known_ids(labels: Mapping[str, str] | None = None) -> list[str]:
    """Ids with a label whose label differs from the id (what a render check looks for).

    Examples
    --------
    >>> "luma_709" in known_ids() and "Intercept" not in known_ids()
    True
    >>> "hair_length" in known_ids(), "hair_length" in known_ids({"hair_length": "Hair length"})
    (False, True)
    """
    d = _ACTIVE if labels is None else labels
    return sorted(k for k, v in d.items() if k != v)


def label(id_, labels: Mapping[str, str] | None = None) -> str:
    """The readable label of an id (column, term, model, measure); unknown ids come back as given.

    Examples
    --------
    >>> study = {"race": "Race", "hair": "Hair", "luminance": "Luminance", "elicited_ols": "OLS",
    ...          "all_rated": "all rated images", "glasses": "Glasses", "Sunglasses": "sunglasses",
    ...          "region": "Region", "skin_tone": "Skin tone"}
    >>> label("luma_709"), label("C(race)[T.Black]:C(hair)[short]", study)
    ('Luma (Rec. 709)', 'Race: Black × Hair: short')
    >>> label("z_skin_tone", study), label("luminance:hedges_g", study), label("elicited_ols__all_rated", study)
    ('Skin tone, standardized', 'Luminance, Hedges’ g', 'OLS, all rated images')
    >>> label("C(glasses, Treatment('NoGlasses'))[Sunglasses]", study), label("something else")
    ('Glasses: sunglasses', 'something else')
    >>> label("region[north]", study), label("region[T.north]:skin_tone", study)
    ('Region: north', 'Region: north × Skin tone')
    """
    d = _ACTIVE if labels is None else {**DEFAULT_LABELS, **labels}
    if not isinstance(id_, str):
        return id_
    s = id_.strip()
    if s in d:
        return d[s]
    m = _PATSY.match(s)
    if m:
        var = label(m["var"].strip(), labels)
        return var if m["level"] is None else f"{var}: {d.get(m['level'], m['level'])}"
    m = _LEVEL.match(s)
    if m:
        return f"{label(m['var'], labels)}: {d.get(m['level'], m['level'])}"
    if s.endswith(":hedges_g"):
        return f"{label(s[:-9], labels)}, {d['hedges_g']}"
    if ":" in s and all(re.fullmatch(r"C\(.*\)(\[.*\])?|[A-Za-z_][\w.]*(\[[^\]]*\])?", p) for p in s.split(":")):
        parts = s.split(":")
        named = [label(p, labels) for p in parts]
        if "C(" in s or "[" in s or any(n != p for n, p in zip(named, parts)):
            return " \u00d7 ".join(named)
    if s.startswith("z_") and s[2:] in d:
        return f"{d[s[2:]]}, standardized"
    if "__" in s:
        base, variant = s.split("__", 1)
        if base in d:
            return f"{d[base]}, {d.get(variant, variant.replace('_', ' '))}"
    m = re.match(r"^I\((\w+) \*\* 2\)$", s)
    if m:
        return f"{label(m[1], labels)} squared"
    return s
