"""Image- and face-level measures (colour, luminance, contrast, sharpness, skin tone).

Examples
--------
>>> import numpy as np
>>> from discbias.measures import image_measures
>>> round(image_measures(np.full((4, 4, 3), 128, np.uint8))["lab_l"], 2)
53.59
"""

from .color import (lab_chroma_hue, lab_to_srgb, linear_to_srgb, luma_709, relative_luminance, srgb_to_lab,
                    srgb_to_linear)
from .faces import FACE_METHODS, face_measures, face_regions, ita_class, ita_degrees, nearest_monk, template_regions
from .image import IMAGE_MEASURES, REGION_MEASURES, as_rgb8, image_measures
from .io import ID_COLUMNS, discover_images, measure_file, measure_images, read_rgb8

__all__ = [
    "srgb_to_linear", "linear_to_srgb", "srgb_to_lab", "lab_to_srgb", "luma_709", "relative_luminance",
    "lab_chroma_hue", "image_measures", "IMAGE_MEASURES", "REGION_MEASURES", "as_rgb8", "face_measures",
    "face_regions", "template_regions", "ita_degrees", "ita_class", "nearest_monk", "FACE_METHODS",
    "discover_images", "measure_file", "measure_images", "read_rgb8", "ID_COLUMNS",
]
