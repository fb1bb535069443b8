"""Software provenance: the distributions a run imported, with their versions.

:func:`imported_distributions` maps every module loaded in this process (``sys.modules``) to the
distribution that installed it (:func:`importlib.metadata.packages_distributions`), so the
record holds what the run really used (nutpie, krippendorff, pillow, scikit-image,
safetensors... and their own dependencies), not a hand-kept list that falls behind the code.

Examples
--------
>>> import numpy
>>> versions = imported_distributions()
>>> versions["numpy"] == numpy.__version__
True
>>> "python" in software_versions() and software_versions()["discbias"] != "not installed"
True
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import platform
import re
import sys
from pathlib import Path
from typing import Iterable

__all__ = ["ALWAYS", "imported_distributions", "software_versions", "canonical", "project_commit"]

#: Distributions recorded even when the run did not import them (the renderers run in another
#: process; the samplers are imported only when a Bayesian model is fitted).
ALWAYS = ["discbias", "numpy", "pandas", "scipy", "statsmodels", "patsy", "pingouin", "pymc", "nutpie", "arviz",
          "scikit-learn", "scikit-image", "krippendorff", "matplotlib", "pillow", "torch", "safetensors",
          "threadpoolctl", "jinja2", "pyarrow", "pydantic", "pypandoc-binary", "typst"]


def canonical(name: str) -> str:
    """A distribution name as PEP 503 normalises it (``Jinja2`` -> ``jinja2``, ``pypandoc_binary`` -> ``pypandoc-binary``).

    Examples
    --------
    >>> canonical("Jinja2"), canonical("pypandoc_binary")
    ('jinja2', 'pypandoc-binary')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_distributions(modules: Iterable[str] | None = None) -> dict[str, str]:
    """``{distribution: version}`` of every distribution whose modules are loaded (sorted by name).

    Parameters
    ----------
    modules : iterable of str, optional
        Module names (default: ``sys.modules``). Standard-library modules have no distribution
        and are left out.
    """
    tops = {m.split(".")[0] for m in (sys.modules if modules is None else modules)}
    by_module = md.packages_distributions()
    out: dict[str, str] = {}
    for top in tops:
        for dist in by_module.get(top, []):
            name = canonical(dist)
            if name not in out:
                try:
                    out[name] = md.version(dist)
                except md.PackageNotFoundError:  # metadata of a half-removed install: say so
                    out[name] = "unknown"
    if "discbias" in tops and "discbias" not in out:  # an editable install maps no top-level name
        out["discbias"] = md.version("discbias")
    return dict(sorted(out.items()))


def software_versions(always: Iterable[str] = ALWAYS) -> dict[str, str]:
    """Python, the distributions in ``always`` and every distribution this process imported.

    Returns ``{name: version}``: ``python`` first, then the distributions sorted by name; one in
    ``always`` that is not installed is recorded as ``"not installed"``.
    """
    out = dict(imported_distributions())
    for name in always:
        key = canonical(name)
        if key not in out:
            try:
                out[key] = md.version(name)
            except md.PackageNotFoundError:
                out[key] = "not installed"
    return {"python": platform.python_version(), **dict(sorted(out.items()))}


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def project_commit(*candidates: Path) -> dict:
    """The git commit of the discbias code (its package folder first, then ``candidates``).

    Returns ``{"commit", "commit_short", "dirty", "repository_path"}``; ``commit`` is ``None``
    outside a git checkout.

    Examples
    --------
    >>> sorted(project_commit())
    ['commit', 'commit_short', 'dirty', 'repository_path']
    """
    for where in (Path(__file__).resolve().parent, *candidates):
        where = Path(where)
        if not where.exists():
            continue
        commit = _git(["rev-parse", "HEAD"], where)
        if commit:
            status = _git(["status", "--porcelain", "--untracked-files=no"], where)
            return dict(commit=commit, commit_short=commit[:7], dirty=bool(status),
                        repository_path=_git(["rev-parse", "--show-toplevel"], where))
    return dict(commit=None, commit_short=None, dirty=None, repository_path=None)
