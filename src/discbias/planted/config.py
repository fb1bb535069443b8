"""The planted-bias study's configuration (``analysis/planted.toml``): a ``[planted]`` table,
validated strictly (unknown keys are errors naming the closest valid key).

Example::

    [planted]
    id = "planted"                      # names build/<id>/
    title = "..."
    resolution = 32                     # image side (px) = the discriminator's resolution
    seeds = 10                          # seeds 0 .. seeds-1 per condition
    n_train = 1024                      # real and fake training images per seed (each)
    steps = 300                         # optimisation steps per discriminator
    n_heldout = 200                     # held-out images each audit scores
    sesoi = 0.1                         # smallest standardized slope of interest of the claims
    threads = 1                         # torch/BLAS threads per training or audit process
    workers = 0                         # seeds trained/audited at once (0: os.cpu_count() // threads)

    [planted.network]                   # discbias.nets.Discriminator arguments over planted.train.network_kwargs
    channel_base = 256
    channel_max = 32

    [[planted.conditions]]
    id = "unplanted"                    # nothing planted
    [[planted.conditions]]
    id = "lum-1.0"
    luminance_shift = 1.0               # stops: real-set mean exposure minus fake-set mean exposure

    [[planted.conditions]]              # generator mode: a GAN (discbias.planted.generator) is trained on
    id = "gan-share-0.2"                # a real set whose dark-group share is minority_share; the fake
    fake = "generator"                  # images are the generator's samples (null: minority_share 0.5)
    minority_share = 0.2

Generator mode's settings (``gan_steps``, ``[planted.generator]``) are used only by its conditions.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from typing import Literal

from pydantic import Field, model_validator

from ..errors import ConfigModel, read_toml, validate_config

__all__ = ["PlantedConfig", "load_planted_config"]

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
#: Words CSV readers turn into a missing value (pandas' and R's defaults): not allowed as condition ids.
_NA_WORDS = {"null", "na", "nan", "none", "n/a", "nat"}


class ConditionConfig(ConfigModel):
    id: str
    luminance_shift: float = Field(0.0, ge=-3, le=3)
    redness_shift: float = Field(0.0, ge=-3, le=3)
    minority_share: float = Field(0.5, ge=0, le=1)
    fake_share: float = Field(0.5, ge=0, le=1)
    #: "fixed": D is trained against a fixed fake set drawn from a declared distribution (fake_share, and
    #: the fake half of the shifts); "generator": D and a generator are trained as a GAN on the real set
    fake: Literal["fixed", "generator"] = "fixed"

    @property
    def planted(self) -> bool:
        """Whether this condition plants anything (generator mode: a dark-group share other than 0.5)."""
        if self.fake == "generator":
            return self.minority_share != 0.5
        return bool(self.luminance_shift or self.redness_shift or self.minority_share != self.fake_share)

    @model_validator(mode="after")
    def _id(self):
        if self.fake == "generator":
            if "fake_share" in self.model_fields_set:
                raise ValueError(f"condition {self.id!r}: fake_share has no meaning with fake = \"generator\" (the "
                                 f"fake images are the generator's samples); remove it, or use fake = \"fixed\"")
            shifts = [k for k in ("luminance_shift", "redness_shift") if getattr(self, k)]
            if shifts:
                raise ValueError(f"condition {self.id!r}: {', '.join(shifts)} is not supported with fake = "
                                 f"\"generator\" (what D learns then depends on how well the generator imitates "
                                 f"the shifted real set, so the planted sign is not known); plant a group share "
                                 f"(minority_share) instead, or use fake = \"fixed\"")
        if self.id.lower() in _NA_WORDS:
            raise ValueError(f"condition id {self.id!r} reads as a missing value in CSV readers (pandas, R); "
                             f"choose another, e.g. \"unplanted\"")
        if not _ID.match(self.id):
            raise ValueError(f"condition id {self.id!r} must start with a letter and contain only letters, digits, "
                             f"_, . and - (it names files)")
        return self


class NetworkConfig(ConfigModel):
    architecture: str = "resnet"
    channel_base: int = Field(256, ge=8, le=1 << 15)
    channel_max: int = Field(32, ge=1, le=512)


class GeneratorConfig(ConfigModel):
    """:class:`discbias.planted.generator.Generator` arguments (generator-mode conditions only)."""
    z_dim: int = Field(64, ge=1, le=1024)
    w_dim: int = Field(64, ge=1, le=1024)
    channels: int = Field(32, ge=1, le=512)
    mapping_layers: int = Field(2, ge=1, le=8)


class PlantedMeta(ConfigModel):
    id: str
    title: str = "Does the audit find what was planted? Discriminators trained with known biases"
    resolution: int = Field(32, ge=8, le=64)
    seeds: int = Field(10, ge=1, le=1000)
    first_seed: int = Field(0, ge=0)
    n_train: int = Field(1024, ge=8)
    steps: int = Field(300, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(0.0025, gt=0)
    r1_gamma: float = Field(0.1, ge=0)
    r1_interval: int = Field(4, ge=1)
    exposure_sd: float = Field(0.5, gt=0)
    red_sd: float = Field(0.25, gt=0)
    n_heldout: int = Field(200, ge=10)
    heldout_exposure_sd: float = Field(0.6, gt=0)
    heldout_red_sd: float = Field(0.3, gt=0)
    #: held-out images the dose-response probes use (each at every probe level)
    n_probe_bases: int = Field(12, ge=3)
    exposure_levels: list[float] = Field(default_factory=lambda: [-1.0, -0.5, 0.5, 1.0])
    red_levels: list[float] = Field(default_factory=lambda: [-0.5, -0.25, 0.25, 0.5])
    sesoi: float = Field(0.1, ge=0)
    threads: int = Field(2, ge=1, le=256)
    #: processes that train (and audit) the seeds of a condition at once, each with ``threads`` threads;
    #: 0: as many as the CPUs allow (os.cpu_count() // threads). The results do not depend on it.
    workers: int = Field(0, ge=0, le=256)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    #: iterations (one D and one G step each) of the GAN of generator-mode conditions
    gan_steps: int = Field(350, ge=1)
    #: real and generated images per GAN step (each); smaller than batch_size buys more updates per CPU second
    gan_batch_size: int = Field(16, ge=2)
    #: generator samples whose attributes are measured after training (and 16 kept for a grid)
    n_gan_measure: int = Field(256, ge=16)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    conditions: list[ConditionConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self):
        if not _ID.match(self.id):
            raise ValueError(f"id {self.id!r} must start with a letter and contain only letters, digits, _, . and - "
                             f"(it names build/<id>/)")
        if self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two (the discriminator's), got {self.resolution}")
        ids = [c.id for c in self.conditions]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"condition id(s) {dup} used twice")
        if not any(not c.planted for c in self.conditions):
            raise ValueError("no null condition (one with nothing planted): the false-positive rate needs one")
        if all(c.fake == "generator" for c in self.conditions):
            raise ValueError("every condition is in generator mode: the study's fixed-fake figures and sections need "
                             "at least one condition with fake = \"fixed\" (e.g. [[planted.conditions]] id = "
                             "\"unplanted\")")
        return self


class PlantedConfig(ConfigModel):
    planted: PlantedMeta
    labels: dict[str, str] = Field(default_factory=dict)

    path: Path | None = Field(None, exclude=True)
    sha256: str = Field("", exclude=True)

    @property
    def id(self) -> str:
        return self.planted.id

    @property
    def title(self) -> str:
        return self.planted.title


def load_planted_config(path) -> PlantedConfig:
    """Read and validate a planted-bias study configuration.

    Raises
    ------
    ConfigError
        Missing file, not TOML, or a schema violation (naming the key).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.toml"
    >>> _ = p.write_text('[planted]\\nid = "v"\\n[[planted.conditions]]\\nid = "unplanted"\\n'
    ...                  '[[planted.conditions]]\\nid = "lum"\\nluminance_shift = 1.0\\n')
    >>> [c.id for c in load_planted_config(p).planted.conditions]
    ['unplanted', 'lum']
    """
    path = Path(path)
    raw, data = read_toml(path, missing=f"study configuration {path} does not exist")
    cfg = validate_config(PlantedConfig, data, file=path)
    cfg.path = path.resolve()
    cfg.sha256 = hashlib.sha256(raw).hexdigest()
    return cfg
