"""``discbias bundle``: what a build produced, in one zip another machine can check.

A bundle ``build/bundle/<study>-<git short hash>.zip`` holds::

    bundle.json                   study id, title, commit that fitted the results (and whether its
                                  tree had uncommitted changes; the commit at bundling time beside
                                  it), the templates' hash, Python and platform, creation time
    results/*.csv                 every results table (claims.csv and provenance.csv among them)
    values.json                   every scalar the paper prints
    config/<study>.toml           the study configuration
    report/paper.html, paper.pdf  the rendered paper
    environment/requirements.txt  every installed distribution, ``name==version`` (``pip install -r``)
    ro-crate-metadata.json        RO-Crate 1.x description (for Zenodo and other repositories)
    manifest-sha256.txt           ``<sha256>  <path>`` for every other file

:func:`read_bundle` checks the manifest: a file whose bytes do not match, a file missing from the
zip or a file the manifest does not list raises :class:`BundleError` naming it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import json
import platform
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..provenance import _git, project_commit  # noqa: F401 (re-exported for verify)
from ..fetch import digest_of_hashes, sha256_file
from ..errors import UserError

FORMAT = "discbias-bundle/1"
MANIFEST = "manifest-sha256.txt"
META = "bundle.json"
LOCK = "environment/requirements.txt"
CRATE = "ro-crate-metadata.json"
#: Fixed timestamp of every zip member, so a bundle's bytes depend only on its files.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Distributions whose local-label builds (``+cpu``, ``+cu121``) are on download.pytorch.org.
_PYTORCH_INDEXED = {"torch", "torchvision", "torchaudio", "triton"}
_FORMATS = {".csv": "text/csv", ".json": "application/json", ".toml": "application/toml", ".html": "text/html",
            ".pdf": "application/pdf", ".txt": "text/plain"}


class BundleError(UserError):
    """A bundle cannot be written, or one that was read is unreadable, tampered or incomplete."""


@dataclass
class Bundle:
    """A bundle read and checked against its manifest.

    Attributes
    ----------
    path : pathlib.Path
    meta : dict
        ``bundle.json``.
    files : dict of str to bytes
        Every member (manifest checked) by its path in the zip.
    """

    path: Path
    meta: dict
    files: dict[str, bytes] = field(repr=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every results table by name (``results/<name>.csv``).

        Raises :class:`BundleError` naming the member when one is not a readable CSV table, or
        when ``claims.csv`` lacks its ``claim_id`` or ``verdict`` column.
        """
        out = {}
        for n, b in sorted(self.files.items()):
            if n.startswith("results/") and n.endswith(".csv"):
                try:
                    out[Path(n).stem] = pd.read_csv(io.BytesIO(b), encoding="utf-8")
                except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
                        RecursionError, OverflowError) as exc:
                    raise BundleError(f"bundle {self.path}: {n} is not a readable CSV table "
                                      f"({type(exc).__name__}: {str(exc)[:120]})") from None
        claims = out.get("claims")
        if claims is not None and not {"claim_id", "verdict"} <= set(claims.columns):
            raise BundleError(f"bundle {self.path}: results/claims.csv has no claim_id and verdict columns")
        return out

    def values(self) -> dict:
        return _json_member(self.path, self.files, "values.json")

    def lock(self) -> dict[str, str]:
        """Distributions of the bundled environment, ``{name: version}`` (see :func:`parse_lock`)."""
        return parse_lock(self.files[LOCK].decode())


def templates_digest(template_dir: str | Path) -> str:
    """sha256 over the template files (relative path and sha256 of each, sorted).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.j2").write_text("x")
    >>> len(templates_digest(d))
    64
    """
    template_dir = Path(template_dir)
    if not template_dir.is_dir():
        raise BundleError(f"template folder {template_dir} does not exist; pass the folder the paper was "
                          f"rendered from (--templates or $DISCBIAS_TEMPLATES)")
    return digest_of_hashes({p.relative_to(template_dir).as_posix(): sha256_file(p)
                             for p in sorted(template_dir.rglob("*")) if p.is_file()})


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, str]:
    """Every installed distribution of the running environment, ``{canonical name: version}``.

    Examples
    --------
    >>> "pandas" in installed_distributions()
    True
    """
    out: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name and _canonical(name) not in out:  # the first on sys.path wins, as for imports
            out[_canonical(name)] = dist.version
    return dict(sorted(out.items()))


