"""The shape descriptor: where a drawing's strokes are and which way they run.

Model-free and deterministic, computed on what the embedder sees (the framed, grid-free
224-pixel square), so position and size on the page are already taken out. Pipeline
(``shape_descriptor``):

1. darkness of the square at ``SHAPE_SIDE`` pixels (area averaging), blurred by
   ``STROKE_BLUR_SIGMA``: another pen width or a wobbling hand moves little;
2. gradient orientation, unsigned (a stroke's two edges agree), soft-binned into
   ``ORIENTATION_BINS`` bins over 180 degrees, weighted by gradient magnitude: a few
   degrees of rotation move weight between neighbouring bins only;
3. each orientation's map blurred by ``POOL_BLUR_SIGMA`` and pooled on a
   ``CELLS`` x ``CELLS`` grid: small warps move weight between neighbouring cells only;
4. square root (Hellinger: long strokes do not drown short ones), then unit length.

Measured on ``bench/brand_scans.py`` drawings (re-drawn with warps, pen widths 0.6-1.5x,
rotation and shear) against distance-transform maps and other cell sizes; see docs/ranking.md.

Turns: the 8 turns of a square (quarter turns and mirror images) permute the
descriptor's cells and orientation bins exactly, so ``turned_descriptor`` turns a stored
descriptor without its image.
"""

from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from app.imaging.grid_removal import RGBImage

# Bump whenever the descriptor changes: stored descriptors carry it and are recomputed
# (without the model) when it differs.
SHAPE_VERSION: Final = 1
SHAPE_SIDE: Final = 64
STROKE_BLUR_SIGMA: Final = 1.5
ORIENTATION_BINS: Final = 12
POOL_BLUR_SIGMA: Final = 4.0
CELLS: Final = 6
SHAPE_DIMENSION: Final = ORIENTATION_BINS * CELLS * CELLS

# The 8 turns of a square, as the query is turned to match: "rot90" is a quarter turn
# counter-clockwise, "mirror" swaps left and right (before the rotation).
TURNS: Final = (
    "upright",
    "rot90",
    "rot180",
    "rot270",
    "mirror",
    "mirror_rot90",
    "mirror_rot180",
    "mirror_rot270",
)


def shape_descriptor(framed: RGBImage) -> NDArray[np.float32]:
    """The unit shape vector (``SHAPE_DIMENSION`` floats) of a framed RGB drawing."""
    grey = cv2.cvtColor(framed, cv2.COLOR_RGB2GRAY)
    darkness = 255 - cv2.resize(grey, (SHAPE_SIDE, SHAPE_SIDE), interpolation=cv2.INTER_AREA)
    smooth = cv2.GaussianBlur(darkness.astype(np.float32) / 255, (0, 0), STROKE_BLUR_SIGMA)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    magnitude, angle = cv2.cartToPolar(gx, gy)
    position = (angle % np.pi) / np.pi * ORIENTATION_BINS
    lower = np.floor(position).astype(np.int64)
    upper_share = (position - lower).astype(np.float32)
    pixels = np.arange(SHAPE_SIDE * SHAPE_SIDE).reshape(SHAPE_SIDE, SHAPE_SIDE)
    size = ORIENTATION_BINS * SHAPE_SIDE * SHAPE_SIDE
    maps = np.bincount(
        ((lower % ORIENTATION_BINS) * pixels.size + pixels).ravel(),
        (magnitude * (1 - upper_share)).ravel(),
        size,
    ) + np.bincount(
        (((lower + 1) % ORIENTATION_BINS) * pixels.size + pixels).ravel(),
        (magnitude * upper_share).ravel(),
        size,
    )
    pooled = np.stack(
        [
            cv2.resize(
                cv2.GaussianBlur(plane, (0, 0), POOL_BLUR_SIGMA),
                (CELLS, CELLS),
                interpolation=cv2.INTER_AREA,
            )
            for plane in maps.reshape(ORIENTATION_BINS, SHAPE_SIDE, SHAPE_SIDE).astype(np.float32)
        ]
    )
    vector = np.sqrt(np.maximum(pooled.ravel(), 0))
    norm = float(np.linalg.norm(vector))
    return np.asarray(vector / norm if norm > 0 else vector, np.float32)


def turned_descriptor(vector: NDArray[np.float32], turn: str) -> NDArray[np.float32]:
    """The descriptor of the turned drawing, from the upright one: cells move as the image
    does; a mirror reverses orientations, a quarter turn shifts them by 90 degrees."""
    planes = vector.reshape(ORIENTATION_BINS, CELLS, CELLS)
    if turn.startswith("mirror"):
        planes = planes[(-np.arange(ORIENTATION_BINS)) % ORIENTATION_BINS, :, ::-1]
    quarter_turns = _quarter_turns(turn)
    planes = np.rot90(planes, quarter_turns, axes=(1, 2))
    planes = np.roll(planes, (quarter_turns % 2) * ORIENTATION_BINS // 2, axis=0)
    return np.ascontiguousarray(planes.ravel(), np.float32)


def _quarter_turns(turn: str) -> int:
    if turn not in TURNS:
        raise ValueError(f"unknown turn {turn!r}; one of {', '.join(TURNS)}")
    return {"rot90": 1, "rot180": 2, "rot270": 3}.get(turn.removeprefix("mirror_"), 0)
