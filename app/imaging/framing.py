"""Framing: the drawing alone, centred in the square the embedder sees.

Pipeline (``frame_drawing``), on a (grid-free) RGB drawing on paper:

1. ink: pixels ``INK_CONTRAST`` darker than the paper (the median pixel);
2. page borders: long straight runs along an edge of the page are not the drawing;
3. marks: the ink's connected pieces, pieces a pen lift apart counted as one;
4. the drawing: the largest mark, and every large mark within ``LARGE_MARK_REACH`` of
   the drawing's side (``FAR_MARK_REACH`` for one holding ``FAR_MARK_SHARE`` of its ink:
   an addition beside a brand), grown until nothing more joins; the frame is theirs
   alone, so a fragment much smaller than the drawing (a grid stub, a dash, a speck)
   cannot move it:
   small marks inside the frame stay, the others, like marks out of reach, are painted
   over with paper and leave both the frame and the image;
5. crop to the drawing's bounding box with a margin, pad to a square on the paper colour,
   resize to ``EMBEDDER_SIDE``.

Two scans of one brand, one with a page border and corner dashes, are framed alike.
"""

from dataclasses import dataclass
from functools import reduce
from typing import Final

import cv2
import numpy as np

from app.imaging.grid_removal import Mask, RGBImage
from app.imaging.levels import median_level

EMBEDDER_SIDE = 224
# Ink, for framing: this much darker than the paper (the median pixel).
INK_CONTRAST = 48
# Margin around the drawing's bounding box, as a fraction of its longer side.
FRAME_MARGIN_FRACTION = 0.08
# Pieces of ink this close (fraction of the page's longer side) are one mark.
PEN_LIFT_FRACTION = 0.008
# A mark this much smaller than the largest one (in ink pixels) is small.
SMALL_MARK_FRACTION = 0.05
# How far from the drawing so far, as a fraction of its longer side, a large mark may lie
# to join it (a brand's separate parts, an addition beside it).
LARGE_MARK_REACH = 0.35
# A mark holding at least FAR_MARK_SHARE of the drawing's ink so far joins it from up to
# FAR_MARK_REACH of its side, unless it lies in the page's border band: a registry's
# addition may stand half the brand's side away or more, while the large marks that must
# stay out hold little of its ink (stubs and dashes beside a drawing broken into pieces,
# whose largest mark is small) or lie along an edge (a page border broken into dashes).
FAR_MARK_REACH = 0.7
FAR_MARK_SHARE = 0.1
# A drawing's parts: its large marks, those whose bounding boxes overlap or lie within
# this fraction of the drawing's longer side of each other counted as one part (a stick
# figure's head, limbs and body; a "B" of two loops; a ring and the mark inside it).
PART_GAP_FRACTION = 0.01
# Failing a core with those parts, parts within this wider fraction are one: a thin stroke
# broken where grid removal took a crossing line leaves a brand in pieces a few pixels
# apart, while an addition may stand as close to an unbroken brand.
WIDE_PART_GAP_FRACTION = 0.02
# A drawing's largest part is its core (the brand, beside an addition) when it holds at
# least this share of the ink of the large marks that make the drawing.
CORE_SHARE = 0.5
# Bump whenever what a drawing's core is changes: the cores' stored shapes and stroke
# masks carry it, and are recomputed (without the model) when it differs.
CORE_VERSION: Final = 3
# Page borders: straight runs of ink at least BORDER_LENGTH_FRACTION of the page long,
# along an edge and within BORDER_BAND_FRACTION of the side from it.
BORDER_BAND_FRACTION = 0.05
BORDER_LENGTH_FRACTION = 0.4


@dataclass(frozen=True)
class _Mark:
    left: int
    top: int
    right: int
    bottom: int
    area: int

    def gap(self, box: tuple[int, int, int, int]) -> int:
        """Pixels between this mark's bounding box and ``box`` (0 when they overlap)."""
        left, top, right, bottom = box
        dx = max(left - self.right, self.left - right, 0)
        dy = max(top - self.bottom, self.top - bottom, 0)
        return max(dx, dy)

    def along_an_edge(self, shape: tuple[int, ...]) -> bool:
        """Whether this mark lies within ``BORDER_BAND_FRACTION`` of an edge of the page."""
        height, width = shape
        band = BORDER_BAND_FRACTION * max(height, width)
        return (
            self.right <= band
            or self.bottom <= band
            or self.left >= width - band
            or self.top >= height - band
        )


