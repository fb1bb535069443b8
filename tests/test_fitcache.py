"""The content-keyed fit cache (discbias.stats.fitcache) around the MCMC fits.

The sampler is counted by wrapping ``discbias.stats.bayes._sample``: a second call with the same
data, specification, settings and code must not sample, and a damaged entry is reported with the
fit and refitted (one real PyMC fit, tiny settings). The key's sensitivity (one data value, the
specification, each sampler setting) is tested on a stand-in fit with the same call shape and
return values (tidy table and ``InferenceData``), which samples nothing and so runs in
milliseconds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from discbias.results import result_frame
from discbias.stats import bayes
from discbias.stats.fitcache import FitCache, data_digest

SMALL = bayes.SamplerSettings(draws=60, tune=60, chains=1, cores=1, seed=1, sampler="pymc")
RGB = ("red_mean", "green_mean", "blue_mean")
COLS = ["score", *RGB]
CALLS: list = []


def standin_bayes(df, y, xs, *, model, settings, spec="paper"):
    """Same call shape and return values as rgb_bayes; counts its 'sampler' runs."""
    import arviz as az

    CALLS.append((model, settings))
    rng = np.random.default_rng(settings.seed)
    b = df[y].mean() + rng.normal(0, 0.1, (settings.chains, settings.draws))
    tidy = result_frame([dict(model=model, term="Intercept", estimate=float(b.mean()), std_error=float(b.std()),
                              converged=True, warnings=[], spec=spec, method="stand-in")])
    return tidy, az.from_dict(posterior={"b0": b})


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = bayes._sample

    def sample(model, settings):
        calls.append(settings)
        return real(model, settings)

    monkeypatch.setattr(bayes, "_sample", sample)
    monkeypatch.delenv("DISCBIAS_NO_FIT_CACHE", raising=False)
    CALLS.clear()
    return calls


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    d = pd.DataFrame({c: rng.uniform(0, 255, 80) for c in RGB} | {"unused": ["a"] * 80})
    d["score"] = 5 + 0.02 * d["red_mean"] + rng.normal(0, 1, 80)
    return d


def _rgb(cache, d, func=bayes.rgb_bayes, **kw):
    kw = dict(model="rgb_bayes", settings=SMALL) | kw
    return cache.fit(func, d, "score", RGB, columns=COLS, **kw)


@pytest.fixture(autouse=True)
def _log_to_stderr():
    """The command line's logging (records to stderr): the warnings these tests read are the ones a
    user sees; without it they depended on an earlier test in the same worker having set it up."""
    from discbias.log import setup_logging

    setup_logging(0)


def test_mcmc_fit_is_reused_and_a_damaged_entry_refitted(tmp_path, counted, data, capsys):
    cache = FitCache(tmp_path / "fits")
    tidy1, idata1 = _rgb(cache, data)
    assert len(counted) == 1
    tidy2, idata2 = _rgb(FitCache(tmp_path / "fits"), data)  # as a new `discbias fit` process would
    assert len(counted) == 1, "the sampler ran again for an unchanged fit"
    pd.testing.assert_frame_equal(tidy1, tidy2)  # the tidy table with its diagnostics, exactly
    # the draws come back too (what a figure of the posterior would read)
    np.testing.assert_array_equal(np.asarray(idata1.posterior["b_0"]), np.asarray(idata2.posterior["b_0"]))
    # damage the stored table: reported with the fit, refitted (never served, never a crash)
    entry = cache.entry(cache.key(bayes.rgb_bayes, data, ("score", RGB), dict(model="rgb_bayes", settings=SMALL),
                                  COLS)[0])
    f = entry / "part0.parquet"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))
    again, _ = _rgb(FitCache(tmp_path / "fits"), data)
    assert len(counted) == 2, "a damaged entry was served instead of refitting"
    assert again["warnings"].str.contains("fit cache entry .* was unreadable .*refitted", regex=True).all()
    assert "unreadable" in capsys.readouterr().err
    pd.testing.assert_frame_equal(again.drop(columns=["warnings", "sampling_seconds"]),
                                  tidy1.drop(columns=["warnings", "sampling_seconds"]))
    log = [json.loads(x)["status"] for x in (tmp_path / "fits" / "log.jsonl").read_text().splitlines()]
    assert log == ["miss", "hit", "corrupt"]


def test_unused_columns_row_labels_and_column_order_are_not_part_of_the_key(tmp_path, counted, data):
    cache = FitCache(tmp_path / "fits")
    _rgb(cache, data, standin_bayes)
    _rgb(cache, data.assign(unused="b").set_axis(range(100, 180))[list(data.columns[::-1])], standin_bayes)
    assert len(CALLS) == 1


@pytest.mark.parametrize("change", ["one value", "spec", "model id", "draws", "tune", "chains", "seed",
                                    "target_accept", "sampler"])
def test_a_change_refits_exactly_that_fit(tmp_path, counted, data, change):
    cache = FitCache(tmp_path / "fits")
    _rgb(cache, data, standin_bayes)
    cache.fit(standin_bayes, data, "score", ["red_mean"], model="other", settings=SMALL, columns=["score", "red_mean"])
    assert len(CALLS) == 2
    d, kw = data, {}
    if change == "one value":
        d = data.copy()
        d.loc[d.index[7], "blue_mean"] += 1.0
    elif change == "spec":
        kw = dict(spec="centred")
    elif change == "model id":
        kw = dict(model="rgb_bayes_2")
    else:
        new = dict(draws=61, tune=61, chains=2, seed=2, target_accept=0.9, sampler="nutpie")[change]
        kw = dict(settings=bayes.SamplerSettings(**(vars(SMALL) | {change: new})))
    _rgb(cache, d, standin_bayes, **kw)
    assert len(CALLS) == 3, f"a change of {change} did not refit"
    _rgb(cache, d, standin_bayes, **kw)
    _rgb(cache, data, standin_bayes)
    cache.fit(standin_bayes, data, "score", ["red_mean"], model="other", settings=SMALL, columns=["score", "red_mean"])
    assert len(CALLS) == 3, "an unchanged fit was refitted"
    assert [e["status"] for e in cache.events] == ["miss", "miss", "miss", "hit", "hit", "hit"]


@pytest.mark.parametrize("damage", ["flipped byte", "truncated meta", "missing part", "other key", "empty folder"])
def test_a_damaged_entry_is_reported_and_refitted(tmp_path, counted, data, damage, capsys):
    cache = FitCache(tmp_path / "fits")
    tidy, idata = _rgb(cache, data, standin_bayes)
    key, _ = cache.key(standin_bayes, data, ("score", RGB), dict(model="rgb_bayes", settings=SMALL), COLS)
    entry = cache.entry(key)
    if damage == "flipped byte":
        f = entry / "part1.nc"
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    elif damage == "truncated meta":
        m = entry / "meta.json"
        m.write_text(m.read_text()[:40])
    elif damage == "missing part":
        (entry / "part0.parquet").unlink()
    elif damage == "other key":
        m = entry / "meta.json"
        m.write_text(json.dumps(json.loads(m.read_text()) | {"key": "0" * 64}))
    else:
        for f in entry.iterdir():
            f.unlink()
    again, _ = _rgb(FitCache(tmp_path / "fits"), data, standin_bayes)
    assert len(CALLS) == 2, "a damaged entry was served instead of refitting"
    assert again["warnings"].str.contains(f"fit cache entry {entry} was unreadable").all()
    assert "refitted" in capsys.readouterr().err
    # the refit was stored cleanly: the next run hits, without the warning
    third, idata3 = _rgb(FitCache(tmp_path / "fits"), data, standin_bayes)
    assert len(CALLS) == 2 and not third["warnings"].str.contains("fit cache").any()
    pd.testing.assert_frame_equal(third, tidy)
    np.testing.assert_array_equal(np.asarray(idata3.posterior["b0"]), np.asarray(idata.posterior["b0"]))


def test_writes_are_atomic_and_unsupported_values_are_refused(tmp_path, data):
    cache = FitCache(tmp_path / "fits")

    def bad(df, *, model):
        return object()

    with pytest.raises(TypeError, match="cannot store"):
        cache.fit(bad, data, model="m")
    # nothing half-written stays behind, under a key or as a temporary folder
    assert not [p for p in (tmp_path / "fits").rglob("*") if p.is_dir() and len(p.name) == 64]
    assert not list((tmp_path / "fits").rglob(".tmp-*"))
    with pytest.raises(TypeError, match="cannot make a key"):
        cache.fit(lambda df, x, model: None, data, object(), model="m")
    with pytest.raises(KeyError, match="not in the data"):
        data_digest(data, ["nope"])


def test_switched_off_by_the_environment(tmp_path, counted, data, monkeypatch):
    monkeypatch.setenv("DISCBIAS_NO_FIT_CACHE", "1")
    cache = FitCache(tmp_path / "fits")
    _rgb(cache, data, standin_bayes)
    _rgb(cache, data, standin_bayes)
    assert len(CALLS) == 2 and not (tmp_path / "fits").exists()
