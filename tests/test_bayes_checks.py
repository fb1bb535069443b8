"""Prior- and posterior-predictive checks and heavy-tailed summaries of the Bayesian models."""

import numpy as np
import pandas as pd
import pytest

from discbias.stats.bayes_checks import (elicited_prior_predictive, heavy_tail_summary, predictive_check,
                                         replicate_from_posterior)


def test_posterior_predictive_flags_a_misfit_and_passes_a_fit():
    import arviz as az

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = 1 + X @ [0.5, -0.3] + rng.normal(0, 1, 200)
    good = az.from_dict(posterior={"b0": rng.normal(1, 0.05, (2, 300)), "b_0": rng.normal(0.5, 0.05, (2, 300)),
                                   "b_1": rng.normal(-0.3, 0.05, (2, 300)), "sigma": rng.normal(1, 0.03, (2, 300))})
    c, _ = predictive_check(y, replicate_from_posterior(good, X), model="m", kind="posterior")
    p = c.set_index("statistic")["p_predictive"]
    assert 0.02 < p["sd"] < 0.98 and 0.02 < p["mean"] < 0.98
    # a model whose residual SD is a third of the data's: the SD check says so
    bad = az.from_dict(posterior={**{k: np.asarray(good.posterior[k]) for k in ("b0", "b_0", "b_1")},
                                  "sigma": np.full((2, 300), 0.3)})
    c, _ = predictive_check(y, replicate_from_posterior(bad, X), model="m", kind="posterior")
    assert c.set_index("statistic").loc["sd", "p_predictive"] < 0.01


def test_prior_predictive_of_the_figure_7_model_and_nu_quantiles():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 7, size=(60, 3))
    y = 150 - 2 * X[:, 0] + rng.normal(0, 5, 60)
    rep = elicited_prior_predictive(y, X, ["a", "b", "c"], np.array([0, 1, 2]), spec="paper", n_draws=40)
    assert rep.shape == (40, 60) and np.isfinite(rep).all()
    import arviz as az

    draws = np.abs(rng.standard_cauchy((4, 1000))) * 2
    r = heavy_tail_summary(az.from_dict(posterior={"nu": draws}), "nu", model="m")
    # the median stays near the half-Cauchy(2) median (2) while the SD is dominated by the tail: the SD
    # (whose Monte Carlo error is not estimable for a tail this heavy) is not reported, quantiles are,
    # each with its MCSE
    assert 1.5 < r["median"] < 2.5 and draws.std() > 10 * r["median"]
    assert "sd" not in r and "mean" not in r
    assert all(np.isfinite(r[f"mcse_{k}"]) and r[f"mcse_{k}"] > 0 for k in ("q025", "q25", "median", "q75", "q975"))


def _conjugate(m0, s0, seed=0):
    """Exact posterior draws of mu in y ~ N(mu, 1), mu ~ N(m0, s0), with log prior and log likelihood."""
    import arviz as az
    from scipy import stats

    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 1.0, 50)
    prec = 1 / s0 ** 2 + len(y)
    mean = (m0 / s0 ** 2 + y.sum()) / prec
    mu = rng.normal(mean, 1 / np.sqrt(prec), (4, 1000))
    import xarray as xr

    d = az.from_dict(posterior={"mu": mu})
    d.add_groups(log_prior=xr.Dataset({"prior": (("chain", "draw"), stats.norm.logpdf(mu, m0, s0))}),
                 log_likelihood=xr.Dataset({"y": (("chain", "draw", "obs"),
                                                  stats.norm.logpdf(y[None, None, :], mu[..., None], 1.0))}))
    return d


def test_power_scaling_flags_a_prior_data_conflict_and_not_a_vague_prior():
    from discbias.stats.bayes_checks import power_scaling

    vague = power_scaling(_conjugate(0.0, 100.0), model="m", var_names=["mu"]).iloc[0]
    conflict = power_scaling(_conjugate(3.0, 0.15), model="m", var_names=["mu"]).iloc[0]
    assert vague["diagnosis"] == "-" and vague["prior_sensitivity"] < 0.05
    assert conflict["diagnosis"] == "prior-data conflict"


def test_elicited_log_densities_are_finite_on_draws():
    import arviz as az

    from discbias.stats.bayes_checks import elicited_log_densities

    rng = np.random.default_rng(2)
    n, k = 30, 3
    X = rng.uniform(1, 7, (n, k))
    y = 100 + X @ [1.0, -1.0, 0.5] + rng.normal(0, 3, n)
    post = {"nu": np.abs(rng.normal(3, 1, (2, 50))), "sigma_c": np.abs(rng.normal(1, 0.2, (2, 50, 2))),
            "mu_c": rng.normal(0, 1, (2, 50, k)), "b0": rng.normal(100, 1, (2, 50)),
            "sigma": np.abs(rng.normal(3, 0.2, (2, 50))), "sigma_0": np.abs(rng.normal(1, 0.2, (2, 50))),
            "mu_0": rng.normal(100, 1, (2, 50)), "s_0": np.abs(rng.normal(1, 0.2, (2, 50)))}
    post.update({f"b_{j}": rng.normal(b, 0.1, (2, 50)) for j, b in enumerate([1.0, -1.0, 0.5])})
    out = elicited_log_densities(az.from_dict(posterior=post), y, X, np.array([0, 0, 1]), spec="paper")
    assert np.isfinite(np.asarray(out.log_prior["prior"])).all()
    assert np.asarray(out.log_likelihood["y"]).shape == (2, 50, n)


