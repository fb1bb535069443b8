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

from ..config import StudyConfig
from ..defaults import DEFAULTS
from ..errors import ConfigError
from ..schema import ProtocolTable
from .protocols import ProtocolError, ScoringProtocol

_S = DEFAULTS["scoring"]


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
    device: str = _S["device"]
    batch_size: int = _S["batch_size"]
    workers: int = _S["workers"]
    fp32: bool = _S["fp32"]
    min_side: int = _S["min_side"]
    cache: Path | None = None
    top_n: int = _S["top_n"]
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
    from ..errors import validate_config
    from ..schema import ScoringTable

    raw = dict((getattr(config, "raw", None) or {}).get("scoring", {}))
    root = Path(root)
    sc = getattr(getattr(config, "settings", None), "scoring", None)
    if sc is None:  # no [scoring] table, or a StudyConfig not made by load_config
        sc = validate_config(ScoringTable, raw, file=config.path, table="scoring")

    def _path(v):
        if v is None:
            return None
        p = Path(str(v)).expanduser()
        return p if p.is_absolute() else root / p

    protos = []
    for i, spec in enumerate(sc.protocols):
        where = dict(file=config.path, table=f"scoring.protocols[{i}]")
        if isinstance(spec, str):
            spec = ProtocolTable(input=spec)
        kw = spec.model_dump(exclude={"name", "reference"})
        if kw["grouping"] != "reference-group":  # draws and seed apply to reference groups only
            kw.pop("draws"), kw.pop("seed")
        try:
            proto = ScoringProtocol(**kw)
        except ProtocolError as exc:
            raise ConfigError(str(exc), key="input", **where) from None
        ref = _path(spec.reference)
        if proto.grouping == "reference-group" and ref is None:
            raise ConfigError("grouping = \"reference-group\" needs a reference image set", key="reference",
                              suggestion="add `reference = \"<folder or manifest CSV>\"`", **where)
        protos.append(NamedProtocol(spec.name or spec.input, proto, ref))
    names = [p.name for p in protos]
    if len(set(names)) != len(names) or "released" in names:
        raise ConfigError(f"protocol names must be unique and not 'released': {names}", file=config.path,
                          table="scoring", key="protocols", suggestion="give each protocol table a `name`")
    w = sc.weights
    if w is not None and ("/" in str(w) or str(w).endswith((".pt", ".safetensors"))):
        w = str(_path(w))
    return ScoringConfig(weights=w, images=_path(sc.images), protocols=tuple(protos), device=sc.device,
                         batch_size=sc.batch_size, workers=sc.workers, fp32=sc.fp32, min_side=sc.min_side,
                         cache=_path(sc.cache), top_n=sc.top_n, threads=sc.threads, raw=raw)
