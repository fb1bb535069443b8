"""One table of defaults, read by the configuration schema, the command line and the Python API.

As in torch-fidelity's ``defaults.py``: a default is written once, here. The configuration schema
(:mod:`discbias.schema`) fills a study configuration's missing keys from :data:`DEFAULTS`, the
command line uses them as its options' defaults (``discbias score --batch-size``...), and the
Python API reads them (:class:`discbias.stats.bayes.SamplerSettings`,
:func:`discbias.scoring.config.scoring_config`). The resolved configuration, with these defaults
filled in, is written to ``build/results/config_resolved.json`` by ``discbias fit``.

Examples
--------
>>> DEFAULTS["models"]["sampler"], DEFAULTS["scoring"]["batch_size"]
('nutpie', 8)
>>> from discbias.stats.bayes import SamplerSettings
>>> SamplerSettings().draws == DEFAULTS["models"]["draws"]
True
"""

from __future__ import annotations

#: The study configuration a command reads when ``--config`` is not given.
DEFAULT_CONFIG = "analysis/grissom2024.toml"

#: Defaults of every table of a study configuration (and of the matching command-line options).
DEFAULTS: dict[str, dict] = {
    # [study]
    "study": dict(on_invalid="report"),
    # [models]: NUTS settings of the Bayesian models and bootstrap resamples of the Study 2 models.
    # 2,000 tuning steps and target_accept 0.95: at 1,000 / 0.8 the RGB model had 6 divergent
    # transitions on the released data; at these settings it has none.
    "models": dict(draws=1000, tune=2000, chains=4, cores=2, target_accept=0.95, seed=20240215,
                   sampler="nutpie", n_boot=100),
    # [scoring] (and `discbias score`)
    "scoring": dict(device="cpu", batch_size=8, workers=2, fp32=False, min_side=32, top_n=100,
                    protocols=["grissom2024", "nvidia"]),
    # one input protocol: [scoring] protocols = [{...}] (and `discbias score --protocol/--resize...`);
    # `draws` and `seed` apply to grouping = "reference-group" only
    "protocol": dict(input="nvidia", resize="stretch", filter="lanczos", grouping="single", flip=False,
                     draws=8, seed=0),
    # [probes]
    "probes": dict(demo=False, reference_measure="luma_709", reference_probe="exposure", protocols=["nvidia"],
                   face_method="template", fields=True, batch_size=8, n_boot=2000, levels_only=True,
                   device="cpu"),
    # [probes.demo_network] and [probes.demo_inputs] (`make probes-demo`)
    "demo_network": dict(seed=0, resolution=256),
    "demo_inputs": dict(seed=0, synthetic_tones=[2, 8], n_reference=40),
    # [verify] (`discbias verify`): see discbias.reproduce.verify.Tolerances
    "verify": dict(rtol=1e-9, atol=1e-12, rtol_iterative=1e-4, rtol_derived=1e-3, posterior_k=5.0, bootstrap_k=5.0),
    # [paper]
    "paper": dict(bibliography="references.bib", csl="chicago-author-date.csl",
                  # render checks: pages of main text (title page to the references) and the least
                  # filled share of a main-text page's text area (discbias.report.checks)
                  main_text_max_pages=20, min_page_fill=0.5),
}