def _is_local(name: str) -> bool:
    """Installed from a folder or URL (PEP 610), so not installable by ``name==version``."""
    try:
        direct = md.distribution(name).read_text("direct_url.json")
    except md.PackageNotFoundError:
        return False
    if not direct:
        return False
    info = json.loads(direct)
    return info.get("url", "").startswith("file:") or "dir_info" in info or "vcs_info" in info


def environment_lock(commit: str | None = None) -> str:
    """A ``pip install -r`` lock of the running environment: one ``name==version`` per line.

    Distributions installed from a local folder (discbias itself, as ``pip install -e .``) are
    written as comments ``# local: name==version``, since no index holds them. PyTorch builds with
    a local version label (``torch==2.13.0+cpu``) add ``--extra-index-url`` for PyTorch's index.

    Examples
    --------
    >>> lock = environment_lock("abc")
    >>> any(line.startswith("numpy==") for line in lock.splitlines())
    True
    """
    lines = [f"# Environment of a discbias build, written by `discbias bundle` ({time.strftime('%Y-%m-%d')}).",
             f"# Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
             "# Recreate: python -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/pip install "
             f"--no-deps -e <discbias checkout at commit {commit or 'unknown'}>"]
    pins = []
    labels = set()
    for name, version in installed_distributions().items():
        pins.append(f"# local: {name}=={version}" if _is_local(name) else f"{name}=={version}")
        if "+" in version and name in _PYTORCH_INDEXED:  # e.g. torch 2.13.0+cpu: only on PyTorch's index
            labels.add(version.split("+", 1)[1])
    # pip reads options in a requirements file: builds with a local label come from PyTorch's index
    lines += [f"--extra-index-url https://download.pytorch.org/whl/{label}" for label in sorted(labels)]
    return "\n".join(lines + pins) + "\n"


