"""Remove the squared-paper grid behind a hand-drawn symbol, keeping the ink.

A pure function of an RGB image; nothing is written anywhere. Grid lines are thinner than
the drawing's strokes, and unlike strokes they come as many long, parallel, roughly
horizontal and vertical lines. The method uses both facts:

1. Lighting: estimate the paper level with a coarse maximum filter and divide by it, so
   an unevenly lit scan becomes a flat white page, and measure each pixel's darkness.
2. Ink level: a high percentile of darkness among the dark pixels; everything darker
   than half of it (ink, and grid lines dark enough to matter) is "dark".
3. Grid test: a mask holds a grid when, in most vertical and horizontal strips of the
   page, long thin runs stack up as several separate parallel lines (a drawing has a few
   long strokes, a grid has one line per pitch, across the whole page). Strips keep lines
   rotated by a few degrees or gently curved separate.
4. Thickness: grow a disc from 3 pixels until an opening of the dark mask with it no
   longer holds a grid: that disc is wider than the grid's lines and crossings, and the
   strokes are wider still. Light grids never reach the dark mask and need no disc; a
   grid that reaches it but is clearly lighter than the ink (light grey lines beside
   pencil strokes barely thicker than them) must not decide the disc either: the
   threshold is raised between the grid's darkness and the ink's (Otsu), and when no grid
   is left above it, that threshold alone separates the ink. Likewise a grid of another
   colour than the ink (blue strokes on a black grid as thick as they are): the dark
   pixels split in two by colour, one group a grid and the other not, the colour alone
   separates the ink.
5. Removal: a morphological closing of the brightness with that disc fills every thin
   dark structure with paper, whatever its colour, angle, breaks or hairs; strokes wider
   than the disc, straight ones lying on grid lines included, keep their shape.
6. Specks: small components much thinner than the strokes (grid dots, noise) go. A page
   without grid lines but strewn with many of them (dots and crosses where faint lines
   met) is closed like a grid with a disc wider than they are, so that those touching a
   stroke go too; or, when they are of another colour than the ink, they go by colour.
7. Output: the ink pixels, lighting-corrected, on white paper, and whether the strokes
   kept are barely wider than the disc (``Ink.strokes_at_risk``): thinner strokes of
   the same drawing may then have gone with the grid, and the caller may clean the page
   again at a finer scale, where the disc's steps are finer than the strokes' width.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

RGBImage = NDArray[np.uint8]
Mask = NDArray[np.bool_]

# Paper level: max filter over this fraction of the image side, computed at 1/8 scale;
# never under PAPER_FLOOR_FRACTION of the page's brightest paper (its PAPER_PERCENTILE),
# since inside a stroke wider than the window (a bold brand) the filter finds only ink,
# while a scan's uneven light darkens its paper far less.
PAPER_WINDOW_FRACTION = 0.06
PAPER_DOWNSCALE = 8
PAPER_FLOOR_FRACTION = 0.7
PAPER_PERCENTILE = 95
# Ink level: this percentile of darkness among pixels darker than MIN_INK_DARKNESS.
INK_LEVEL_PERCENTILE = 90
MIN_INK_DARKNESS = 0.25
# Ink is what is darker than this fraction of the ink level.
INK_THRESHOLD_FRACTION = 0.5
# Grid test: strips of this fraction of the side; runs at least this fraction long; a
# grid shows at least MIN_GRID_LINES separate lines
GRID_STRIP_FRACTION = 0.2
GRID_RUN_FRACTION = 0.08
MIN_GRID_LINES = 4
# ... in at least this share of the strips: a grid covers the page, while a figure of
# many parallel strokes fills only the strips it stands in.
GRID_STRIP_SHARE = 0.75
# Largest disc tried for the closing, as a fraction of the image side.
MAX_DISC_FRACTION = 0.03
# The closing's disc: this fraction of the image side wider than the smallest that
# removes the grid (2 pixels at the working size of 448, 4 when a page is cleaned again
# at twice it), at most MAX_DISC_OF_STROKE of the strokes' width (twice
# STROKE_WIDTH_PERCENTILE of the distance to the paper over the stroke pixels).
DISC_MARGIN_FRACTION = 0.0045
MAX_DISC_OF_STROKE = 0.6
STROKE_WIDTH_PERCENTILE = 95
# Specks: components under this fraction of the image area whose thickness is under
# this fraction of the thickest stroke's.
SPECK_AREA_FRACTION = 0.0005
SPECK_THICKNESS_FRACTION = 0.6
# At least this many specks are the debris of a grid (dots and crosses at intersections):
# their thickness, this percentile of theirs, sizes the closing that removes the debris
# touching the strokes too.
MIN_DEBRIS_SPECKS = 20
SPECK_THICKNESS_PERCENTILE = 90
# A grid whose mean darkness is under this fraction of the ink's is lighter than the
# ink: the ink is then told from it by darkness, not by thickness.
LIGHT_GRID_FRACTION = 0.7
# A grid and ink whose colours (Lab's a and b, 0-255) differ by at least this much are
# told apart by colour.
MIN_COLOUR_DIFFERENCE = 30.0
PAPER_WHITE = 255
# Strokes kept are at risk when a quarter of their length (AT_RISK_PERCENTILE of their
# widths along their middle lines) is under AT_RISK_STROKE_RATIO times the disc that
# removed the grid (or its debris): on the registry benchmark, brands drawn small beside
# a bolder addition on 400- and 800-pixel pages (strokes 4 to 6 pixels wide at working
# size, discs 3 and 5) lost strokes, while a quarter of every real scan's is 8 pixels
# wide or more beside a disc of 5.
AT_RISK_PERCENTILE = 25
AT_RISK_STROKE_RATIO = 1.5


@dataclass(frozen=True)
class GridRemovalParams:
    """The parameters worth tuning, settable through GRID_* settings."""

    ink_threshold_fraction: float = INK_THRESHOLD_FRACTION
    min_grid_lines: int = MIN_GRID_LINES
    max_disc_fraction: float = MAX_DISC_FRACTION


def _paper_level(grey: NDArray[np.float32]) -> NDArray[np.float32]:
    """The brightness the paper would have at every pixel without ink or grid."""
    height, width = grey.shape
    small = cv2.resize(
        grey,
        (max(1, width // PAPER_DOWNSCALE), max(1, height // PAPER_DOWNSCALE)),
        interpolation=cv2.INTER_AREA,
    )
    window = max(3, round(max(height, width) * PAPER_WINDOW_FRACTION / PAPER_DOWNSCALE) | 1)
    paper = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (window, window)))
    paper = cv2.blur(paper, (window, window))
    paper = np.maximum(paper, PAPER_FLOOR_FRACTION * np.percentile(paper, PAPER_PERCENTILE))
    full = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.maximum(np.asarray(full, np.float32), 1.0)


def _disc(diameter: int) -> NDArray[np.uint8]:
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter)), np.uint8)


def _opened(mask: Mask, diameter: int) -> Mask:
    """``mask`` without what is thinner than a disc of ``diameter`` (an opening)."""
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _disc(diameter))
    return np.asarray(opened > 0, bool)


def _parallel_lines_per_strip(mask: NDArray[np.uint8], run: int, strip: int) -> list[int]:
    """For horizontal lines: in each vertical strip, the number of separate bands of rows
    that hold a horizontal run of at least ``run`` pixels."""
    runs = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, run), np.uint8))
    counts = []
    for left in range(0, mask.shape[1] - run + 1, strip):
        rows = np.asarray(runs[:, left : left + strip].any(axis=1), bool)
        starts = int(np.count_nonzero(rows[1:] & ~rows[:-1])) + int(rows[0])
        counts.append(starts)
    return counts


def holds_grid(mask: Mask, min_lines: int = MIN_GRID_LINES) -> bool:
    """Whether ``mask`` holds many parallel long lines in both directions."""
    side = max(mask.shape)
    run = max(8, round(side * GRID_RUN_FRACTION))
    strip = max(run, round(side * GRID_STRIP_FRACTION))
    # Thicken by a pixel so slightly rotated one-pixel lines still hold long runs.
    thick = np.asarray(cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)), np.uint8)
    for oriented in (thick, np.ascontiguousarray(thick.T)):
        counts = _parallel_lines_per_strip(oriented, run, strip)
        if not counts or np.mean(np.asarray(counts) >= min_lines) < GRID_STRIP_SHARE:
            return False
    return True


def grid_disc(dark: Mask, params: GridRemovalParams) -> tuple[int, Mask]:
    """The smallest disc whose opening of ``dark`` holds no grid, and that opening (the
    strokes); ``(0, dark)`` when ``dark`` holds no grid to begin with."""
    if not holds_grid(dark, params.min_grid_lines):
        return 0, dark
    largest = max(3, math.ceil(int(max(dark.shape)) * params.max_disc_fraction))
    for diameter in range(3, largest, 2):
        opened = _opened(dark, diameter)
        if not holds_grid(opened, params.min_grid_lines):
            return diameter, opened
    return largest, _opened(dark, largest)


def _with_margin(diameter: int, strokes: Mask) -> int:
    """The closing's disc: ``DISC_MARGIN_FRACTION`` of the side wider than the smallest
    that removes the grid, since a scanner's broken, hairy grid lines are locally thicker
    than they are on average and would survive it as stubs; but never over
    ``MAX_DISC_OF_STROKE`` of the strokes' width, so that the strokes keep their shape."""
    if not strokes.any():
        return diameter
    widest = int(MAX_DISC_OF_STROKE * _stroke_width(strokes)) | 1
    margin = round(DISC_MARGIN_FRACTION * int(max(strokes.shape)))
    return max(diameter, min(diameter + margin, widest))


