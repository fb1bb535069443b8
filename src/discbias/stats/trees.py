"""Regression trees (scikit-learn) in the tidy results schema, with the split at each depth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import result_frame


def tree_splits(tree, features: list[str]) -> pd.DataFrame:
    """Every internal node of a fitted ``DecisionTreeRegressor``: depth, feature, threshold, n.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> X = pd.DataFrame({"a": np.arange(20.0), "b": np.zeros(20)}); y = (X.a > 9).astype(float)
    >>> t = DecisionTreeRegressor(max_depth=1).fit(X, y)
    >>> tree_splits(t, ["a", "b"])[["depth", "feature"]].values.tolist()
    [[0, 'a']]
    """
    t = tree.tree_
    depth = np.zeros(t.node_count, int)
    parent = np.full(t.node_count, -1)
    rows = []
    for node in range(t.node_count):
        left, right = t.children_left[node], t.children_right[node]
        if left != -1:
            depth[left] = depth[right] = depth[node] + 1
            parent[left] = parent[right] = node
            rows.append(dict(node=node, parent=int(parent[node]), depth=int(depth[node]), feature=features[t.feature[node]],
                             threshold=float(t.threshold[node]), n_samples=int(t.n_node_samples[node]),
                             value=float(t.value[node].ravel()[0]),
                             left_value=float(t.value[left].ravel()[0]), right_value=float(t.value[right].ravel()[0])))
    return pd.DataFrame(rows)


def regression_tree(df: pd.DataFrame, y: str, features: list[str], *, max_depth: int = 5, model: str = "tree",
                    cv: int = 5, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Fit a regression tree, with k-fold cross-validated R^2 (shuffled, seeded folds).

    Returns
    -------
    tidy : DataFrame
        Rows ``cv_r2`` (mean over folds; interval mean +/- t SE over folds; per-fold values in
        ``fold_r2``), ``train_r2``, and ``importance: <feature>`` (impurity importance).
    splits : DataFrame
        :func:`tree_splits` of the tree fitted on all rows, with ``model``.
    tree : DecisionTreeRegressor

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)}); X["y"] = 2 * (X.a > 0) + rng.normal(0, .3, 300)
    >>> tidy, splits, _ = regression_tree(X, "y", ["a", "b"], max_depth=2)
    >>> splits.iloc[0]["feature"], float(tidy.set_index("term").loc["cv_r2", "estimate"]) > 0.8
    ('a', True)
    """
    from scipy import stats
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.tree import DecisionTreeRegressor

    d = df[[y, *features]].apply(pd.to_numeric, errors="coerce")
    bad = d.isna().any(axis=1)
    d = d[~bad]
    warns = [f"{int(bad.sum())} row{'' if int(bad.sum()) == 1 else 's'} dropped for missing values"] if bad.any() else []
    X, yv = d[features], d[y].to_numpy(float)
    reg = DecisionTreeRegressor(max_depth=max_depth, random_state=seed)
    folds = cross_val_score(reg, X, yv, cv=KFold(cv, shuffle=True, random_state=seed), scoring="r2")
    tree = reg.fit(X, yv)
    se = folds.std(ddof=1) / np.sqrt(cv)
    tq = stats.t.ppf(0.975, cv - 1)
    method = f"regression tree (max_depth={max_depth}), {cv}-fold CV (shuffled, seed {seed})"
    common = dict(model=model, method=method, n_obs=len(d), converged=True, warnings=warns, max_depth=max_depth)
    rows = [dict(common, term="cv_r2", estimate=float(folds.mean()), std_error=float(se),
                 conf_low=float(folds.mean() - tq * se), conf_high=float(folds.mean() + tq * se), conf_level=0.95,
                 fold_r2=";".join(f"{v:.4f}" for v in folds)),
            dict(common, term="train_r2", estimate=float(tree.score(X, yv)))]
    for f, imp in zip(features, tree.feature_importances_):
        rows.append(dict(common, term=f"importance: {f}", estimate=float(imp)))
    splits = tree_splits(tree, features)
    splits.insert(0, "model", model)
    return result_frame(rows), splits, tree
