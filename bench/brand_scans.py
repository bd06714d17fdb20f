"""Brand-like drawings on squared paper, and the same brands re-drawn by another hand.

Used by ``bench/retrieval.py`` (is the right brand first?) and by the tests of framing
and ranking. Everything is deterministic for a given seed.

A brand is a few strokes in a unit square (lines, polylines, circles, arcs, zigzags,
triangles), kept as point lists so that a re-drawing can bend them. ``draw_scan`` inks a
brand on a page:

1. the brand is turned (one of the 8 turns of a square), then re-traced: a smooth random
   warp, a few degrees of rotation and shear, a new pen width;
2. it is placed anywhere on a new page at 40-85% of its side;
3. the page gets squared paper (dark broken lines, light grey, blue, grey paper with
   darker lines, or none), and, like
   real registry scans, sometimes a page border line near an edge and dashes in a corner;
4. scan artefacts: uneven light, blur, noise, JPEG.
"""

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.synthetic_scans import grid_distances, scan_artefacts

Stroke = NDArray[np.float64]  # (n, 2) points in the unit square
PAPER_STYLES = ("dark_broken", "light_grey", "blue", "none", "grey")
GRID_COLOURS = {"dark_broken": (60, 60, 66), "light_grey": (190, 190, 190), "blue": (125, 165, 225)}
# Grey paper: lines only somewhat darker than the paper, and, as a scanner's threshold
# leaves them, dark dots and small crosses where they meet, all over the page.
GREY_PAPER = (178, 178, 172)
GREY_LINE_SHADE = 0.8
CROSS_COLOUR = (70, 70, 70)
INKS = ((22, 22, 28), (30, 45, 150), (70, 70, 75))
# The 8 turns of a square, named as the service names them.
TURNS = ("upright", "rot90", "rot180", "rot270", "mirror", "mirror_rot90", "mirror_rot180",
         "mirror_rot270")  # fmt: skip


@dataclass(frozen=True)
class Redraw:
    """How a brand is drawn on one page."""

    seed: int
    turn: str = "upright"
    warp: float = 0.0  # amplitude of the smooth warp, fraction of the drawing's side
    rotation_deg: float = 0.0
    shear: float = 0.0
    pen_scale: float = 1.0
    side: int = 800
    fill: float = 0.6  # drawing's side as a fraction of the page's
    paper: str = "light_grey"
    border: bool = False  # a page border line near an edge, and dashes in a corner


def _arc(cx: float, cy: float, r: float, start: float, end: float) -> Stroke:
    angles = np.linspace(math.radians(start), math.radians(end), 48)
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)


def make_brand(seed: int) -> list[Stroke]:
    """A random brand of 2 to 4 strokes filling roughly the unit square."""
    rng = np.random.default_rng([seed, 7])
    strokes: list[Stroke] = []
    for _ in range(int(rng.integers(2, 5))):
        kind = rng.choice(["line", "polyline", "circle", "arc", "zigzag", "triangle"])
        if kind == "line":
            strokes.append(rng.uniform(0.05, 0.95, (2, 2)))
        elif kind == "polyline":
            strokes.append(rng.uniform(0.05, 0.95, (int(rng.integers(3, 5)), 2)))
        elif kind == "circle":
            r = rng.uniform(0.1, 0.3)
            cx, cy = rng.uniform(0.05 + r, 0.95 - r, 2)
            strokes.append(_arc(cx, cy, r, 0, 360))
        elif kind == "arc":
            r = rng.uniform(0.15, 0.4)
            cx, cy = rng.uniform(0.05 + r, 0.95 - r, 2)
            start = rng.uniform(0, 360)
            strokes.append(_arc(cx, cy, r, start, start + rng.uniform(90, 270)))
        elif kind == "zigzag":
            x = np.linspace(rng.uniform(0.05, 0.3), rng.uniform(0.7, 0.95), int(rng.integers(4, 7)))
            y = rng.uniform(0.3, 0.7) + np.where(np.arange(len(x)) % 2, 1, -1) * rng.uniform(
                0.08, 0.2
            )
            points = np.stack([x, y], axis=1)
            strokes.append(points[:, ::-1] if rng.random() < 0.5 else points)
        else:
            centre, r = rng.uniform(0.35, 0.65, 2), rng.uniform(0.15, 0.3)
            angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2, 0])
            strokes.append(centre + r * np.stack([np.cos(angles), np.sin(angles)], axis=1))
    return strokes