def parse_lock(text: str) -> dict[str, str]:
    """``{name: version}`` from a lock written by :func:`environment_lock` (local ones included).

    Examples
    --------
    >>> parse_lock("# a comment\\nnumpy==2.1.0\\n# local: discbias==0.1.0\\n")
    {'numpy': '2.1.0', 'discbias': '0.1.0'}
    """
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(?:# local: )?([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*$", line.strip())
        if m:
            out[_canonical(m.group(1))] = m.group(2)
    return out


def _crate_metadata(staging: Path, files: list[str], meta: dict, hashes: dict[str, str]) -> None:
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate(gen_preview=False)
    crate.name = f"discbias build of '{meta['title']}' ({meta['study_id']})"
    crate.description = (f"Results tables, values, claims verdicts, input provenance, configuration, rendered paper "
                         f"and the exact software environment of a discbias build (commit "
                         f"{meta['commit'] or 'unknown'}). Check a rebuild with `discbias verify`.")
    crate.root_dataset["version"] = meta["commit_short"] or "unknown"
    crate.root_dataset["keywords"] = ["reproducibility", "GAN discriminator", "bias audit", "replication"]
    software = crate.add(ContextEntity(crate, "#discbias", properties={
        "@type": "SoftwareApplication", "name": "discbias", "version": meta["discbias_version"],
        "softwareVersion": meta["commit"] or "unknown",
        "description": "Audit GAN discriminators for colour, luminance and demographic bias."}))
    crate.root_dataset["publisher"] = software
    if meta.get("paper"):
        crate.root_dataset["citation"] = meta["paper"]
    names = {"values.json": "Every scalar the paper prints", META: "Bundle description (study, commit, environment)",
             LOCK: "Installed distributions (pip install -r)", MANIFEST: "sha256 of every file",
             "report/paper.html": "The rendered paper (HTML)", "report/paper.pdf": "The rendered paper (PDF)",
             "results/claims.csv": "Claims table: every claim of the replicated paper with its verdict",
             "results/provenance.csv": "Provenance: every input file with its sha256"}
    for rel in files:
        props = {"name": names.get(rel, f"Results table {Path(rel).stem}" if rel.startswith("results/")
                                    else Path(rel).name),
                 "encodingFormat": _FORMATS.get(Path(rel).suffix, "application/octet-stream"),
                 "contentSize": str((staging / rel).stat().st_size)}
        if rel in hashes:
            props["sha256"] = hashes[rel]
        entity = crate.add_file(staging / rel, dest_path=rel, properties=props)
        if rel == "report/paper.pdf":
            crate.root_dataset["mainEntity"] = entity
    out = staging.parent / "crate"
    crate.write(out)
    shutil.copyfile(out / CRATE, staging / CRATE)


def make_bundle(study, paths=None, *, out: str | Path | None = None, template_dir: str | Path | None = None) -> Path:
    """Write the bundle of a study's current build (a replication or an audit); returns its path.

    Parameters
    ----------
    study : StudyBuild or StudyConfig
        The study (:func:`discbias.studies.kind.open_study`), or a replication configuration
        with ``paths``.
    paths : ProjectPaths, optional
        With a replication configuration: the project's paths.
    out : path, optional
        The zip to write (default ``build/bundle/<study>-<commit short hash>.zip`` of the project).
    template_dir : path, optional
        The templates the paper was rendered from (default: the study kind's own).

    Raises
    ------
    BundleError
        A file of the build is missing (it names the file and the command that makes it).

    Examples
    --------
    >>> from discbias.studies.kind import open_study
    >>> make_bundle(open_study("analysis/grissom2024.toml"))  # doctest: +SKIP
    """
    from ..studies.kind import StudyBuild, replication_build

    if not isinstance(study, StudyBuild):
        study = replication_build(study, paths, template_dir)
    elif template_dir is not None:
        study.template_dir = Path(template_dir)
    config_file = study.config_path
    again = f"`discbias report --config {config_file}`"
    wanted = {"values.json": study.paths.values, **study.report_files}
    tables = sorted(study.paths.results.glob("*.csv"))
    for rel in study.required_tables:
        if not (study.paths.results / rel).exists():
            raise BundleError(f"{study.paths.results / rel} is missing: run {again} first")
    for rel, p in wanted.items():
        if not p.exists():
            raise BundleError(f"{p} is missing: run {again} first")
    values = json.loads(study.paths.values.read_text())
    vmeta = values.get("meta", {})
    built_for = vmeta.get("study_id", vmeta.get("name"))
    if built_for is not None and built_for != study.id:
        raise BundleError(f"{study.paths.values} was built for study '{built_for}', the configuration {config_file} is "
                          f"study '{study.id}': pass the configuration the build was made from (--config)")
    git = project_commit(study.paths.root)
    bundled_at = dict(git)
    fitted = vmeta.get("code_commit") or {}
    if fitted.get("commit"):  # the commit whose code made the results is the one to rebuild from
        git = dict(commit=fitted["commit"], commit_short=fitted["commit"][:7], dirty=fitted.get("dirty"))
    meta = dict(format=FORMAT, study_id=study.id, study_kind=study.kind, title=study.title, paper=study.paper,
                config=f"config/{config_file.name}", created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                discbias_version=__version__, **{k: git[k] for k in ("commit", "commit_short", "dirty")},
                bundled_at_commit=bundled_at["commit"], bundled_at_dirty=bundled_at["dirty"],
                templates_sha256=templates_digest(study.template_dir), python=platform.python_version(),
                python_implementation=platform.python_implementation(), platform=platform.platform(),
                machine=platform.machine(), results=[f"results/{p.name}" for p in tables],
                values="values.json", lock=LOCK,
                # the tables a complete bundle of this kind holds (read_bundle checks them); a study
                # kind without claims (the planted-bias study: operating.csv) has no claims entry
                required_results=[f"results/{t}" for t in study.required_tables],
                **({"claims": "results/claims.csv"} if (study.paths.results / "claims.csv").exists() else {}),
                **({"provenance": "results/provenance.csv"} if (study.paths.results / "provenance.csv").exists() else {}))
    build = study.paths.root / "build"
    with tempfile.TemporaryDirectory(prefix="discbias-bundle-") as tmp:
        staging = Path(tmp) / "bundle"
        staging.mkdir()

        def put(rel: str, src: Path | None = None, text: str | None = None) -> None:
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src is not None:
                shutil.copyfile(src, dest)
            else:
                dest.write_text(text)

        for p in tables:
            put(f"results/{p.name}", p)
        for rel, p in wanted.items():
            put(rel, p)
        put(meta["config"], config_file)
        put(LOCK, text=environment_lock(git["commit"]))
        put(META, text=json.dumps(meta, indent=2, sort_keys=True) + "\n")
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        hashes = {rel: sha256_file(staging / rel) for rel in files}
        _crate_metadata(staging, files, meta, hashes)
        hashes[CRATE] = sha256_file(staging / CRATE)
        put(MANIFEST, text="".join(f"{h}  {rel}\n" for rel, h in sorted(hashes.items())))
        target = Path(out) if out else build / "bundle" / f"{study.id}-{git['commit_short'] or 'nogit'}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel in sorted([*hashes, MANIFEST]):
                info = zipfile.ZipInfo(rel, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, (staging / rel).read_bytes())
        partial.replace(target)
    return target


def read_bundle(path: str | Path) -> Bundle:
    """Open a bundle and check every file against its manifest.

    Raises
    ------
    BundleError
        The file is missing or not a zip, has no manifest or ``bundle.json``, or a file's sha256
        differs from the manifest, is missing, or is not listed (the message names the file).

    Examples
    --------
    >>> read_bundle("no-such-bundle.zip")
    Traceback (most recent call last):
    ...
    discbias.reproduce.bundle.BundleError: bundle no-such-bundle.zip does not exist
    """
    from ..safeio import UnsafeInputError, read_zip

    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle {path} does not exist")
    try:  # a FIFO or device is refused before it is opened; members are read within size limits
        files = read_zip(path, what="bundle")
    except UnsafeInputError as exc:
        raise BundleError(str(exc)) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise BundleError(f"bundle {path} is not a readable zip file ({exc}); download it again") from None
    if MANIFEST not in files:
        raise BundleError(f"bundle {path} has no {MANIFEST}: not a discbias bundle, or damaged")
    listed: dict[str, str] = {}
    for n, line in enumerate(files[MANIFEST].decode(errors="replace").splitlines(), 1):
        m = re.match(r"^([0-9a-f]{64})  (.+)$", line)
        if not m:
            raise BundleError(f"bundle {path}: {MANIFEST} line {n} is not '<sha256>  <path>': {line[:80]!r}")
        listed[m.group(2)] = m.group(1)
    for rel, digest in listed.items():
        if rel not in files:
            raise BundleError(f"bundle {path}: {rel} is listed in the manifest but missing from the zip")
        actual = hashlib.sha256(files[rel]).hexdigest()
        if actual != digest:
            raise BundleError(f"bundle {path}: {rel} was modified (sha256 {actual[:12]}..., manifest says "
                              f"{digest[:12]}...); get an untouched copy of the bundle")
    extra = sorted(set(files) - set(listed) - {MANIFEST})
    if extra:
        raise BundleError(f"bundle {path}: {extra[0]} is not in the manifest (added after bundling)")
    for rel in (META, "values.json", LOCK):
        if rel not in files:
            raise BundleError(f"bundle {path} has no {rel}: not a complete discbias bundle")
    meta = _json_member(path, files, META)
    if not isinstance(meta, dict):
        raise BundleError(f"bundle {path}: {META} is not a JSON object")
    if meta.get("format") != FORMAT:
        raise BundleError(f"bundle {path}: {META} says format {str(meta.get('format'))[:40]!r}; this discbias reads "
                          f"{FORMAT}")
    # the study kind's tables (bundles written before the list was recorded are replications: claims.csv)
    required = meta.get("required_results", ["results/claims.csv"])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise BundleError(f"bundle {path}: {META} required_results is not a list of file names")
    for rel in required:
        if rel not in files:
            raise BundleError(f"bundle {path} has no {rel[:200]}: not a complete discbias bundle")
    values = _json_member(path, files, "values.json")
    if not isinstance(values, dict):
        raise BundleError(f"bundle {path}: values.json is not a JSON object")
    if _depth(values) > 64 or _depth(meta) > 64:  # the comparison walks them recursively
        raise BundleError(f"bundle {path}: values.json or {META} is nested more than 64 levels deep")
    check_lock(files[LOCK], where=f"bundle {path}: {LOCK}")
    bundle = Bundle(path=path, meta=meta, files=files)
    bundle.tables()  # every results table parses, and claims.csv has its columns (else a BundleError)
    return bundle


def _depth(x, limit: int = 65) -> int:
    """Nesting depth of a JSON value, counted up to ``limit`` (iteratively: no recursion to exhaust)."""
    deepest, stack = 0, [(x, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if d >= limit:
            return d
        if isinstance(v, dict):
            stack += [(c, d + 1) for c in v.values()]
        elif isinstance(v, list):
            stack += [(c, d + 1) for c in v]
    return deepest


def _json_member(path: Path, files: dict[str, bytes], rel: str):
    try:
        return json.loads(files[rel].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(f"bundle {path}: {rel} is not valid UTF-8 JSON ({str(exc)[:120]})") from None


#: The only option line a lock may hold: PyTorch's own index for builds with a local label
#: (``torch==2.13.0+cpu``), exactly as :func:`environment_lock` writes it.
_LOCK_OPTION = re.compile(r"^--extra-index-url https://download\.pytorch\.org/whl/[a-z0-9.]+$")
_LOCK_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*"
                       r"(?:\s+--hash=sha256:[0-9a-f]{64})*$")


def check_lock(data: bytes, *, where: str = "environment lock") -> None:
    r"""Refuse an environment lock that ``pip install -r`` could be made to do harm with.

    Accepted lines: blank lines, comments, pinned ``name==version`` (optionally followed by
    ``--hash=sha256:<hex>``), and ``--extra-index-url https://download.pytorch.org/whl/<label>``
    (PyTorch's index, which :func:`environment_lock` writes for ``+cpu``-style builds). Anything
    else (``--index-url`` or another host, ``-e``/VCS/URL/path requirements, ``-r``/``-c`` includes,
    environment markers, unpinned or ranged requirements) raises :class:`BundleError` naming the line.

    Examples
    --------
    >>> check_lock(b"# env\nnumpy==2.1.0\n--extra-index-url https://download.pytorch.org/whl/cpu\ntorch==2.13.0+cpu\n")
    >>> check_lock(b"numpy==2.1.0\n-e git+https://evil.example/x.git#egg=x\n")
    Traceback (most recent call last):
    ...
    discbias.reproduce.bundle.BundleError: environment lock line 2 is not a pinned 'name==version' ...
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{where} is not UTF-8 text") from None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#") or _LOCK_PIN.match(s) or _LOCK_OPTION.match(s):
            continue
        raise BundleError(f"{where} line {n} is not a pinned 'name==version' (or PyTorch's --extra-index-url): "
                          f"{s[:80]!r}; a lock with index URLs, VCS, editable, URL or path lines is refused, so do "
                          f"not `pip install -r` it")