def test_prior_predictive_of_the_rgb_model_follows_its_priors():
    # forward draws of the paper's RGB priors: b0 ~ N(mean y, sigma_0), b_c ~ N(0, sigma_c), every sigma ~ |t_10|;
    # at X = 0 the replicated scores centre on mean(y) with SD sqrt(E sigma_0^2 + E sigma^2) = sqrt(2 * 10 / 8)
    from discbias.stats.bayes_checks import rgb_prior_predictive

    rng = np.random.default_rng(3)
    y = rng.normal(120, 10, 40)
    r = rgb_prior_predictive(y, np.zeros((40, 3)), n_draws=20000, seed=1)
    assert abs(np.median(r) - y.mean()) < 0.05
    assert np.std(r[:, 0]) == pytest.approx(np.sqrt(2 * 10 / 8), rel=0.05)
    # with the channel means (0-255) the slopes' prior spreads the scores far beyond the data: the check flags it
    X = rng.uniform(0, 255, (40, 3))
    chk, dens = predictive_check(y, rgb_prior_predictive(y, X, n_draws=400, seed=2), model="rgb_bayes", kind="prior")
    sd = chk.set_index("statistic").loc["sd"]
    assert sd["rep_median"] > 5 * sd["observed"] and sd["p_predictive"] > 0.95


def test_heavy_tail_summary_of_a_fit_read_back_from_the_cache(tmp_path):
    # the fit cache returns the draws as a LazyInferenceData; ArviZ's MCSE needs the InferenceData itself
    import arviz as az

    from discbias.stats.fitcache import LazyInferenceData

    rng = np.random.default_rng(0)
    idata = az.from_dict(posterior={"nu": np.abs(rng.standard_cauchy((2, 400))) * 2})
    idata.to_netcdf(str(tmp_path / "draws.nc"))
    lazy = heavy_tail_summary(LazyInferenceData(tmp_path / "draws.nc"), "nu", model="m")
    direct = heavy_tail_summary(idata, "nu", model="m")
    assert lazy["median"] == direct["median"] and lazy["mcse_median"] == pytest.approx(direct["mcse_median"])


def test_power_scaling_mcse_matches_the_spread_over_independent_runs():
    """The delete-a-block jackknife MCSE of psens is calibrated: over 12 independent sets of exact
    posterior draws (same data, same model) the SD of the sensitivities agrees with the mean MCSE
    within a factor of 2 (the SD of 12 draws has a relative error of about 1/sqrt(22) = 21%, so
    a calibrated MCSE lands outside [0.5, 2] with probability well below 0.001)."""
    import arviz as az
    import xarray as xr
    from scipy import stats

    from discbias.stats.bayes_checks import power_scaling

    y = np.random.default_rng(0).normal(0.0, 1.0, 50)
    m0, s0 = 1.0, 0.3
    prec = 1 / s0 ** 2 + len(y)
    mean = (m0 / s0 ** 2 + y.sum()) / prec
    rows = []
    for seed in range(12):
        mu = np.random.default_rng(100 + seed).normal(mean, 1 / np.sqrt(prec), (4, 1000))
        d = az.from_dict(posterior={"mu": mu})
        d.add_groups(log_prior=xr.Dataset({"prior": (("chain", "draw"), stats.norm.logpdf(mu, m0, s0))}),
                     log_likelihood=xr.Dataset({"y": (("chain", "draw", "obs"),
                                                      stats.norm.logpdf(y[None, None, :], mu[..., None], 1.0))}))
        rows.append(power_scaling(d, model="m", var_names=["mu"]).iloc[0])
    t = pd.DataFrame(rows)
    assert (t["n_jackknife_blocks"] == 20).all()
    for col in ("prior_sensitivity", "likelihood_sensitivity"):
        ratio = t[col].std(ddof=1) / t[f"mcse_{col}"].mean()
        assert 0.5 < ratio < 2.0, (col, ratio, t[col].std(ddof=1), t[f"mcse_{col}"].mean())


def test_density_bands_mcse_matches_the_spread_over_independent_replications():
    """The pointwise quantiles of replicated densities move between two sets of replications by about
    their MCSE: over 12 independent sets, the SD of the median density at the mode agrees with its
    mean MCSE within a factor of 2."""
    from discbias.stats.bayes_checks import density_bands

    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    grid = np.linspace(-3, 3, 25)
    meds, mcses = [], []
    for seed in range(12):
        d = density_bands(y, np.random.default_rng(seed).normal(size=(500, 200)), grid, model="m", kind="posterior")
        meds.append(d["rep_median"].to_numpy())
        mcses.append(d["mcse_rep_median"].to_numpy())
    ratio = np.std(meds, axis=0, ddof=1)[12] / np.mean(mcses, axis=0)[12]
    assert 0.5 < ratio < 2.0, ratio
