"""What every image, indexed or queried, goes through before the embedder.

Pipeline: decoded RGB image -> shrink so the longer side is at most ``WORKING_MAX_SIDE``
(the embedder sees 224 pixels; bounding the size bounds the OpenCV cost of huge scans)
-> grid removal (when enabled) -> RGB image for the embedder.
"""

import numpy as np
from PIL import Image

from app import grid_removal

WORKING_MAX_SIDE = 1024


def shrink_to_working_size(image: Image.Image) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most ``WORKING_MAX_SIDE``."""
    longest = max(image.size)
    if longest <= WORKING_MAX_SIDE:
        return image
    scale = WORKING_MAX_SIDE / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def prepare_for_embedding(image: Image.Image, remove_grid: bool = True) -> Image.Image:
    """Return the RGB image the embedder should see for the decoded RGB ``image``."""
    working = shrink_to_working_size(image)
    if not remove_grid:
        return working
    cleaned = grid_removal.remove_grid(np.asarray(working, dtype=np.uint8))
    return Image.fromarray(cleaned)
