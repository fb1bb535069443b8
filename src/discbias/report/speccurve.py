"""Specification-curve figures: one per claim, every specification's estimate and 95% interval.

Specifications of one claim can be on different scales (a correlation and a slope; a slope per
rating point and a standardised one), so each is drawn in units of its own interval: the
estimate divided by the interval's half-width / 1.96 (about its standard error), the interval
then spanning about +-1.96 (exactly so for symmetric Wald intervals; HDIs keep their asymmetry).
Whether 0 is excluded, the only thing the verdict reads, is unchanged by this scaling; the
estimate and interval in their own units are printed next to each row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Colours (colour-blind-safe, Okabe-Ito) of a specification's outcome.
OUTCOME_COLOURS = {"supports": "#0072B2", "opposite": "#D55E00", "includes 0": "#E69F00",
                   "condition not met": "#CC79A7", "undetermined": "#999999", "not converged": "#999999",
                   "missing": "#999999", "no interval": "#999999", "negligible": "#009E73", "degenerate": "#999999"}


def figure_name(claim_id: str) -> str:
    """File stem of a claim's figure, e.g. ``speccurve_S2-hair``.

    Examples
    --------
    >>> figure_name("S2-hair")
    'speccurve_S2-hair'
    """
    return f"speccurve_{claim_id}"


def interval_units(specs: pd.DataFrame) -> pd.DataFrame:
    """Estimates and intervals in units of each interval's half-width / 1.96.

    Examples
    --------
    >>> s = pd.DataFrame(dict(estimate=[2.0, 0.2], conf_low=[1.0, -0.1], conf_high=[3.0, 0.5], conf_level=[0.95, 0.95]))
    >>> interval_units(s)[["x", "x_low"]].round(2).values.tolist()
    [[3.92, 1.96], [1.31, -0.65]]
    """
    from scipy import stats

    level = specs["conf_level"].fillna(0.95).to_numpy(float)
    z = stats.norm.ppf(0.5 + level / 2)
    se = (specs["conf_high"] - specs["conf_low"]).to_numpy(float) / (2 * z)
    se = np.where(se > 0, se, np.nan)
    return specs.assign(x=specs["estimate"] / se, x_low=specs["conf_low"] / se, x_high=specs["conf_high"] / se)


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "—"
    a = abs(v)
    d = 3 if a < 1 else (2 if a < 100 else 1)
    return f"{v:.{d}f}".replace("-", "\u2212")


def spec_curve(claim: pd.Series, specs: pd.DataFrame):
    """The figure of one claim: a row per specification, sorted by scaled estimate (descriptions last).

    Parameters
    ----------
    claim : Series
        The claim's row of ``claims.csv``.
    specs : DataFrame
        Its rows of ``claims_specifications.csv``.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> c = pd.Series(dict(claim_id="X", verdict="fragile", direction=1, quantity="slope"))
    >>> s = pd.DataFrame(dict(label=["paper", "OLS"], role=["paper", "robustness"], estimate=[1.0, 0.3],
    ...                       conf_low=[0.5, -0.1], conf_high=[1.5, 0.7], conf_level=[0.95, 0.95],
    ...                       outcome=["supports", "includes 0"]))
    >>> len(spec_curve(c, s).axes[0].get_yticklabels())
    2
    """
    import matplotlib.pyplot as plt

    d = interval_units(specs.reset_index(drop=True))
    # specifications that do not vote (descriptions, different questions, optional ones absent) go last
    d["_desc"] = (d["vote"] != "votes") if "vote" in d else (d["role"] == "description")
    d = d.sort_values(["_desc", "x"], ascending=[True, claim.get("direction", 1) < 0], na_position="last")
    n = len(d)
    fig, ax = plt.subplots(figsize=(6.3, 0.42 * n + 0.9))
    y = np.arange(n)
    for k, (_, r) in enumerate(d.iterrows()):
        col = OUTCOME_COLOURS.get(r["outcome"], "#999999")
        hollow = r["outcome"] in ("not converged", "degenerate", "missing", "no interval") or r["_desc"]
        if np.isfinite(r["x"]):
            ax.plot([r["x_low"], r["x_high"]], [k, k], color=col, lw=1.6, ls=":" if hollow else "-")
            ax.plot(r["x"], k, "o", ms=5, color=col, mfc="white" if hollow else col)
        other = isinstance(r.get("vote"), str) and r["vote"].startswith("a different question")
        what = "different question" if other else r["outcome"]
        txt = (f"{_fmt(r['estimate'])} [{_fmt(r['conf_low'])}, {_fmt(r['conf_high'])}]  {what}"
               if np.isfinite(r["estimate"]) else what)
        ax.annotate(txt, (1.01, k), xycoords=("axes fraction", "data"), va="center", fontsize=7, color=col)
    ax.axvline(0, color="black", lw=0.7)
    labels = [r["label"] + (" (paper)" if r["role"] == "paper" else "")
              + (" (primary)" if str(r.get("primary", "")).lower() == "true" else "") for _, r in d.iterrows()]
    ax.set_yticks(y, labels, fontsize=7.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("estimate in units of its interval (95% interval about ±1.96; 0 = no effect)", fontsize=7.5)
    ax.set_title(f"{claim['claim_id']}: {claim['verdict']}", fontsize=8.5, loc="left")
    return fig


def spec_curve_figures(ctx) -> list[str]:
    """Write ``build/figures/speccurve_<claim>.png`` for every claim with estimated specifications.

    Returns the claim ids that got a figure.
    """
    claims = ctx.results.get("claims")
    specs = ctx.results.get("claims_specifications")
    done = []
    if claims is None or specs is None or not len(specs):
        return done
    for _, c in claims.iterrows():
        s = specs[specs["claim_id"] == c["claim_id"]]
        if not len(s) or not s["estimate"].notna().any():
            continue
        ctx.save_figure(spec_curve(c, s), figure_name(c["claim_id"]))
        done.append(c["claim_id"])
    return done
