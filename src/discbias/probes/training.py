"""Is D's preference "explicable by the training data"? Compare the preferred value of a measure
with the training set's distribution of the same measure.

The probe images of one probe (exposure by default) span a range of a measure (``luma_709`` by
default). A mixed model of score ~ spline(measure) + (1 + measure | base image) over those
images gives D's preferred value of the measure (the argmax of the population curve, with a
bootstrap interval). The training set's distribution of the same measure comes either from a
reference image set the user points at (measured with :func:`discbias.measures.measure_images`)
or from released summary statistics (a quantile table). Reported: the quantile of the preferred
value in the training distribution (a preference for what the training data holds most of would
sit near the mode and the middle quantiles), the training mode, and the slope of the score at the
training mode (zero if D's preference peaks where the data is densest).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import result_frame
from .model import fit_dose_response


class ReferenceDistribution:
    """A training-set distribution of one measure: raw values or a quantile table.

    Examples
    --------
    >>> r = ReferenceDistribution(values=np.random.default_rng(0).normal(0.5, 0.1, 5000))
    >>> round(r.quantile_of(0.5), 1), round(r.mode(), 1)
    (0.5, 0.5)
    >>> q = ReferenceDistribution(quantiles=pd.DataFrame({"quantile": [0, .5, 1], "value": [0., .4, 1.]}))
    >>> q.quantile_of(0.4), q.quantile_of(0.7)
    (0.5, 0.75)
    """

    def __init__(self, values=None, quantiles: pd.DataFrame | None = None, source: str = ""):
        if (values is None) == (quantiles is None):
            raise ValueError("give either reference values or a quantile table (columns 'quantile', 'value')")
        self.values = None if values is None else np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
        if quantiles is not None:
            if not {"quantile", "value"} <= set(quantiles.columns):
                raise ValueError(f"a quantile table needs columns 'quantile' and 'value'; got {list(quantiles.columns)}")
            quantiles = quantiles.sort_values("quantile")
        self.quantiles = quantiles
        self.source = source
        if self.values is not None and len(self.values) < 2:
            raise ValueError("the reference distribution needs at least two finite values")

    @property
    def n(self) -> int | None:
        return None if self.values is None else len(self.values)

    def quantile_of(self, v: float) -> float:
        """Share of the distribution at or below ``v`` (mid-rank for ties)."""
        if not np.isfinite(v):
            return float("nan")
        if self.values is not None:
            lo = np.searchsorted(self.values, v, side="left")
            hi = np.searchsorted(self.values, v, side="right")
            return float((lo + hi) / 2 / len(self.values))
        return float(np.interp(v, self.quantiles["value"], self.quantiles["quantile"]))

    def mode(self) -> float:
        """The densest value: Gaussian-KDE argmax (values) or the densest quantile interval's midpoint."""
        if self.values is not None:
            from scipy.stats import gaussian_kde

            if np.ptp(self.values) == 0:
                return float(self.values[0])
            grid = np.linspace(self.values[0], self.values[-1], 512)
            return float(grid[np.argmax(gaussian_kde(self.values)(grid))])
        v, q = self.quantiles["value"].to_numpy(float), self.quantiles["quantile"].to_numpy(float)
        dens = np.diff(q) / np.maximum(np.diff(v), 1e-12)
        i = int(np.argmax(dens))
        return float((v[i] + v[i + 1]) / 2)

    def median(self) -> float:
        if self.values is not None:
            return float(np.median(self.values))
        return float(np.interp(0.5, self.quantiles["quantile"], self.quantiles["value"]))


def compare_to_training(scores: pd.DataFrame, reference: ReferenceDistribution, *, measure: str = "luma_709",
                        probe: str = "exposure", protocol: str = "nvidia", n_boot: int = 2000,
                        seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare D's preferred value of ``measure`` (over one probe's images) with the training distribution.

    Returns
    -------
    tidy : DataFrame
        Results-schema rows for model ``training:<probe>:<measure>:<protocol>``: the score model's
        terms plus ``preferred_value`` (argmax, bootstrap interval), ``preferred_quantile``
        (interval: the quantiles of the interval's ends), ``training_mode``, ``training_median``
        and ``slope_at_training_mode``.
    curve : DataFrame
        Score curve over the measure (``level`` holds the measure's value).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = np.tile(np.linspace(0.1, 0.9, 9), 5); base = np.repeat(np.arange(5), 9)
    >>> s = -(x - 0.7) ** 2 * 10 + rng.normal(0, 1, 5)[base] + rng.normal(0, .02, 45)
    >>> d = pd.DataFrame(dict(probe="exposure", protocol="nvidia", base=base, luma_709=x, score=s))
    >>> ref = ReferenceDistribution(values=rng.normal(0.45, 0.08, 2000))
    >>> t, _ = compare_to_training(d, ref, n_boot=200)
    >>> t.set_index("term").loc["preferred_quantile", "estimate"] > 0.95
    np.True_
    """
    d = scores[(scores["probe"] == probe) & (scores["protocol"] == protocol)].copy()
    if measure not in d.columns:
        raise ValueError(f"probe scores have no column {measure!r}; measures: see discbias.probes.run.PROBE_MEASURES")
    d["level"] = d[measure]
    mode = reference.mode()
    name = f"training:{probe}:{measure}:{protocol}"
    tidy, curve = fit_dose_response(d, probe=probe, protocol=protocol, n_boot=n_boot, seed=seed,
                                    slope_points={"slope_at_training_mode": mode}, model_name=name)
    am = tidy.set_index("term").loc["argmax_level"]
    common = {k: am[k] for k in ("model", "conf_level", "method", "n_obs", "n_groups", "converged", "warnings",
                                  "probe", "protocol")}
    extra = [
        dict(term="preferred_value", estimate=am["estimate"], conf_low=am["conf_low"], conf_high=am["conf_high"],
             at_edge=am.get("at_edge"), **common),
        dict(term="preferred_quantile", estimate=reference.quantile_of(am["estimate"]),
             conf_low=reference.quantile_of(am["conf_low"]), conf_high=reference.quantile_of(am["conf_high"]),
             **{**common, "method": "quantile of the preferred value in the reference distribution"}),
        dict(term="training_mode", estimate=mode, **{**common, "method": "mode of the reference distribution"}),
        dict(term="training_median", estimate=reference.median(), **{**common, "method": "median of the reference distribution"}),
    ]
    tidy = tidy[tidy["term"] != "argmax_level"]
    out = pd.concat([tidy, result_frame(extra)], ignore_index=True)
    out["measure"], out["reference"], out["reference_n"] = measure, reference.source, reference.n
    return out, curve
