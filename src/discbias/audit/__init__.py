"""Audit any StyleGAN-family discriminator on any labelled image set (``discbias audit``).

One TOML configuration (:mod:`discbias.audit.config`; ``discbias audit init`` writes a commented
starter) drives score -> measure -> join -> reliability -> models -> claims -> figures -> render
as declared steps on :class:`discbias.engine.Engine` (:mod:`discbias.audit.run`).

The package itself is callable: ``discbias.audit(config)`` is :func:`discbias.audit.run.audit`.

Examples
--------
>>> import discbias
>>> callable(discbias.audit), discbias.audit.audit is discbias.audit.run.audit
(True, True)
>>> discbias.audit("analysis/my-audit.toml")  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types

from . import run
from .config import AuditConfig, load_audit_config
from .run import AuditError, audit, audit_engine

__all__ = ["audit", "audit_engine", "AuditConfig", "AuditError", "load_audit_config"]


class _CallableModule(types.ModuleType):
    """Makes ``discbias.audit(config)`` call :func:`audit` while ``discbias.audit`` stays a package."""

    def __call__(self, config, **kwargs):
        return audit(config, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
