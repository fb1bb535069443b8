"""Scoring images with a discriminator: image sources, input protocols, batched scoring, the cache.

Examples
--------
>>> from discbias.scoring import ScoringProtocol
>>> ScoringProtocol(input="grissom2024").label
'grissom2024/single/stretch-lanczos'
"""

from .cache import CACHE_ENV, CacheError, ScoreCache, cache_path, default_cache_dir, released_key
from .images import (DEFAULT_MIN_SIDE, ImageError, check_rgb8, colour_stats, decode_rgb, load_for_scoring, resize_square,
                     sha256_bytes, sha256_file, sha256_pixels)
from .protocols import CACHE_SCHEMA_VERSION, ProtocolError, ScoringProtocol, protocol_from_settings, score_key
from .columns import FAILURE_COLUMNS, OUTPUT_COLUMNS
from .sources import ImageItem, SourceError, discover, parse_shard, shard

#: Names of :mod:`.scorer`, which imports torch: loaded on first use, so that the command line
#: and the stages that never score (fit, figures, render) start without importing torch.
_SCORER_NAMES = ("Scorer", "ScoreRun", "resolve_weights", "score_arrays", "score_by_label", "score_folder")


def __getattr__(name):
    if name in _SCORER_NAMES:
        from . import scorer

        return getattr(scorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CACHE_ENV", "CACHE_SCHEMA_VERSION", "CacheError", "DEFAULT_MIN_SIDE", "FAILURE_COLUMNS", "ImageError", "ImageItem",
    "OUTPUT_COLUMNS",
    "ProtocolError", "ScoreCache", "ScoreRun", "Scorer", "ScoringProtocol", "SourceError", "cache_path", "check_rgb8",
    "colour_stats",
    "decode_rgb", "default_cache_dir", "discover", "load_for_scoring", "parse_shard", "protocol_from_settings",
    "released_key", "resize_square", "resolve_weights", "score_arrays", "score_by_label", "score_folder", "score_key", "sha256_bytes",
    "sha256_file", "sha256_pixels", "shard",
]
