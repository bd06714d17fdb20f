"""Draw the sample collection (example_images/) and the query images (test_images/).

Deterministic: the same script always writes the same files. Each of the 24 symbols is a
brand-like drawing (long straight strokes, circles, arcs, hooks, letters) inked on squared
paper with its own grid pitch, grid colour and scan noise. test_images/ holds re-drawn
variants of some of them: another grid, small shifts and jitter, one with an extra stroke
and one on plain paper.

    python scripts/make_sample_images.py
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
JPEG_QUALITY = 82

# A primitive in a unit square: ("line", x1, y1, x2, y2), ("circle", cx, cy, r),
# ("arc", cx, cy, r, start_degrees, end_degrees) or ("text", letters, cx, cy, size).
Primitive = tuple[object, ...]

SYMBOLS: list[list[Primitive]] = [
    [("circle", 0.5, 0.5, 0.3), ("line", 0.2, 0.5, 0.8, 0.5)],
    [("line", 0.3, 0.2, 0.3, 0.8), ("line", 0.3, 0.8, 0.7, 0.8)],
    [("arc", 0.5, 0.55, 0.3, 180, 360), ("line", 0.5, 0.25, 0.5, 0.8)],
    [("text", "A", 0.5, 0.5, 1.0), ("line", 0.15, 0.85, 0.85, 0.85)],
    [("line", 0.2, 0.2, 0.8, 0.8), ("line", 0.8, 0.2, 0.2, 0.8), ("circle", 0.5, 0.5, 0.1)],
    [("line", 0.5, 0.15, 0.5, 0.65), ("arc", 0.38, 0.65, 0.12, 0, 180)],
    [("circle", 0.5, 0.5, 0.32), ("circle", 0.5, 0.5, 0.15)],
    [("line", 0.2, 0.3, 0.8, 0.3), ("line", 0.2, 0.7, 0.8, 0.7), ("line", 0.5, 0.3, 0.5, 0.7)],
    [("text", "JR", 0.5, 0.5, 0.9)],
    [("arc", 0.5, 0.5, 0.3, 30, 330), ("line", 0.5, 0.5, 0.85, 0.5)],
    [("line", 0.2, 0.8, 0.5, 0.2), ("line", 0.5, 0.2, 0.8, 0.8), ("line", 0.3, 0.6, 0.7, 0.6)],
    [
        ("line", 0.25, 0.25, 0.75, 0.25),
        ("line", 0.75, 0.25, 0.75, 0.75),
        ("line", 0.75, 0.75, 0.25, 0.75),
        ("line", 0.25, 0.75, 0.25, 0.25),
    ],
    [("text", "7", 0.4, 0.5, 1.1), ("arc", 0.65, 0.55, 0.15, 90, 270)],
    [
        ("line", 0.5, 0.15, 0.5, 0.85),
        ("arc", 0.5, 0.35, 0.2, 180, 360),
        ("arc", 0.5, 0.65, 0.2, 0, 180),
    ],
    [("circle", 0.35, 0.5, 0.18), ("circle", 0.65, 0.5, 0.18)],
    [
        ("line", 0.15, 0.5, 0.85, 0.5),
        ("arc", 0.85, 0.4, 0.1, 270, 450),
        ("arc", 0.15, 0.6, 0.1, 90, 270),
    ],
    [("text", "H", 0.5, 0.45, 1.0), ("arc", 0.5, 0.55, 0.38, 20, 160)],
    [
        ("line", 0.2, 0.25, 0.8, 0.25),
        ("line", 0.5, 0.25, 0.5, 0.8),
        ("arc", 0.38, 0.8, 0.12, 0, 180),
    ],
    [("line", 0.3, 0.2, 0.3, 0.8), ("line", 0.3, 0.5, 0.75, 0.2), ("line", 0.3, 0.5, 0.75, 0.8)],
    [
        ("arc", 0.5, 0.5, 0.3, 0, 180),
        ("arc", 0.5, 0.5, 0.15, 180, 360),
        ("line", 0.2, 0.5, 0.35, 0.5),
    ],
    [("text", "S", 0.35, 0.5, 0.9), ("line", 0.62, 0.2, 0.62, 0.8), ("line", 0.62, 0.5, 0.85, 0.5)],
    [("line", 0.2, 0.8, 0.8, 0.2), ("circle", 0.3, 0.3, 0.1), ("circle", 0.7, 0.7, 0.1)],
    [
        ("line", 0.15, 0.35, 0.85, 0.35),
        ("line", 0.15, 0.65, 0.85, 0.65),
        ("line", 0.35, 0.15, 0.35, 0.85),
        ("line", 0.65, 0.15, 0.65, 0.85),
    ],
    [("arc", 0.5, 0.6, 0.3, 200, 340), ("text", "O", 0.5, 0.45, 0.7)],
]


@dataclass(frozen=True)
class Sheet:
    """How one drawing is put on paper and scanned."""

    size: int
    grid_pitch: int  # 0: plain paper
    grid_colour: tuple[int, int, int]
    grid_thickness: int
    ink_colour: tuple[int, int, int]
    ink_thickness: int
    shift: tuple[float, float] = (0.0, 0.0)
    jitter: float = 0.0
    noise: float = 4.0
    seed: int = 0


def _draw(canvas: NDArray[np.uint8], symbol: list[Primitive], sheet: Sheet) -> None:
    rng = np.random.default_rng(sheet.seed)
    size = sheet.size

    def point(x: object, y: object) -> tuple[int, int]:
        jx, jy = rng.normal(0.0, sheet.jitter, 2)
        px = (float(x) + sheet.shift[0] + jx) * size  # type: ignore[arg-type]
        py = (float(y) + sheet.shift[1] + jy) * size  # type: ignore[arg-type]
        return round(px), round(py)

    colour, width = sheet.ink_colour, sheet.ink_thickness
    for kind, *args in symbol:
        if kind == "line":
            cv2.line(canvas, point(*args[:2]), point(*args[2:4]), colour, width, cv2.LINE_AA)
        elif kind == "circle":
            radius = round(float(args[2]) * size)  # type: ignore[arg-type]
            cv2.circle(canvas, point(*args[:2]), radius, colour, width, cv2.LINE_AA)
        elif kind == "arc":
            radius = round(float(args[2]) * size)  # type: ignore[arg-type]
            start, end = float(args[3]), float(args[4])  # type: ignore[arg-type]
            cv2.ellipse(
                canvas,
                point(*args[:2]),
                (radius, radius),
                0,
                start,
                end,
                colour,
                width,
                cv2.LINE_AA,
            )
        elif kind == "text":
            letters, scale = str(args[0]), float(args[3])  # type: ignore[arg-type]
            font_scale = scale * size / 90
            thickness = max(width, 2)
            (tw, th), _ = cv2.getTextSize(letters, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
            cx, cy = point(*args[1:3])
            cv2.putText(
                canvas,
                letters,
                (cx - tw // 2, cy + th // 2),
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale,
                colour,
                thickness,
                cv2.LINE_AA,
            )


def render(symbol: list[Primitive], sheet: Sheet) -> NDArray[np.uint8]:
    """Paper, grid, ink, then scan artefacts (noise and a little blur); RGB uint8."""
    rng = np.random.default_rng(sheet.seed + 1000)
    size = sheet.size
    paper = np.array([246, 244, 236], dtype=np.float32)
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = paper.astype(np.uint8)
    if sheet.grid_pitch:
        offset = int(rng.integers(0, sheet.grid_pitch))
        for position in range(offset, size, sheet.grid_pitch):
            cv2.line(
                canvas, (position, 0), (position, size - 1), sheet.grid_colour, sheet.grid_thickness
            )
            cv2.line(
                canvas, (0, position), (size - 1, position), sheet.grid_colour, sheet.grid_thickness
            )
    _draw(canvas, symbol, sheet)
    noisy = canvas.astype(np.float32) + rng.normal(0.0, sheet.noise, canvas.shape)
    blurred = cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (3, 3), 0.6)
    return np.asarray(blurred, dtype=np.uint8)


GRID_COLOURS = [(150, 180, 215), (170, 170, 170), (140, 200, 160), (120, 150, 200)]
INK_COLOURS = [(25, 25, 30), (30, 40, 120), (20, 20, 20)]


def collection_sheet(number: int) -> Sheet:
    rng = np.random.default_rng(number)
    return Sheet(
        size=int(rng.choice([480, 560, 640])),
        grid_pitch=int(rng.integers(18, 44)),
        grid_colour=GRID_COLOURS[number % len(GRID_COLOURS)],
        grid_thickness=int(rng.integers(1, 3)),
        ink_colour=INK_COLOURS[number % len(INK_COLOURS)],
        ink_thickness=int(rng.integers(7, 14)),
        noise=float(rng.uniform(2.0, 6.0)),
        seed=number,
    )


def save_jpeg(path: Path, rgb: NDArray[np.uint8]) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


def main() -> None:
    examples, queries = ROOT / "example_images", ROOT / "test_images"
    examples.mkdir(exist_ok=True)
    queries.mkdir(exist_ok=True)
    for number, symbol in enumerate(SYMBOLS, start=1):
        save_jpeg(examples / f"imagen{number}.jpg", render(symbol, collection_sheet(number)))

    def redrawn(number: int, **changes: Any) -> Sheet:
        base = collection_sheet(number)
        return replace(base, seed=base.seed + 500, **changes)

    variants: dict[str, tuple[int, Sheet, list[Primitive]]] = {
        "imagen1_redrawn.jpg": (
            1,
            redrawn(1, grid_pitch=30, shift=(0.03, -0.02), jitter=0.008),
            [],
        ),
        "imagen4_redrawn.jpg": (
            4,
            redrawn(
                4, grid_pitch=22, grid_colour=GRID_COLOURS[2], shift=(-0.04, 0.02), jitter=0.006
            ),
            [],
        ),
        "imagen7_shifted.jpg": (7, redrawn(7, shift=(0.05, 0.05), jitter=0.01), []),
        "imagen12_extra_stroke.jpg": (
            12,
            redrawn(12, jitter=0.006),
            [("line", 0.25, 0.25, 0.75, 0.75)],
        ),
        "imagen16_plain_paper.jpg": (16, redrawn(16, grid_pitch=0, jitter=0.005), []),
        "imagen21_redrawn.jpg": (
            21,
            redrawn(21, grid_pitch=36, grid_thickness=2, grid_colour=GRID_COLOURS[3], jitter=0.008),
            [],
        ),
    }
    for name, (number, sheet, extra) in variants.items():
        save_jpeg(queries / name, render(SYMBOLS[number - 1] + extra, sheet))


if __name__ == "__main__":
    main()
