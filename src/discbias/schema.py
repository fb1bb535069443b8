"""The declared schema of a study configuration (``analysis/*.toml``).

Every table and key a study configuration may hold is declared here, with its type, its range and
its default (from :data:`discbias.defaults.DEFAULTS`). :func:`discbias.config.load_config`
validates each file against :class:`StudyFile`: an unknown key (``draw = 1000``), a wrong type
(``draws = "1000"``) or an out-of-range value (``chains = 0``) is a
:class:`~discbias.errors.ConfigError` naming the file, the table and the key, with the closest
valid key or value suggested. Nothing is ignored silently.

Examples
--------
>>> from discbias.errors import validate_config
>>> cfg = validate_config(StudyFile, {"study": {"id": "x"}, "models": {"draws": 200}}, file="x.toml")
>>> cfg.models.draws, cfg.models.tune, cfg.models.sampler
(200, 2000, 'nutpie')
>>> validate_config(StudyFile, {"study": {"id": "x"}, "models": {"sampler": "nutpei"}}, file="x.toml")
Traceback (most recent call last):
...
discbias.errors.ConfigError: x.toml: [models] sampler: unknown value 'nutpei', must be one of ['nutpie', 'pymc']; did you mean 'nutpie'?
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .defaults import DEFAULTS
from .errors import ConfigModel

__all__ = ["StudyFile", "StudyTable", "PaperTable", "UpstreamTable", "SourceTable", "ModelsTable", "ScoringTable",
           "ProtocolTable", "ProbesTable", "VerifyTable", "AuthorsTable",
           "ClaimSettings"]

# Names fixed by the code (kept here as literals so that the schema needs no heavy import; a test
# checks them against discbias.scoring.protocols and discbias.stats.bayes).
InputName = Literal["nvidia", "grissom2024"]
Resize = Literal["stretch", "center-crop", "pad"]
Filter = Literal["lanczos", "bicubic"]
Grouping = Literal["single", "reference-group"]
Sampler = Literal["nutpie", "pymc"]

_M, _S, _P, _PR = DEFAULTS["models"], DEFAULTS["scoring"], DEFAULTS["protocol"], DEFAULTS["probes"]


class StudyTable(ConfigModel):
    """``[study]``: what the study is."""

    id: str = Field(min_length=1)
    title: Optional[str] = None
    paper: str = ""
    weights: Optional[str] = None
    released_scores_protocol: Optional[InputName] = None
    on_invalid: Literal["report", "error"] = DEFAULTS["study"]["on_invalid"]


class Author(ConfigModel):
    name: str
    affiliation: str = ""
    email: str = ""


class PaperTable(ConfigModel):
    """``[paper]``: the manuscript's front matter (see :func:`discbias.report.render.paper_metadata`)."""

    title: Optional[str] = None
    subtitle: str = ""
    authors: list[Author] = []
    keywords: list[str] = []
    abstract: str = ""
    bibliography: str = DEFAULTS["paper"]["bibliography"]
    csl: str = DEFAULTS["paper"]["csl"]
    #: render checks: the main text (title page to the references) may run to this many pages ...
    main_text_max_pages: int = Field(DEFAULTS["paper"]["main_text_max_pages"], ge=1)
    #: ... and each of its pages but the first and last must have this share of its text area filled
    min_page_fill: float = Field(DEFAULTS["paper"]["min_page_fill"], ge=0, le=1)


class UpstreamTable(ConfigModel):
    """``[upstream]``: the repository the released files come from."""

    repository: str = ""
    commit: str = ""
    url: str = ""
    licence: str = ""


class SourceTable(ConfigModel):
    """``[sources.<name>]``: one released file (see :class:`discbias.config.Source`)."""

    file: str = Field(min_length=1)
    sha256: str
    url: Optional[str] = None
    path: Optional[str] = None
    rows: Optional[int] = Field(None, ge=0)
    description: str = ""
    kind: Literal["file", "json_tree"] = "file"
    content_digest: str = ""
    # json_tree sources: the folder of the member files, their number and other accepted names
    member_dir: Optional[str] = None
    files: Optional[int] = Field(None, ge=0)
    alternatives: list[str] = []
    # a source from another upstream than [upstream]
    repository: Optional[str] = None
    commit: Optional[str] = None
    licence: Optional[str] = None


class ModelsTable(ConfigModel):
    """``[models]``: sampler settings of the Bayesian models and bootstrap resamples."""

    draws: int = Field(_M["draws"], ge=1)
    tune: int = Field(_M["tune"], ge=0)
    chains: int = Field(_M["chains"], ge=1)
    cores: int = Field(_M["cores"], ge=1)
    seed: int = Field(_M["seed"], ge=0)
    target_accept: float = Field(_M["target_accept"], gt=0, lt=1)
    sampler: Sampler = _M["sampler"]
    n_boot: int = Field(_M["n_boot"], ge=1)


