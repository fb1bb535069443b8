"""The optional ``[scoring]`` table of a study configuration.

.. code-block:: toml

    [scoring]
    weights = "stylegan3-r-ffhq-1024x1024.pkl"   # registry name or path (relative to the project root)
    images = "data/ffhq/images1024x1024"         # Study 1 images: folder (FFHQ layout) or manifest CSV
    protocols = ["grissom2024", "nvidia"]        # names, or tables such as
    # protocols = [{name = "nvidia-ref", input = "nvidia", grouping = "reference-group",
    #               reference = "data/ffhq-ref", draws = 8, seed = 0}]
    # device = "cpu"; batch_size = 8; workers = 2; fp32 = false; min_side = 32
    # cache = "data/cache"                       # default: $DISCBIAS_CACHE_DIR or data/cache
    # top_n = 100                                # size of the top and bottom groups

Without ``weights`` and ``images`` nothing is rescored (released scores are still imported into the
cache and read back from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, StudyConfig
from .protocols import ProtocolError, ScoringProtocol

_KEYS = {"weights", "images", "protocols", "device", "batch_size", "workers", "fp32", "min_side", "cache", "top_n",
         "threads"}
_PROTO_KEYS = {"name", "input", "resize", "filter", "grouping", "flip", "draws", "seed", "reference"}


@dataclass(frozen=True)
class NamedProtocol:
    """A protocol of the study with its short name (used in tables) and reference set, if any."""

    name: str
    protocol: ScoringProtocol
    reference: Path | None = None


@dataclass(frozen=True)
class ScoringConfig:
    """Parsed ``[scoring]`` table (see the module docstring)."""

    weights: str | None = None
    images: Path | None = None
    protocols: tuple[NamedProtocol, ...] = ()
    device: str = "cpu"
    batch_size: int = 8
    workers: int = 2
    fp32: bool = False
    min_side: int = 32
    cache: Path | None = None
    top_n: int = 100
    threads: int | None = None
    raw: dict = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """True when both weights and an image set are configured."""
        return bool(self.weights) and self.images is not None


def scoring_config(config: StudyConfig, root: str | Path = ".") -> ScoringConfig:
    """Read the ``[scoring]`` table of ``config`` (paths resolved against ``root``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from discbias.config import load_config
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
    >>> _ = p.write_text('[study]\\nid = "x"\\n[scoring]\\nweights = "D.pt"\\nimages = "img"\\nprotocols = ["grissom2024", "nvidia"]\\n')
    >>> sc = scoring_config(load_config(p), root="/proj")
    >>> sc.enabled, [n.name for n in sc.protocols], sc.images.as_posix()
    (True, ['grissom2024', 'nvidia'], '/proj/img')
    >>> scoring_config(load_config(p.with_name("s.toml"))).top_n
    100
    """
    raw = dict(config.raw.get("scoring", {}))
    root = Path(root)
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"{config.path}: unknown keys in [scoring]: {sorted(unknown)}; known: {sorted(_KEYS)}")

    def _path(v):
        if v is None:
            return None
        p = Path(str(v)).expanduser()
        return p if p.is_absolute() else root / p

    protos = []
    for i, spec in enumerate(raw.get("protocols", ["grissom2024", "nvidia"])):
        if isinstance(spec, str):
            spec = {"input": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"{config.path}: [scoring] protocols[{i}] must be a name or a table")
        bad = set(spec) - _PROTO_KEYS
        if bad:
            raise ConfigError(f"{config.path}: [scoring] protocols[{i}] has unknown keys {sorted(bad)}; "
                              f"known: {sorted(_PROTO_KEYS)}")
        kw = {k: v for k, v in spec.items() if k not in ("name", "reference")}
        try:
            proto = ScoringProtocol(**kw)
        except ProtocolError as exc:
            raise ConfigError(f"{config.path}: [scoring] protocols[{i}]: {exc}") from None
        ref = _path(spec.get("reference"))
        if proto.grouping == "reference-group" and ref is None:
            raise ConfigError(f"{config.path}: [scoring] protocols[{i}] uses reference-group: add `reference = <folder>`")
        protos.append(NamedProtocol(str(spec.get("name", spec.get("input", "nvidia"))), proto, ref))
    names = [p.name for p in protos]
    if len(set(names)) != len(names) or "released" in names:
        raise ConfigError(f"{config.path}: [scoring] protocol names must be unique and not 'released': {names}; "
                          f"give each a `name`")
    w = raw.get("weights")
    if w is not None and ("/" in str(w) or str(w).endswith((".pt", ".safetensors"))):
        w = str(_path(w))
    return ScoringConfig(weights=w, images=_path(raw.get("images")), protocols=tuple(protos),
                         device=str(raw.get("device", "cpu")), batch_size=int(raw.get("batch_size", 8)),
                         workers=int(raw.get("workers", 2)), fp32=bool(raw.get("fp32", False)),
                         min_side=int(raw.get("min_side", 32)), cache=_path(raw.get("cache")),
                         top_n=int(raw.get("top_n", 100)), threads=raw.get("threads"), raw=raw)
