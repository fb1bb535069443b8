"""Publish a build and check a rebuild against it: ``discbias bundle`` and ``discbias verify``.

:mod:`discbias.reproduce.bundle` writes ``build/bundle/<study>-<commit>.zip`` (results, values,
claims, provenance, configuration, paper, environment lock, manifest of sha256s, RO-Crate
metadata); :mod:`discbias.reproduce.verify` compares a rebuild with a bundle number by number.
"""

from .bundle import Bundle, BundleError, make_bundle, read_bundle
from .verify import VerifyResult, Tolerances, verify_build

__all__ = ["Bundle", "BundleError", "make_bundle", "read_bundle", "VerifyResult", "Tolerances", "verify_build"]
