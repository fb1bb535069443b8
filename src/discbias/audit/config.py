"""The audit configuration: one TOML file, validated strictly (unknown keys are errors).

Tables (see ``discbias audit init`` for a commented starter file)::

    [audit]            name, title, stand_in_weights (watermark), seed
    [data]             manifest (CSV/Parquet) or folder; image_column; groups
    [scoring]          weights (path or registry name), protocols, resize, filter, device,
                       batch_size, min_side, engine (local | ray), address, actors; for
                       class-conditional networks one of label_column / class / average_classes;
                       several discriminators: [[scoring.networks]] (id, weights, conditioning)
    [measures]         image (list of image measures to keep, or ["all"]), faces
    [ratings.<item>]   wide columns, or a long file (image, rater, value columns; with
                       item_column, one file holds every item); scale
    [[models]]         id, formula (lme4 style, random intercepts allowed), level (image|rating),
                       engine (statsmodels|bambi), standardize, compare, sampler settings
    [[claims]]         id, description, model, term, direction (+1 / -1), sesoi, sesoi_units, sesoi_reference
    [labels]           readable names of columns for the report

Relative paths are resolved against the configuration file's folder. Local files need no sha256:
their hashes are recorded in the report's provenance.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..errors import ConfigModel, read_toml, validate_config
from ..fetch import sha256_file

__all__ = ["AuditConfig", "load_audit_config", "input_digests", "LEVELS", "COMPARISONS"]

LEVELS = ("image", "rating")
#: Comparison specifications: OLS of the fixed part with HC3 errors, or clustered by a column.
COMPARISONS = "ols_hc3 | cluster:<column>"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class AuditMeta(ConfigModel):
    name: str
    title: str = ""
    stand_in_weights: bool = False
    seed: int = Field(0, ge=0, le=2**32 - 1)  # NumPy's seed range
    #: invalid rating values: "report" (listed in data_issues, left out) or "error" (stop, listing all)
    on_invalid: Literal["report", "error"] = "report"


class AuditPaper(ConfigModel):
    """``[paper]``: layout limits of the report's render checks (:mod:`discbias.report.checks`)."""

    main_text_max_pages: int = Field(20, ge=1)
    min_page_fill: float = Field(0.5, ge=0, le=1)


class DataConfig(ConfigModel):
    manifest: str | None = None
    folder: str | None = None
    image_column: str = "image"
    groups: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.manifest) == bool(self.folder):
            raise ValueError("give exactly one of manifest (a CSV/Parquet file with an image column) or folder")
        return self


class _Conditioning(ConfigModel):
    """Class conditioning of one network: at most one of label_column, class, average_classes."""

    label_column: str | None = None
    class_: int | None = Field(None, alias="class", ge=0)
    average_classes: bool = False

    @model_validator(mode="after")
    def _one_condition(self):
        n = sum([self.label_column is not None, self.class_ is not None, self.average_classes])
        if n > 1:
            raise ValueError("give at most one of label_column, class and average_classes")
        return self

    @property
    def condition(self) -> str:
        if self.class_ is not None:
            return f"class:{self.class_}"
        if self.average_classes or self.label_column:
            return "average"
        return ""


class NetworkConfig(_Conditioning):
    """One of several discriminators scored side by side (``[[scoring.networks]]``)."""

    id: str
    weights: str

    @model_validator(mode="after")
    def _id(self):
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.id):
            raise ValueError(f"network id {self.id!r} must start with a letter and contain only letters, digits and _ "
                             f"(it names the score column score_{self.id})")
        return self