class ProtocolTable(ConfigModel):
    """One input protocol of ``[scoring] protocols`` (see :class:`discbias.scoring.protocols.ScoringProtocol`)."""

    name: Optional[str] = None
    input: InputName = _P["input"]
    resize: Resize = _P["resize"]
    filter: Filter = _P["filter"]
    grouping: Grouping = _P["grouping"]
    flip: bool = _P["flip"]
    draws: int = Field(_P["draws"], ge=1)
    seed: int = Field(_P["seed"], ge=0)
    reference: Optional[str] = None


class ScoringTable(ConfigModel):
    """``[scoring]``: rescoring an image set (see :mod:`discbias.scoring.config`)."""

    weights: Optional[str] = None
    images: Optional[str] = None
    protocols: list[ProtocolTable | InputName] = list(_S["protocols"])
    device: str = _S["device"]
    batch_size: int = Field(_S["batch_size"], ge=1)
    workers: int = Field(_S["workers"], ge=0)
    fp32: bool = _S["fp32"]
    min_side: int = Field(_S["min_side"], ge=1)
    cache: Optional[str] = None
    top_n: int = Field(_S["top_n"], ge=1)
    threads: Optional[int] = Field(None, ge=1)


class DemoNetworkTable(ConfigModel):
    """``[probes.demo_network]``: the seeded random discriminator of the probes demo."""

    seed: int = Field(DEFAULTS["demo_network"]["seed"], ge=0)
    resolution: int = Field(DEFAULTS["demo_network"]["resolution"], ge=4)
    channel_base: Optional[int] = Field(None, ge=1)
    channel_max: Optional[int] = Field(None, ge=1)
    architecture: Optional[Literal["orig", "skip", "resnet"]] = None
    num_fp16_res: Optional[int] = Field(None, ge=0)
    conv_clamp: Optional[float] = None


class DemoInputsTable(ConfigModel):
    """``[probes.demo_inputs]``: the synthetic base and reference images of the probes demo."""

    seed: int = Field(DEFAULTS["demo_inputs"]["seed"], ge=0)
    synthetic_tones: list[int] = list(DEFAULTS["demo_inputs"]["synthetic_tones"])
    n_reference: int = Field(DEFAULTS["demo_inputs"]["n_reference"], ge=1)


class ProbesTable(ConfigModel):
    """``[probes]``: controlled colour and luminance probes (see :mod:`discbias.analyses.probes`)."""

    demo: bool = _PR["demo"]
    weights: Optional[str] = None
    images: Optional[str] = None
    reference: Optional[str] = None
    reference_measure: str = _PR["reference_measure"]
    reference_probe: str = _PR["reference_probe"]
    protocols: list[InputName] = list(_PR["protocols"])
    face_method: Optional[str] = _PR["face_method"]
    fields: bool = _PR["fields"]
    cache: Optional[str] = None
    batch_size: int = Field(_PR["batch_size"], ge=1)
    n_boot: int = Field(_PR["n_boot"], ge=1)
    levels: Optional[dict[str, list[float]]] = None
    levels_only: bool = _PR["levels_only"]
    resolution: Optional[int] = Field(None, ge=4)
    workers: Optional[int] = Field(None, ge=1)
    device: str = _PR["device"]
    demo_network: Optional[DemoNetworkTable] = None
    demo_inputs: Optional[DemoInputsTable] = None


class Tolerances(ConfigModel):
    rtol: Optional[float] = Field(None, gt=0)
    atol: Optional[float] = Field(None, gt=0)
    rtol_iterative: Optional[float] = Field(None, gt=0)
    posterior_k: Optional[float] = Field(None, gt=0)
    bootstrap_k: Optional[float] = Field(None, gt=0)


class VerifyTable(Tolerances):
    """``[verify]``: tolerances of ``discbias verify`` (see :class:`discbias.reproduce.verify.Tolerances`)."""

    tables: dict[str, Tolerances] = {}


class AuthorsTable(ConfigModel):
    """``[authors]``: the authors'-analyses ledger (see :mod:`discbias.analyses.authors`)."""

    r_reference: Optional[str] = None


class ClaimSettings(ConfigModel):
    """``[claims.<id>]``: the primary specification of a claim and its smallest effect size of interest
    (see :func:`discbias.claims.configure_claims`)."""

    primary: Optional[str] = None
    justification: str = ""
    sesoi: Optional[float] = Field(None, ge=0)
    sesoi_units: str = ""
    sesoi_reference: str = ""


class StudyFile(ConfigModel):
    """A whole study configuration file."""

    study: StudyTable
    paper: PaperTable = PaperTable()
    upstream: UpstreamTable = UpstreamTable()
    sources: dict[str, SourceTable] = {}
    roles: dict[str, str] = {}
    labels: dict[str, str] = {}
    models: ModelsTable = ModelsTable()
    scoring: Optional[ScoringTable] = None
    probes: Optional[ProbesTable] = None
    verify: VerifyTable = VerifyTable()
    authors: AuthorsTable = AuthorsTable()
    claims: dict[str, ClaimSettings] = {}
