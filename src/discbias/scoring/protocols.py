"""Input and grouping protocols: everything that changes a score, named and recorded.

A :class:`ScoringProtocol` fixes how an image file becomes the discriminator's input and how
the minibatch-standard-deviation group is formed. Its :meth:`~ScoringProtocol.settings` are part of
the score cache key and are written next to every score, so two scores are only ever compared or
reused when they were obtained the same way.

Input scaling (``input``)
    ``nvidia``: RGB uint8 ``x`` -> ``x / 127.5 - 1`` (the range D was trained on).
    ``grissom2024``: uint8 values passed unscaled as floats in ``[0, 255]``, one image per forward
    pass (how the released scores of Grissom II et al. 2024 were produced); implies ``single``.
Resizing (``resize``), applied when an image is not ``R x R`` for the network's resolution ``R``
    ``stretch``: resize both sides to ``R`` (aspect ratio not kept; the 2024 paper's rule).
    ``center-crop``: scale the short side to ``R``, crop the centre square.
    ``pad``: scale the long side to ``R``, pad the short side symmetrically with black (0).
    The resampling ``filter`` is ``lanczos`` (antialiased Lanczos-3, PIL) or ``bicubic`` (PIL,
    antialiased); an image already ``R x R`` is never resampled.
Grouping (``grouping``)
    ``single``: every image is its own minibatch-std group (identical to one image per forward
    pass; implemented by setting the layer's group size to 1, which gives the same numbers).
    ``reference-group``: each image is scored in a group with ``G - 1`` reference images drawn
    with a fixed seed from a user-given reference set, averaged over ``draws`` draws; the spread
    (SD over draws) is reported. Draw ``d`` uses the same companions for every image, so a
    score does not depend on batch size or order.
``flip``: average the score of the image and of its horizontal mirror.
``precision``: ``fp32`` or ``fp16-blocks`` (CUDA only: the highest-resolution blocks in float16,
as in NVIDIA's code).
Conditioning (``condition``), for class-conditional networks (``c_dim > 0``) only
    ``class:K``: every image is scored with the one-hot label of class ``K``.
    ``average``: the mean of the scores under each of the ``c_dim`` one-hot labels.
    ``label:COLUMN``: recorded on a run scored per image with the class in a manifest column.
    (A label column of a manifest is scored as ``class:K`` per image, ``K`` read from the column;
    see :func:`discbias.scoring.scorer.score_by_label`.) Empty for unconditional networks, and then
    not part of the cache key, so unconditional scores keep their keys.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from ..errors import UserError

#: Version of the cache's key and row layout; bump when a change makes old scores incomparable.
CACHE_SCHEMA_VERSION = 1

INPUTS = ("nvidia", "grissom2024")
RESIZES = ("stretch", "center-crop", "pad")
FILTERS = ("lanczos", "bicubic")
GROUPINGS = ("single", "reference-group")
PRECISIONS = ("fp32", "fp16-blocks")


#: Range of the values each input protocol feeds the network, and the protocol it was trained with.
INPUT_RANGES = {"nvidia": (-1.0, 1.0), "grissom2024": (0.0, 255.0)}
TRAINED_INPUT = "nvidia"


def describe_input(name: str | None) -> dict:
    """Facts about an input protocol for the paper: its input range against the trained range.

    Parameters
    ----------
    name : str or None
        An input protocol (:data:`INPUTS`); ``None`` or ``""`` when the protocol is unknown.

    Returns
    -------
    dict
        ``known``, ``name``, ``input_low``, ``input_high``, ``trained_low``, ``trained_high``,
        ``as_trained`` (the input range is the trained one) and ``scale`` (how many times wider the
        input range is than the trained one).

    Examples
    --------
    >>> d = describe_input("grissom2024")
    >>> d["input_low"], d["input_high"], d["trained_low"], d["trained_high"], d["as_trained"], d["scale"]
    (0.0, 255.0, -1.0, 1.0, False, 127.5)
    >>> describe_input(None)["known"]
    False
    """
    if not name:
        return dict(known=False, name="")
    if name not in INPUT_RANGES:
        raise ProtocolError(f"unknown input protocol {name!r}; choose one of {', '.join(INPUTS)}")
    lo, hi = INPUT_RANGES[name]
    tlo, thi = INPUT_RANGES[TRAINED_INPUT]
    return dict(known=True, name=name, input_low=lo, input_high=hi, trained_low=tlo, trained_high=thi,
                as_trained=(lo, hi) == (tlo, thi), scale=(hi - lo) / (thi - tlo))


class ProtocolError(UserError, ValueError):
    """A protocol setting is unknown or inconsistent with the others."""


@dataclass(frozen=True)
class ScoringProtocol:
    """How images are turned into discriminator inputs and grouped.

    Parameters
    ----------
    input : {"nvidia", "grissom2024"}
        Pixel scaling (see the module docstring).
    resize : {"stretch", "center-crop", "pad"}
        Rule for images that are not square at the network's resolution.
    filter : {"lanczos", "bicubic"}
        Resampling filter.
    grouping : {"single", "reference-group"}
        Minibatch-std grouping.
    flip : bool
        Average over the horizontal mirror.
    draws : int
        Number of reference draws (``reference-group`` only).
    seed : int
        Seed of the reference draws (``reference-group`` only).
    reference_sha256 : str
        Identity of the reference set (sha256 over its images' sha256s); set by the scorer.
    group_size : int
        Minibatch-std group size used with ``reference-group`` (the network's); set by the scorer.
    precision : {"fp32", "fp16-blocks"}
        Arithmetic of the forward pass.
    condition : str
        ``""`` (unconditional network), ``"class:K"`` or ``"average"`` (see the module docstring).

    Examples
    --------
    >>> p = ScoringProtocol()
    >>> p.label
    'nvidia/single/stretch-lanczos'
    >>> p.key() == ScoringProtocol(input="nvidia").key(), p.key() == replace(p, flip=True).key()
    (True, False)
    >>> ScoringProtocol(input="grissom2024", grouping="reference-group")
    Traceback (most recent call last):
    ...
    discbias.scoring.protocols.ProtocolError: input protocol 'grissom2024' scores one image per forward pass; use grouping='single'
    """

    input: str = "nvidia"
    resize: str = "stretch"
    filter: str = "lanczos"
    grouping: str = "single"
    flip: bool = False
    draws: int = 1
    seed: int = 0
    reference_sha256: str = ""
    group_size: int = 0
    precision: str = "fp32"
    condition: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        for name, allowed in (("input", INPUTS), ("resize", RESIZES), ("filter", FILTERS),
                              ("grouping", GROUPINGS), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ProtocolError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        if self.input == "grissom2024" and self.grouping != "single":
            raise ProtocolError("input protocol 'grissom2024' scores one image per forward pass; use grouping='single'")
        if self.grouping == "reference-group" and self.draws < 1:
            raise ProtocolError(f"draws must be >= 1, got {self.draws}")
        if self.condition and self.condition != "average" and not re.fullmatch(r"class:\d+|label:.+", self.condition):
            raise ProtocolError(f"unknown condition {self.condition!r}; use 'class:K' (K = 0..c_dim-1), 'average', "
                                f"or '' for an unconditional network")

    def settings(self) -> dict:
        """The settings that make up the cache key (only those that apply to the grouping)."""
        s = dict(input=self.input, resize=self.resize, filter=self.filter, grouping=self.grouping,
                 flip=bool(self.flip), precision=self.precision)
        if self.grouping == "reference-group":
            s.update(draws=int(self.draws), seed=int(self.seed), reference_sha256=self.reference_sha256,
                     group_size=int(self.group_size))
        if self.condition:
            s["condition"] = self.condition
        return s

    def key(self) -> str:
        """Canonical JSON of :meth:`settings` (sorted keys)."""
        return json.dumps(self.settings(), sort_keys=True, separators=(",", ":"))

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``nvidia/single/stretch-lanczos``."""
        g = self.grouping if self.grouping == "single" else f"reference-group(R={self.draws},seed={self.seed})"
        s = f"{self.input}/{g}/{self.resize}-{self.filter}"
        if self.flip:
            s += "/flip"
        if self.precision != "fp32":
            s += f"/{self.precision}"
        if self.condition:
            s += f"/{self.condition}"
        return s

    @property
    def class_index(self) -> int | None:
        """``K`` of ``condition="class:K"``, else ``None``."""
        return int(self.condition.split(":", 1)[1]) if self.condition.startswith("class:") else None

    def with_(self, **kw) -> "ScoringProtocol":
        """A copy with some settings changed."""
        return replace(self, **kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra", None)
        return d


def score_key(image_sha256: str, weights_sha256: str, protocol: ScoringProtocol,
              schema_version: int = CACHE_SCHEMA_VERSION) -> str:
    """The cache key of one score: sha256 of image hash, weights hash, protocol and schema version.

    Examples
    --------
    >>> k = score_key("a" * 64, "b" * 64, ScoringProtocol())
    >>> len(k), k == score_key("a" * 64, "b" * 64, ScoringProtocol(resize="pad"))
    (64, False)
    """
    payload = json.dumps(dict(image=image_sha256, weights=weights_sha256, protocol=json.loads(protocol.key()),
                              schema=schema_version), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def protocol_from_settings(settings: dict | str) -> ScoringProtocol:
    """Rebuild a protocol from :meth:`ScoringProtocol.settings` (dict or JSON).

    Examples
    --------
    >>> p = ScoringProtocol(resize="pad", flip=True)
    >>> protocol_from_settings(p.key()) == p
    True
    """
    if isinstance(settings, str):
        settings = json.loads(settings)
    return ScoringProtocol(**settings)
