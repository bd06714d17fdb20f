"""Synthetic scans of drawings on squared paper, with ground-truth ink and grid masks.

Used by ``bench/grid_removal.py`` to score grid removers, and by the unit tests.
Everything is deterministic for a given ``ScanSpec``.
"""

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

STYLES = ("none", "light_grey", "dark_broken_hairy", "blue", "green", "dotted", "half_ink")
DARK_INK, BLUE_INK = (22, 22, 28), (30, 45, 150)
GRID_COLOURS = {
    "light_grey": (185, 185, 185),
    "dark_broken_hairy": (55, 55, 60),
    "blue": (120, 160, 225),
    "green": (110, 190, 140),
    "dotted": (90, 90, 95),
    "half_ink": (120, 120, 125),
}


@dataclass(frozen=True)
class ScanSpec:
    style: str
    side: int
    seed: int


@dataclass
class Scan:
    image: NDArray[np.uint8]  # RGB
    ink: NDArray[np.bool_]  # every ink pixel
    ink_core: NDArray[np.bool_]  # ink pixels away from the stroke edges
    grid: NDArray[np.bool_]  # grid pixels not covered by ink
    stroke_width: int
    grid_width: float


def grid_distances(
    side: int, pitch: float, angle: float, warp: float, rng: np.random.Generator
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Distance of every pixel to the nearest vertical and horizontal grid line."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    cos, sin = np.cos(angle), np.sin(angle)
    u = cos * xs + sin * ys
    v = -sin * xs + cos * ys
    # Curved paper: lines bend gently, a fraction of a pitch over the page.
    u += warp * np.sin(2 * np.pi * ys / side * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
    v += warp * np.sin(2 * np.pi * xs / side * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
    offset_u, offset_v = rng.uniform(0, pitch, 2)
    du = np.abs((u - offset_u + pitch / 2) % pitch - pitch / 2)
    dv = np.abs((v - offset_v + pitch / 2) % pitch - pitch / 2)
    return du, dv


def _draw_ink(
    side: int, width: int, rng: np.random.Generator, du: NDArray[np.float32]
) -> NDArray[np.uint8]:
    """Long straight strokes (one on a grid line), circles, arcs, a hook, a crossing, a letter."""
    mask = np.zeros((side, side), np.uint8)

    def p(x: float, y: float) -> tuple[int, int]:
        return round(x * side), round(y * side)

    lo, hi = 0.15, 0.85
    y = rng.uniform(0.2, 0.35)
    cv2.line(mask, p(rng.uniform(0.1, 0.25), y), p(rng.uniform(0.6, 0.9), y), 255, width)
    # A vertical stroke lying on a grid line: follow the line's pixels in column space.
    column = int(np.argmin(du[side // 2, side // 3 : 2 * side // 3])) + side // 3
    top, bottom = int(rng.uniform(0.35, 0.5) * side), int(rng.uniform(0.75, 0.9) * side)
    rows = np.arange(top, bottom)
    cols = np.array([int(np.argmin(du[r, column - 3 : column + 4])) + column - 3 for r in rows])
    for r, c in zip(rows, cols, strict=True):
        cv2.circle(mask, (int(c), int(r)), width // 2, 255, -1)
    centre = p(rng.uniform(0.3, 0.4), rng.uniform(0.55, 0.65))
    cv2.circle(mask, centre, round(rng.uniform(0.08, 0.14) * side), 255, width)
    arc_centre = p(rng.uniform(0.65, 0.75), rng.uniform(0.5, 0.6))
    radius = round(rng.uniform(0.08, 0.12) * side)
    cv2.ellipse(mask, arc_centre, (radius, radius), 0, 200, 340, 255, width)
    # A hook: a diagonal stroke ending in a tight arc.
    start = p(rng.uniform(lo, 0.25), rng.uniform(0.7, hi))
    end = p(rng.uniform(0.3, 0.4), rng.uniform(0.8, 0.9))
    cv2.line(mask, start, end, 255, width)
    cv2.ellipse(
        mask, (end[0] + side // 25, end[1]), (side // 25, side // 25), 0, 0, 180, 255, width
    )
    # A crossing of two diagonals and a letter.
    cx, cy = p(rng.uniform(0.75, 0.8), rng.uniform(0.75, 0.8))
    arm = side // 12
    cv2.line(mask, (cx - arm, cy - arm), (cx + arm, cy + arm), 255, width)
    cv2.line(mask, (cx - arm, cy + arm), (cx + arm, cy - arm), 255, width)
    scale = side / 260
    cv2.putText(mask, "K", p(0.45, 0.2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(2, width))
    return mask


def scan_artefacts(
    image: NDArray[np.float32],
    rng: np.random.Generator,
    *,
    light_falloff: float = 0.18,
    blur_sigma: tuple[float, float] = (0.4, 0.9),
    jpeg_quality: tuple[int, int] = (60, 92),
) -> NDArray[np.uint8]:
    """What a scanner does to a float RGB page: uneven lighting, blur, noise, JPEG."""
    side_y, side_x = image.shape[:2]
    ys, xs = np.mgrid[0:side_y, 0:side_x].astype(np.float32) / max(side_y, side_x)
    lighting = (
        1.0
        - light_falloff * rng.random() * (xs * rng.uniform(-1, 1) + ys * rng.uniform(-1, 1)) ** 2
    )
    image = image * lighting[..., None]
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*blur_sigma))
    image += rng.normal(0, rng.uniform(2, 5), image.shape).astype(np.float32)
    bgr = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    _, jpeg = cv2.imencode(
        ".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(*jpeg_quality))]
    )
    return np.asarray(cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def make_scan(spec: ScanSpec) -> Scan:
    rng = np.random.default_rng([spec.seed, spec.side, STYLES.index(spec.style)])
    side = spec.side
    width = int(np.clip(round(side * rng.uniform(0.006, 0.012)), 3, 20))
    pitch = side * rng.uniform(0.02, 0.10)
    # Thin grid lines, about a third of the ink; the hardest style uses half the ink width.
    grid_width = width / 2 if spec.style == "half_ink" else max(1.0, width * rng.uniform(0.2, 0.35))
    angle = np.deg2rad(rng.uniform(-3, 3))
    du, dv = grid_distances(side, pitch, angle, side * rng.uniform(0, 0.004), rng)

    if spec.style == "none":
        grid = np.zeros((side, side), bool)
    elif spec.style == "dotted":
        radius = max(1.0, grid_width * 0.8)
        grid = (du < radius) & (dv < radius)
    else:
        grid = (du < grid_width / 2) | (dv < grid_width / 2)
    if spec.style == "dark_broken_hairy":
        gaps = cv2.GaussianBlur(
            rng.random((side, side)).astype(np.float32), (0, 0), max(1.5, pitch / 6)
        )
        grid &= gaps > np.quantile(gaps, 0.15)
        hairs = cv2.dilate(grid.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        grid |= hairs & (rng.random((side, side)) > 0.75)

    ink = _draw_ink(side, width, rng, du) > 0
    ink_colour = BLUE_INK if rng.random() < 0.3 else DARK_INK
    paper = np.array(rng.choice([(250, 250, 247), (244, 240, 228)]), np.float32)
    image = np.empty((side, side, 3), np.float32)
    image[:] = paper
    if spec.style != "none":
        image[grid] = GRID_COLOURS[spec.style]
    image[ink] = ink_colour

    rgb = scan_artefacts(image, rng)

    core_radius = max(1, width // 4)
    core = (
        cv2.erode(
            ink.astype(np.uint8),
            cv2.getStructuringElement(
                cv2.MORPH_ELLIPSE, (2 * core_radius + 1, 2 * core_radius + 1)
            ),
        )
        > 0
    )
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return Scan(
        image=np.asarray(rgb, np.uint8),
        ink=ink,
        ink_core=core,
        grid=grid & ~near_ink,
        stroke_width=width,
        grid_width=grid_width,
    )
