"""discbias: audit GAN discriminators for colour, luminance and demographic bias.

``discbias.audit(config)`` runs an audit configuration end to end (:mod:`discbias.audit`); the
science lives in :mod:`discbias.stats`, :mod:`discbias.scoring`, :mod:`discbias.measures` and
:mod:`discbias.report` (see ``docs/api.md``).
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "audit":  # imported on first use (it pulls in pandas, torch and the engine)
        import importlib

        return importlib.import_module(".audit", __name__)
    raise AttributeError(f"module 'discbias' has no attribute {name!r}")