def _stroke_width(strokes: Mask) -> float:
    """Twice ``STROKE_WIDTH_PERCENTILE`` of the distance to the paper over ``strokes``."""
    distance = cv2.distanceTransform(strokes.astype(np.uint8), cv2.DIST_L2, 5)
    return 2 * float(np.percentile(distance[strokes], STROKE_WIDTH_PERCENTILE))


def _debris_disc(dark: Mask) -> tuple[int, Mask]:
    """The disc that closes a grid's debris away (``(0, dark)`` when there is too little
    debris, or the strokes are too thin for it), and the opening of ``dark`` with it."""
    specks, thickness = _specks(dark)
    if not thickness or not (dark & ~specks).any():
        return 0, dark
    diameter = round(2 * thickness) | 1
    if diameter > MAX_DISC_OF_STROKE * _stroke_width(dark & ~specks):
        return 0, dark
    return diameter, _opened(dark, diameter)


def _specks(mask: Mask) -> tuple[Mask, float]:
    """The specks of ``mask``: small components much thinner than the strokes (grid dots
    and crosses, noise); and their thickness (the largest distance to the paper within
    them, at ``SPECK_THICKNESS_PERCENTILE`` of the specks)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return np.zeros_like(mask), 0.0
    distance = np.asarray(cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3))
    small = stats[:, cv2.CC_STAT_AREA] < SPECK_AREA_FRACTION * mask.size
    # Thickness (largest distance to the background) is only needed for small components;
    # the thickest stroke's is the largest distance of all.
    in_small = small[labels] & mask
    thickness = np.zeros(count, np.float32)
    np.maximum.at(thickness, labels[in_small], distance[in_small])
    speck = small & (thickness < SPECK_THICKNESS_FRACTION * distance.max())
    speck[0] = False
    if speck.sum() < MIN_DEBRIS_SPECKS:
        return np.asarray(speck[labels], bool), 0.0
    return np.asarray(speck[labels], bool), float(
        np.percentile(thickness[speck], SPECK_THICKNESS_PERCENTILE)
    )


def _threshold_above_a_lighter_grid(
    darkness: NDArray[np.float32], dark: Mask, params: GridRemovalParams
) -> float | None:
    """A threshold between a grid's darkness and the ink's, when the grid in ``dark`` is
    clearly lighter than the ink and vanishes above it; else ``None``.

    The two darkness levels among the dark pixels are split by Otsu's method; the grid is
    the lighter one (it outnumbers the ink, which is why the ink level can miss it)."""
    levels = np.round(darkness[dark] * 255).astype(np.uint8).reshape(-1, 1)
    split, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    lower, upper = levels[levels <= split], levels[levels > split]
    if not upper.size or lower.mean() >= LIGHT_GRID_FRACTION * upper.mean():
        return None
    threshold = float(split) / 255
    return None if holds_grid(darkness > threshold, params.min_grid_lines) else threshold


def _colour_split(colours: NDArray[np.float32]) -> NDArray[np.bool_] | None:
    """Which of ``colours`` (Lab's a and b, a row a pixel) form the second of two colour
    groups, when they hold two: projected on their main axis and split by Otsu's method,
    the two groups' mean colours at least ``MIN_COLOUR_DIFFERENCE`` apart; else ``None``."""
    if len(colours) < 2:
        return None
    centred = colours - colours.mean(axis=0)
    axis = np.linalg.svd(centred.T @ centred)[0][:, 0]
    along = np.asarray(colours @ axis, np.float32)
    low, high = float(along.min()), float(along.max())
    if high - low < MIN_COLOUR_DIFFERENCE:  # one colour (a scanner's grey page)
        return None
    levels = np.round((along - low) / (high - low) * 255).astype(np.uint8)
    split, _ = cv2.threshold(levels.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    second = along > low + float(split) / 255 * (high - low)
    if second.all() or not second.any():
        return None
    if float(along[second].mean() - along[~second].mean()) < MIN_COLOUR_DIFFERENCE:
        return None
    return np.asarray(second, bool)


def _ink_of_another_colour(
    image: RGBImage, dark: Mask, is_grid: Callable[[Mask], bool]
) -> Mask | None:
    """The ink, when the grid in ``dark`` (its lines, or what a scanner left of them:
    ``is_grid``) is of another colour than the ink (blue strokes on a black grid as thick
    as they are, or beside its black crosses); else ``None``.

    The dark pixels split in two by colour (``_colour_split``, on their colours alone:
    the page's other pixels play no part); the split counts when one group is a grid and
    the other is not, and the grid's group is of one colour: a drawing in two inks on a
    grid of a third colour is left to the thickness method, which keeps both."""
    ys, xs = np.nonzero(dark)
    pixels = image[ys, xs].reshape(-1, 1, 3)
    colours = cv2.cvtColor(pixels, cv2.COLOR_RGB2LAB)[:, 0, 1:].astype(np.float32)
    second = _colour_split(colours)
    if second is None:
        return None
    for grid_rows in (~second, second):
        grid, ink = np.zeros_like(dark), np.zeros_like(dark)
        grid[ys[grid_rows], xs[grid_rows]] = True
        ink[ys[~grid_rows], xs[~grid_rows]] = True
        if is_grid(grid) and not is_grid(ink):
            return None if _colour_split(colours[grid_rows]) is not None else ink
    return None


def _holds_debris(mask: Mask) -> bool:
    """Whether ``mask`` holds what a scanner leaves of a grid: many specks."""
    return _specks(mask)[1] > 0


@dataclass(frozen=True)
class Ink:
    """What grid removal found on a page (steps 1-6)."""

    mask: Mask
    paper: NDArray[np.float32]  # the paper level
    grid_disc: int  # the smallest disc that removed the grid's lines or debris; 0: none

    @property
    def strokes_at_risk(self) -> bool:
        """Whether the strokes kept are barely wider than the grid's lines (step 7)."""
        if not self.grid_disc or not self.mask.any():
            return False
        distance = cv2.distanceTransform(self.mask.astype(np.uint8), cv2.DIST_L2, 5)
        # A stroke's middle line: where the distance to the paper peaks across it.
        middle = (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8))) & self.mask
        widths = 2 * distance[middle]
        return bool(
            np.percentile(widths, AT_RISK_PERCENTILE) < AT_RISK_STROKE_RATIO * self.grid_disc
        )