def drawing_and_core(ink: Mask) -> tuple[Mask, Mask]:
    """The ink pixels that belong to the drawing: ``ink`` without page borders and stray
    marks far from the main strokes (steps 2-4 of the module's pipeline); and its core:
    its largest part alone (``_parts``; failing that, its largest mark), when others join
    it and it holds at least ``CORE_SHARE`` of their ink (a brand with an addition beside
    it: the brand), else an empty mask."""
    height, width = ink.shape
    ink = ink & ~_page_borders(ink)
    if not ink.any():
        return ink, ink
    reach = max(1, round(PEN_LIFT_FRACTION * max(height, width)))
    joined = cv2.dilate(ink.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    areas = np.bincount(labels[ink], minlength=count)
    candidates = {
        label: _Mark(
            int(stats[label, cv2.CC_STAT_LEFT]),
            int(stats[label, cv2.CC_STAT_TOP]),
            int(stats[label, cv2.CC_STAT_LEFT] + stats[label, cv2.CC_STAT_WIDTH]),
            int(stats[label, cv2.CC_STAT_TOP] + stats[label, cv2.CC_STAT_HEIGHT]),
            int(areas[label]),
        )
        for label in range(1, count)
    }
    largest = max(candidates, key=lambda label: candidates[label].area)
    small_area = SMALL_MARK_FRACTION * candidates[largest].area
    large = {label for label, mark in candidates.items() if mark.area >= small_area}

    def ink_of(part: set[int]) -> int:
        return sum(candidates[label].area for label in part)

    kept = {largest}
    box = _box(candidates[largest])
    grew = True
    while grew:
        grew = False
        side = max(box[2] - box[0], box[3] - box[1])
        for label in large - kept:
            mark = candidates[label]
            far = mark.area >= FAR_MARK_SHARE * ink_of(kept) and not mark.along_an_edge(ink.shape)
            if mark.gap(box) <= (FAR_MARK_REACH if far else LARGE_MARK_REACH) * side:
                kept.add(label)
                box = _union(box, _box(mark))
                grew = True

    def with_small_marks(marks: set[int], frame: tuple[int, int, int, int]) -> Mask:
        # Small marks never move the frame: they stay where they lie within it (a dot, a
        # short dash of the brand) and go where they do not (grid stubs, specks).
        marks = marks | {
            label
            for label in candidates.keys() - large
            if candidates[label].gap(frame) == 0 and _inside(candidates[label], frame)
        }
        keep = np.zeros(count, bool)
        keep[list(marks)] = True
        return np.asarray(ink & keep[labels], bool)

    drawing = with_small_marks(kept, box)
    # The largest part first (a brand drawn in several marks, a ring around an inner mark,
    # beside its addition), then with the wider gap (a brand broken into pieces), then the
    # largest mark (an addition too close to tell apart).
    for parts in (
        _parts(kept, candidates, box, PART_GAP_FRACTION),
        _parts(kept, candidates, box, WIDE_PART_GAP_FRACTION),
        [{label} for label in kept],
    ):
        core = max(parts, key=ink_of)
        if len(parts) > 1 and ink_of(core) >= CORE_SHARE * ink_of(kept):
            core_box = reduce(_union, (_box(candidates[label]) for label in core))
            return drawing, with_small_marks(core, core_box)
    return drawing, np.zeros_like(ink)


def _parts(
    labels: set[int], marks: dict[int, _Mark], box: tuple[int, int, int, int], gap: float
) -> list[set[int]]:
    """The marks ``labels`` grouped into parts: marks within ``gap`` of the drawing's
    (``box``) longer side of each other, directly or through others, are one."""
    reach = gap * max(box[2] - box[0], box[3] - box[1])
    parts: list[set[int]] = []
    for label in sorted(labels):
        mark = marks[label]
        near = [part for part in parts if any(mark.gap(_box(marks[o])) <= reach for o in part)]
        merged = {label}.union(*near)
        parts = [part for part in parts if part not in near] + [merged]
    return parts


def _inside(mark: _Mark, box: tuple[int, int, int, int]) -> bool:
    left, top, right, bottom = box
    return mark.left >= left and mark.top >= top and mark.right <= right and mark.bottom <= bottom


def _page_borders(ink: Mask) -> Mask:
    """Long straight horizontal and vertical runs of ink near the page's edges, and the
    pixels right beside them."""
    height, width = ink.shape
    band = max(1, round(BORDER_BAND_FRACTION * max(height, width)))
    binary = ink.astype(np.uint8)
    top_or_bottom, left_or_right = np.zeros_like(binary), np.zeros_like(binary)
    top_or_bottom[:band], top_or_bottom[-band:] = 1, 1
    left_or_right[:, :band], left_or_right[:, -band:] = 1, 1
    horizontal = np.ones((1, max(2, round(BORDER_LENGTH_FRACTION * width))), np.uint8)
    vertical = np.ones((max(2, round(BORDER_LENGTH_FRACTION * height)), 1), np.uint8)
    along_rows = np.asarray(cv2.morphologyEx(binary, cv2.MORPH_OPEN, horizontal), np.uint8)
    along_columns = np.asarray(cv2.morphologyEx(binary, cv2.MORPH_OPEN, vertical), np.uint8)
    borders = (along_rows & top_or_bottom) | (along_columns & left_or_right)
    return np.asarray(cv2.dilate(borders, np.ones((5, 5), np.uint8)) > 0, bool) & ink


def _box(mark: _Mark) -> tuple[int, int, int, int]:
    return mark.left, mark.top, mark.right, mark.bottom


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def frame_drawing(image: RGBImage) -> RGBImage:
    """Keep the drawing alone, crop to it with a margin, pad to a square on the paper
    colour and resize to ``EMBEDDER_SIDE``. An image without ink is padded whole."""
    return frame_parts(image, core=False)[0]


def frame_parts(image: RGBImage, core: bool = True) -> tuple[RGBImage, RGBImage | None]:
    """The framed drawing (``frame_drawing``), and, with ``core``, its core framed the
    same way when it has one (``drawing_and_core``): what a brand drawn with an addition
    beside it is also searched and found as."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    paper_level = median_level(grey)
    light = np.asarray(grey >= paper_level, np.uint8)
    paper = [int(median_level(image[:, :, channel], light)) for channel in range(3)]
    ink = np.asarray(grey < paper_level - INK_CONTRAST, bool)
    drawing, largest = drawing_and_core(ink)
    whole = _framed(image, ink, drawing, paper)
    if not core:
        return whole, None
    return whole, _framed(image, ink, largest, paper) if largest.any() else None


def _framed(image: RGBImage, ink: Mask, drawing: Mask, paper: list[int]) -> RGBImage:
    left, top, width, height = cv2.boundingRect(drawing.astype(np.uint8))
    inked = width > 0
    if not inked:
        top, left, height, width = 0, 0, image.shape[0], image.shape[1]
    bottom, right = top + height, left + width
    # Paint the dropped marks, and their anti-aliased rims, with paper.
    dropped = cv2.dilate((ink & ~drawing).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    crop = image[top:bottom, left:right].copy()
    crop[dropped[top:bottom, left:right] & ~drawing[top:bottom, left:right]] = paper
    side = max(height, width)
    side += 2 * round(side * FRAME_MARGIN_FRACTION) if inked else 0
    square = np.empty((side, side, 3), np.uint8)
    square[:] = paper
    y, x = (side - height) // 2, (side - width) // 2
    square[y : y + height, x : x + width] = crop
    interpolation = cv2.INTER_AREA if side > EMBEDDER_SIDE else cv2.INTER_CUBIC
    framed = cv2.resize(square, (EMBEDDER_SIDE, EMBEDDER_SIDE), interpolation=interpolation)
    return np.asarray(framed, np.uint8)