def turn_points(points: Stroke, turn: str) -> Stroke:
    """``points`` of the unit square turned as ``np.rot90`` / ``np.fliplr`` turn an image
    (``rot90``: a quarter turn counter-clockwise; ``mirror``: left and right swapped,
    before the rotation)."""
    x, y = points[:, 0].copy(), points[:, 1].copy()
    if turn.startswith("mirror"):
        x = 1 - x
    quarter_turns = {"rot90": 1, "rot180": 2, "rot270": 3}.get(turn.removeprefix("mirror_"), 0)
    for _ in range(quarter_turns):  # image rows go down: (x, y) -> (y, 1 - x)
        x, y = y, 1 - x
    return np.stack([x, y], axis=1)


def _redrawn(strokes: list[Stroke], redraw: Redraw, rng: np.random.Generator) -> list[Stroke]:
    """Turn, then bend the strokes as another hand would: a smooth warp, rotation, shear."""
    frequencies = rng.uniform(0.5, 1.5, (2, 2))
    phases = rng.uniform(0, 2 * np.pi, (2, 2))
    angle = math.radians(redraw.rotation_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shear = np.array([[1.0, redraw.shear], [0.0, 1.0]])
    out = []
    for stroke in strokes:
        dense = _densify(turn_points(stroke, redraw.turn))
        x, y = dense[:, 0], dense[:, 1]
        dx = redraw.warp * np.sin(2 * np.pi * frequencies[0, 0] * y + phases[0, 0])
        dy = redraw.warp * np.sin(2 * np.pi * frequencies[1, 1] * x + phases[1, 1])
        bent = np.stack([x + dx, y + dy], axis=1) - 0.5
        out.append(bent @ (rotation @ shear).T + 0.5)
    return out


def _densify(points: Stroke, step: float = 0.01) -> Stroke:
    pieces = [points[:1]]
    for a, b in itertools.pairwise(points):
        count = max(1, math.ceil(float(np.linalg.norm(b - a)) / step))
        pieces.append(a + (b - a) * np.linspace(0, 1, count + 1)[1:, None])
    return np.concatenate(pieces)


def draw_scan(strokes: list[Stroke], redraw: Redraw) -> NDArray[np.uint8]:
    """An RGB scan of ``strokes`` drawn as ``redraw`` says."""
    rng = np.random.default_rng([redraw.seed, 11])
    side = redraw.side
    bent = _redrawn(strokes, redraw, rng)
    points = np.concatenate(bent)
    low, high = points.min(axis=0), points.max(axis=0)
    size = side * redraw.fill
    scale = size / max(float((high - low).max()), 1e-6)
    origin = rng.uniform(0.04 * side, side - size - 0.04 * side, 2) if redraw.fill < 0.9 else 0
    ink = np.zeros((side, side), np.uint8)
    pen = max(2, round(side * 0.011 * redraw.pen_scale))
    for stroke in bent:
        pixels = ((stroke - low) * scale + origin).round().astype(np.int32)
        cv2.polylines(ink, [pixels], False, 255, pen, cv2.LINE_AA)
    return ink_on_paper(ink, redraw, rng, pen)


def ink_on_paper(
    ink: NDArray[np.uint8],
    redraw: Redraw,
    rng: np.random.Generator,
    pen: int,
    max_grid_width: float = math.inf,
    ink_colour: tuple[int, int, int] | None = None,
) -> NDArray[np.uint8]:
    """An RGB scan of an ink mask (0-255, the page's size): squared paper as ``redraw``
    says, with grid lines about a third of ``pen`` wide (at most ``max_grid_width``
    pixels), in one of ``INKS`` (or ``ink_colour``), then scan artefacts."""
    side = ink.shape[0]
    paper = np.array(rng.choice([(250, 250, 247), (243, 239, 226)]), np.float32)
    page = np.empty((side, side, 3), np.float32)
    page[:] = GREY_PAPER if redraw.paper == "grey" else paper
    if redraw.paper != "none":
        pitch = side * rng.uniform(0.025, 0.07)
        grid_width = max(1.0, min(pen * rng.uniform(0.25, 0.45), max_grid_width))
        du, dv = grid_distances(side, pitch, math.radians(rng.uniform(-2, 2)), 0.0, rng)
        across, along = du < grid_width / 2, dv < grid_width / 2
        grid = across | along
        if redraw.paper == "dark_broken":
            gaps = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), pitch / 5)
            grid &= gaps > np.quantile(gaps, 0.2)
        if redraw.paper == "grey":
            page[grid] *= GREY_LINE_SHADE
            arm = max(1.0, pitch * rng.uniform(0.05, 0.2))
            crosses = (across & (dv < arm)) | (along & (du < arm))
            page[crosses] = CROSS_COLOUR
        else:
            page[grid] = GRID_COLOURS[redraw.paper]
    if redraw.border:
        _draw_border_and_dashes(page, np.random.default_rng([redraw.seed, 13]))
    drawn = INKS[int(rng.integers(len(INKS)))]  # drawn either way: the same page follows
    colour = np.array(ink_colour or drawn, np.float32)
    alpha = (ink.astype(np.float32) / 255)[..., None]
    page = page * (1 - alpha) + colour * alpha

    return scan_artefacts(
        page, rng, light_falloff=0.15, blur_sigma=(0.3, 0.8), jpeg_quality=(65, 92)
    )