class ScoringConfig(_Conditioning):
    #: one network: its weights (conditioning in this table); or several in [[scoring.networks]]
    weights: str | None = None
    networks: list[NetworkConfig] = Field(default_factory=list)
    protocols: list[Literal["nvidia", "grissom2024"]] = Field(default_factory=lambda: ["nvidia"], min_length=1)
    resize: Literal["stretch", "center-crop", "pad"] = "stretch"
    filter: Literal["lanczos", "bicubic"] = "lanczos"
    device: str = "cpu"
    batch_size: int = Field(8, ge=1)
    min_side: int = Field(32, ge=1)
    #: "local" (this process) or "ray" (Ray Data tasks and actors; pip install 'discbias[ray]')
    engine: Literal["local", "ray"] = "local"
    #: Ray cluster to join (auto, ray://host:10001); default: a local Ray instance
    address: str | None = None
    #: Ray scoring actors (default: from the cluster's CPUs or GPUs)
    actors: int | None = Field(None, ge=1)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d{1,3})?|mps", v):
            raise ValueError('use "cpu", "cuda", "cuda:N" or "mps"')
        return v

    @model_validator(mode="after")
    def _networks(self):
        if bool(self.weights) == bool(self.networks):
            raise ValueError("give exactly one of weights (one network) or [[scoring.networks]] (several, each with "
                             "id and weights)")
        if self.networks:
            if self.label_column is not None or self.class_ is not None or self.average_classes:
                raise ValueError("with [[scoring.networks]] each network has its own label_column / class / "
                                 "average_classes: move them into the network's table")
            ids = [n.id for n in self.networks]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"network id(s) {dup} used twice; every [[scoring.networks]] id must be unique")
        return self

    def network_list(self) -> list:
        """The networks to score: ``[[scoring.networks]]``, or this table as one network with id ``""``."""
        if self.networks:
            return list(self.networks)
        return [self]

    @property
    def id(self) -> str:  # the single network of a [scoring] table
        return ""


class MeasuresConfig(ConfigModel):
    image: list[str] = Field(default_factory=lambda: ["luma_709", "lab_l", "lab_a", "lab_b", "chroma"])
    faces: Literal["none", "template", "mediapipe", "haar"] = "none"


class RatingItem(ConfigModel):
    columns: list[str] | None = None
    file: str | None = None
    image_column: str = "image"
    rater_column: str = "rater"
    value_column: str = "value"
    #: long file holding several items: the column naming the item of each row
    item_column: str | None = None
    #: this item's name in ``item_column`` (default: the table's key, ``[ratings.<item>]``)
    item: str | None = None
    scale: list[float] = Field(min_length=2, max_length=2)

    @field_validator("scale")
    @classmethod
    def _finite(cls, v: list[float]) -> list[float]:
        if not all(math.isfinite(x) for x in v):
            raise ValueError("must be two finite numbers [low, high]")
        return v

    @model_validator(mode="after")
    def _one_layout(self):
        if bool(self.columns) == bool(self.file):
            raise ValueError("give exactly one of columns (wide: one manifest column per rater) or file "
                             "(long: one row per image, rater and value)")
        if self.item is not None and self.item_column is None:
            raise ValueError("item names this item's value in the file's item column: give item_column too")
        if self.item_column is not None and self.columns is not None:
            raise ValueError("item_column is for a long file (file = ...), not for wide columns")
        if self.columns is not None and len(self.columns) < 2:
            raise ValueError("reliability needs at least two rater columns")
        if self.scale[0] >= self.scale[1]:
            raise ValueError(f"scale must be [low, high] with low < high, got {self.scale}")
        return self


class ModelConfig(ConfigModel):
    id: str
    formula: str
    level: Literal["image", "rating"] = "image"
    engine: Literal["statsmodels", "bambi"] = "statsmodels"
    standardize: list[str] = Field(default_factory=list)
    compare: list[str] = Field(default_factory=lambda: ["ols_hc3"])
    draws: int = Field(1000, ge=10)
    tune: int = Field(1000, ge=10)
    chains: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if not _NAME.match(self.id):
            raise ValueError(f"id {self.id!r} must start with a letter and contain only letters, digits, _ and -")
        from ..formulas import check_formula

        check_formula(self.formula, what=f"model {self.id!r}: formula")
        if "~" not in self.formula:
            raise ValueError(f"formula {self.formula!r} needs a '~' (e.g. 'score ~ group + luma_709')")
        for c in self.compare:
            if c != "ols_hc3" and not re.fullmatch(r"cluster:[A-Za-z_][A-Za-z0-9_]*", c):
                raise ValueError(f"compare entry {c!r}: use {COMPARISONS}")
        return self


