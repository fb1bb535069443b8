"""Statistical models and tests; every function returns a tidy DataFrame (:data:`discbias.results.RESULT_COLUMNS`).

Topic modules: :mod:`~discbias.stats.regression` (OLS), :mod:`~discbias.stats.mixed` (random-intercept
mixed models, nested variance components), :mod:`~discbias.stats.crossed` (crossed random intercepts,
Bambi or statsmodels), :mod:`~discbias.stats.bayes` (the 2024 paper's Bayesian regressions),
:mod:`~discbias.stats.anova`, :mod:`~discbias.stats.groups` (group tests and cell summaries),
:mod:`~discbias.stats.correlation`, :mod:`~discbias.stats.quantile`, :mod:`~discbias.stats.reliability`
(ICC, Krippendorff's alpha), :mod:`~discbias.stats.trees`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from discbias.stats import ols
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x": rng.normal(size=40)}); df["y"] = 1 + 2 * df.x + rng.normal(size=40)
>>> tidy, _ = ols("y ~ x", df, model="demo")
>>> tidy["term"].tolist()
['Intercept', 'x']
"""

from .anova import lm_anova
from .bayes import elicited_bayes, posterior_table, rgb_bayes
from .correlation import add_holm, holm, partial_correlations
from .crossed import crossed_mixed, parse_random_effects
from .groups import category_shares, cell_summary, chisq_independence, correlation, welch_ttest
from .mixed import cell_marginal_means, mixedlm, nested_variance_components
from .quantile import quantreg
from .regression import anova_type1, ols
from .reliability import icc_average, item_reliability, krippendorff_interval
from .trees import regression_tree, tree_splits

__all__ = [
    "ols", "anova_type1", "lm_anova", "mixedlm", "nested_variance_components", "cell_marginal_means",
    "crossed_mixed", "parse_random_effects", "rgb_bayes", "elicited_bayes", "posterior_table", "welch_ttest",
    "category_shares", "chisq_independence", "cell_summary", "correlation", "holm", "add_holm",
    "partial_correlations", "quantreg", "icc_average", "krippendorff_interval", "item_reliability",
    "regression_tree", "tree_splits",
]