def _draw_border_and_dashes(page: NDArray[np.float32], rng: np.random.Generator) -> None:
    """A dark page border line along one edge and a few grid dashes in a corner, as grid
    removal leaves them on real scans."""
    side = page.shape[0]
    width = max(2, round(side * 0.006))
    offset = round(side * rng.uniform(0.005, 0.02))
    along = int(rng.integers(2))
    far = rng.random() < 0.5
    position = side - 1 - offset if far else offset
    start, end = round(side * rng.uniform(0, 0.2)), round(side * rng.uniform(0.8, 1))
    if along:
        cv2.line(page, (position, start), (position, end), (40, 40, 45), width)
    else:
        cv2.line(page, (start, position), (end, position), (40, 40, 45), width)
    corner = rng.integers(2, size=2) * (side - round(side * 0.08))
    for _ in range(3):
        x, y = corner + rng.integers(0, round(side * 0.06), 2)
        length = round(side * rng.uniform(0.01, 0.03))
        cv2.line(page, (int(x), int(y)), (int(x) + length, int(y)), (50, 50, 55), width)


def redraw_like_another_hand(seed: int, rng: np.random.Generator, **changes: object) -> Redraw:
    """Random re-drawing settings within the ranges the retrieval benchmark promises."""
    values: dict[str, object] = {
        "seed": seed,
        "warp": rng.uniform(0.01, 0.03),
        "rotation_deg": rng.uniform(-5, 5),
        "shear": rng.uniform(-0.08, 0.08),
        "pen_scale": rng.uniform(0.6, 1.5),
        "side": int(rng.choice([400, 800, 1500])),
        "fill": rng.uniform(0.4, 0.85),
        "paper": str(rng.choice(PAPER_STYLES)),
        "border": bool(rng.random() < 0.5),
    }
    values.update(changes)
    return Redraw(**values)  # type: ignore[arg-type]
