"""Remove the squared-paper grid behind a hand-drawn symbol.

A pure function: an RGB image in, an RGB image of the same shape out; nothing is written
anywhere. This is the original design's method, made to work on OpenCV 5:

1. greyscale, then Otsu's threshold (inverted, so ink and grid lines are white);
2. Canny edges of that binary image;
3. probabilistic Hough transform: long straight segments are taken to be grid lines;
4. the segments are drawn into a mask, which is dilated to cover the lines' full width;
5. the masked pixels are filled from their surroundings by Telea inpainting.
"""

import cv2
import numpy as np
from numpy.typing import NDArray

CANNY_LOW_THRESHOLD = 50
CANNY_HIGH_THRESHOLD = 150
HOUGH_RHO_PX = 1
HOUGH_THETA_RAD = np.pi / 180
HOUGH_VOTES = 50
HOUGH_MIN_LINE_LENGTH_PX = 100
HOUGH_MAX_LINE_GAP_PX = 10
MASK_LINE_THICKNESS_PX = 1
MASK_DILATION_KERNEL = (5, 5)
INPAINT_RADIUS_PX = 3

RGBImage = NDArray[np.uint8]


def find_grid_segments(grey: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Return the straight segments of ``grey`` as an ``(N, 4)`` array of x1, y1, x2, y2."""
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    edges = cv2.Canny(binary, CANNY_LOW_THRESHOLD, CANNY_HIGH_THRESHOLD)
    segments = cv2.HoughLinesP(
        edges,
        HOUGH_RHO_PX,
        HOUGH_THETA_RAD,
        HOUGH_VOTES,
        minLineLength=HOUGH_MIN_LINE_LENGTH_PX,
        maxLineGap=HOUGH_MAX_LINE_GAP_PX,
    )
    if segments is None:
        return np.empty((0, 4), dtype=np.int32)
    # OpenCV 4 returns shape (N, 1, 4), OpenCV 5 returns (N, 4).
    return np.asarray(segments, dtype=np.int32).reshape(-1, 4)


def remove_grid(image: RGBImage) -> RGBImage:
    """Return a copy of the RGB ``image`` with its grid lines inpainted away."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("remove_grid expects an 8-bit RGB array of shape (H, W, 3)")
    grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    segments = find_grid_segments(grey)
    if len(segments) == 0:
        return image.copy()
    mask = np.zeros(grey.shape, dtype=np.uint8)
    for x1, y1, x2, y2 in segments:
        cv2.line(mask, (int(x1), int(y1)), (int(x2), int(y2)), 255, MASK_LINE_THICKNESS_PX)
    dilated = cv2.dilate(mask, np.ones(MASK_DILATION_KERNEL, dtype=np.uint8))
    inpainted = cv2.inpaint(image, dilated, INPAINT_RADIUS_PX, cv2.INPAINT_TELEA)
    return np.asarray(inpainted, dtype=np.uint8)
