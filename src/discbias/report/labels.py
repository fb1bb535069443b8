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

#: Package defaults; a study's ``[labels]`` table extends or overrides them.
DEFAULT_LABELS: dict[str, str] = {
    # colour and luminance measures
    "red_mean": "Mean red (0\u2013255)", "green_mean": "Mean green (0\u2013255)",
    "blue_mean": "Mean blue (0\u2013255)", "luminance": "Luminance", "blue_z": "Blue mean (z)",
    "score": "Score", "black_share": "Share of \u201cBlack\u201d ratings",
    # rated axes (Study 2)
    "afrocentric_mean": "Afrocentric (mean rating)", "asiocentric_mean": "Asiocentric (mean rating)",
    "eurocentric_mean": "Eurocentric (mean rating)", "femininity_mean": "Femininity (mean rating)",
    "hair_length_mean": "Hair length (mean rating)", "masculinity_mean": "Masculinity (mean rating)",
    "skintone_mean": "Skin tone (mean rating)",
    "afrocentric": "Afrocentric", "asiocentric": "Asiocentric", "eurocentric": "Eurocentric",
    "femininity": "Femininity", "hair_length": "Hair length", "masculinity": "Masculinity", "skintone": "Skin tone",
    # design factors and Face API attributes
    "race": "Race", "gender": "Gender", "hair": "Hair", "age_band": "Age band", "glasses": "Glasses",
    "hair_colour": "Hair colour", "exposure_z": "Exposure (z)", "blur_z": "Blur (z)", "noise_z": "Noise (z)",
    "exposure_value": "Exposure", "blur_value": "Blur", "noise_value": "Noise",
    "smile_z": "Smile (z)", "bald_z": "Baldness (z)", "facial_hair_z": "Facial hair (z)",
    "face_area_z": "Face area (z)", "pitch_z": "Head pitch (z)", "abs_yaw_z": "|Head yaw| (z)",
    "abs_roll_z": "|Head roll| (z)", "eye_makeup": "Eye make-up", "lip_makeup": "Lip make-up",
    "headwear": "Headwear", "multi_face": "More than one face", "occluded": "Face occluded",
    "NoGlasses": "no glasses", "ReadingGlasses": "reading glasses", "Sunglasses": "sunglasses",
    "SwimmingGoggles": "swimming goggles",
    # model terms
    "Intercept": "Intercept", "(Intercept)": "Intercept", "Group Var": "Cell intercept variance",
    "Residual": "Residual", "sigma": "Residual SD (\u03c3)", "nu": "Degrees of freedom (\u03bd)",
    "hedges_g": "Hedges\u2019 g",
    # models
    "elicited_bayes": "Bayesian (paper\u2019s priors)", "elicited_bayes_centred": "Bayesian (centred)",
    "elicited_ols": "OLS", "elicited_ols_cluster": "OLS (cluster SE)", "elicited_mixed": "Mixed model",
    "elicited_mixed_ols_cluster": "OLS (cluster SE)", "rgb_bayes": "Bayesian RGB", "rgb_ols": "OLS RGB",
    "rgb_ols_hc3": "OLS RGB (HC3 SE)", "race_gender_hair_mixed": "Mixed model", "race_gender_hair_ols": "OLS",
    "men_anova": "Men", "women_anova": "Women", "partial_corr": "Controlling for luminance",
    "partial_corr_rgb": "Controlling for red, green and blue",
    "s1x_ols_full": "OLS (HC3)", "s1x_mixed": "Mixed model", "s1x_quantile_10": "Quantile q = 0.1",
    "s1x_quantile_50": "Quantile q = 0.5", "s1x_quantile_90": "Quantile q = 0.9",
    "tree_depth5": "Tree (depth 5)", "tree_depth4_ratings": "Tree on ratings (depth 4)",
    "all_rated": "all rated images", "matches_prompt": "images matching the prompt",
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


def set_labels(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Make the defaults plus ``extra`` (a study's ``[labels]``) the active dictionary.

    Examples
    --------
    >>> _ = set_labels({"red_mean": "Red"}); label("red_mean")
    'Red'
    >>> _ = set_labels(); label("red_mean")
    'Mean red (0–255)'
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
    >>> "red_mean" in known_ids() and "Intercept" not in known_ids()
    True
    """
    d = _ACTIVE if labels is None else labels
    return sorted(k for k, v in d.items() if k != v)


def label(id_, labels: Mapping[str, str] | None = None) -> str:
    """The readable label of an id (column, term, model, measure); unknown ids come back as given.

    Examples
    --------
    >>> label("red_mean"), label("C(race)[T.Black]:C(hair)[short]")
    ('Mean red (0–255)', 'Race: Black × Hair: short')
    >>> label("z_afrocentric_mean"), label("luminance:hedges_g"), label("elicited_ols__all_rated")
    ('Afrocentric (mean rating), standardized', 'Luminance, Hedges’ g', 'OLS, all rated images')
    >>> label("C(glasses, Treatment('NoGlasses'))[Sunglasses]"), label("something else")
    ('Glasses: sunglasses', 'something else')
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
    if ":" in s and "C(" in s:
        return " \u00d7 ".join(label(p, labels) for p in s.split(":"))
    if s.endswith(":hedges_g"):
        return f"{label(s[:-9], labels)}, {d['hedges_g']}"
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