class ClaimConfig(ConfigModel):
    id: str
    description: str
    model: str
    term: str
    direction: Literal[1, -1] = 1
    #: Smallest effect size of interest, in the term's units (0: none), its units and reference.
    sesoi: float = Field(0.0, ge=0)
    sesoi_units: str = ""
    sesoi_reference: str = ""

    @model_validator(mode="after")
    def _check(self):
        if not _NAME.match(self.id):  # ids are printed as code and name files: no Markdown, no paths
            raise ValueError(f"id {self.id!r} must start with a letter and contain only letters, digits, _ and -")
        return self


class AuditConfig(ConfigModel):
    audit: AuditMeta
    data: DataConfig
    scoring: ScoringConfig
    measures: MeasuresConfig = Field(default_factory=MeasuresConfig)
    ratings: dict[str, RatingItem] = Field(default_factory=dict)
    models: list[ModelConfig] = Field(default_factory=list)
    claims: list[ClaimConfig] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    paper: AuditPaper = Field(default_factory=AuditPaper)

    # set by load_audit_config
    path: Path | None = Field(None, exclude=True)
    sha256: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _cross(self):
        if not _NAME.match(self.audit.name):
            raise ValueError(f"[audit] name {self.audit.name!r} must start with a letter and contain only letters, "
                             f"digits, _ and - (it names build/<name>/)")
        ids = [m.id for m in self.models]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"model id(s) {dup} used twice; every [[models]] id must be unique")
        for c in self.claims:
            if c.model not in ids:
                raise ValueError(f"claim {c.id!r} names model {c.model!r}, which no [[models]] entry defines "
                                 f"(models: {', '.join(ids) or 'none'})")
        for m in self.models:
            if m.level == "rating" and not self.ratings:
                raise ValueError(f"model {m.id!r} has level = \"rating\" but there is no [ratings.<item>] table")
        return self

    def resolve(self, p: str) -> Path:
        """A path of the configuration: absolute as is, relative against the configuration's folder."""
        q = Path(p).expanduser()
        if q.is_absolute() or self.path is None:
            return q
        return self.path.parent / q


def load_audit_config(path) -> AuditConfig:
    """Read and validate an audit configuration (TOML).

    Raises
    ------
    ConfigError
        The file is missing, is not TOML, or breaks the schema (naming the table, the key and the
        closest valid key).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.toml"
    >>> _ = p.write_text('[audit]\\nname = "demo"\\n[data]\\nmanifest = "m.csv"\\n[scoring]\\nweights = "D.pkl"\\n'
    ...                  '[[models]]\\nid = "m1"\\nformula = "score ~ group"\\nfromula = "x"\\n')
    >>> load_audit_config(p)
    Traceback (most recent call last):
    ...
    discbias.errors.ConfigError: ...a.toml: [models[0]] unknown key 'fromula'; did you mean 'formula'?
    """
    import hashlib

    path = Path(path)
    raw, data = read_toml(path, missing=f"audit configuration {path} does not exist; write one with "
                                        f"`discbias audit init MANIFEST --out {path}`")
    cfg = validate_config(AuditConfig, data, file=path)
    cfg.path = path.resolve()
    cfg.sha256 = hashlib.sha256(raw).hexdigest()
    return cfg


def input_digests(cfg) -> dict:
    """sha256 of the local input files (the manifest, long rating files, a local weights file), by ``role:path``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> input_digests(NS(data=NS(manifest="/nonexistent.csv"), ratings={}, scoring=NS(weights="x.pkl")))
    {}
    """
    out = {}
    cands = []
    if getattr(cfg.data, "manifest", None):
        cands.append(("manifest", cfg.data.manifest))
    for item, rc in getattr(cfg, "ratings", {}).items():
        if rc.file:
            cands.append((f"ratings:{item}", rc.file))
    nets = cfg.scoring.network_list() if hasattr(cfg.scoring, "network_list") else [cfg.scoring]
    for net in nets:
        if getattr(net, "weights", None):
            cands.append((f"weights:{net.id}" if getattr(net, "id", "") else "weights", net.weights))
    for role, c in cands:
        p = cfg.resolve(c) if hasattr(cfg, "resolve") else Path(c)
        if p.is_file():
            out[f"{role}:{c}"] = sha256_file(p)
    return out