def ink_mask(image: RGBImage, params: GridRemovalParams = GridRemovalParams()) -> Ink:
    """Return the ink pixels of an RGB drawing on (squared) paper (steps 1-6)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    paper = _paper_level(grey)
    darkness = np.clip(1.0 - grey / paper, 0.0, 1.0)
    candidates = darkness[darkness > MIN_INK_DARKNESS]
    if candidates.size == 0:
        return Ink(np.zeros(grey.shape, bool), paper, 0)
    threshold = params.ink_threshold_fraction * float(
        np.percentile(candidates, INK_LEVEL_PERCENTILE)
    )
    dark = darkness > threshold
    diameter, strokes = grid_disc(dark, params)
    smallest = diameter
    if diameter:
        lighter = _threshold_above_a_lighter_grid(darkness, dark, params)
        if lighter is not None:
            # The strokes' anti-aliased rims are lighter than the grid's cores: grow the
            # strokes back by a pixel into what the first threshold called dark.
            cores = (darkness > lighter).astype(np.uint8)
            dark = dark & (cv2.dilate(cores, np.ones((3, 3), np.uint8)) > 0)
            diameter = smallest = 0
        else:
            coloured = _ink_of_another_colour(
                image, dark, lambda mask: holds_grid(mask, params.min_grid_lines)
            )
            if coloured is not None:
                return Ink(coloured & ~_specks(coloured)[0], paper, 0)
            diameter = _with_margin(diameter, strokes)
    if not diameter:
        # No grid lines (left), but maybe a page strewn with what a scanner left of them
        # (dots and crosses at intersections, as on grey paper): of another colour than
        # the ink, they go by colour; else those touching a stroke are not specks, and go
        # with a closing like a grid's when the strokes are wide enough.
        coloured = _ink_of_another_colour(image, dark, _holds_debris)
        if coloured is not None:
            return Ink(coloured & ~_specks(coloured)[0], paper, 0)
        diameter, strokes = _debris_disc(dark)
        smallest = diameter
    if diameter:
        brightness = cv2.morphologyEx(1.0 - darkness, cv2.MORPH_CLOSE, _disc(diameter))
        # The closing leaves fillets where grid lines meet a stroke; the opening of the
        # dark mask with the same disc has none, and a pixel's growth restores the edges.
        near_strokes = cv2.dilate(strokes.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        dark = ((1.0 - brightness) > threshold) & near_strokes
    return Ink(dark & ~_specks(dark)[0], paper, smallest)


def remove_grid(image: RGBImage, params: GridRemovalParams = GridRemovalParams()) -> RGBImage:
    """Return the drawing of the RGB ``image`` as lighting-corrected ink on white paper."""
    return cleaned(image, params)[0]


def cleaned(
    image: RGBImage, params: GridRemovalParams = GridRemovalParams()
) -> tuple[RGBImage, Ink]:
    """``remove_grid``'s image, and the ink it found (``Ink.strokes_at_risk``: step 7)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("remove_grid expects an 8-bit RGB array of shape (H, W, 3)")
    ink = ink_mask(image, params)
    out = np.full(image.shape, PAPER_WHITE, np.uint8)
    gain = (PAPER_WHITE / ink.paper[ink.mask])[:, None]
    out[ink.mask] = np.clip(image[ink.mask].astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return out, ink
