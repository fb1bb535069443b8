"""Column names of the scoring outputs (kept apart from :mod:`.scorer`, which imports torch).

Examples
--------
>>> from discbias.scoring.columns import FAILURE_COLUMNS
>>> FAILURE_COLUMNS
['image', 'image_sha256', 'reason']
"""

#: Columns of a scores table, one row per scored image (``discbias score``).
OUTPUT_COLUMNS = ["image", "image_id", "image_sha256", "score", "score_sd", "n_draws", "protocol", "grouping", "resize",
                  "filter", "flip", "precision", "label", "weights_sha256", "discbias_version", "from_cache",
                  "conversion", "condition"]
#: Columns of a failures table, one row per image that could not be scored, with the reason.
FAILURE_COLUMNS = ["image", "image_sha256", "reason"]
