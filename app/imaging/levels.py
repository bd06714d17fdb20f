"""Grey levels of 8-bit images."""

import cv2
import numpy as np


def median_level(channel: cv2.typing.MatLike, mask: cv2.typing.MatLike | None = None) -> float:
    """``np.median`` of an 8-bit channel's values (where ``mask`` is non-zero), from its
    histogram: the same number, without sorting a copy of the pixels."""
    histogram = cv2.calcHist([channel], [0], mask, [256], [0, 256]).ravel()
    cumulative = np.cumsum(histogram)
    count = int(cumulative[-1])
    lower = int(np.searchsorted(cumulative, (count - 1) // 2, side="right"))
    upper = int(np.searchsorted(cumulative, count // 2, side="right"))
    return (lower + upper) / 2
