"""Grid removal on synthetic squared paper: the grid fades, the drawing stays."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.grid_removal import find_grid_segments, remove_grid

PAPER, GRID, INK = 245, 150, 20


def squared_paper(size: int = 600, pitch: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (image, grid-only mask, ink-core mask) of a thick ring drawn on a grid."""
    grey = np.full((size, size), PAPER, dtype=np.uint8)
    grid = np.zeros((size, size), dtype=bool)
    for position in range(pitch // 2, size, pitch):
        grid[position : position + 2, :] = True
        grid[:, position : position + 2] = True
    grey[grid] = GRID
    ink = np.zeros((size, size), dtype=np.uint8)
    cv2.circle(ink, (size // 2, size // 2), size // 4, 255, 18)
    grey[ink > 0] = INK
    core = cv2.erode(ink, np.ones((7, 7), np.uint8)) > 0
    grid_only = grid & (cv2.dilate(ink, np.ones((9, 9), np.uint8)) == 0)
    return np.dstack([grey] * 3), grid_only, core


def grid_contrast(image: np.ndarray, grid_only: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(float)
    return float(PAPER - grey[grid_only].mean())


def test_grid_removal_lowers_the_grid_contrast_and_keeps_a_thick_stroke() -> None:
    image, grid_only, core = squared_paper()

    cleaned = remove_grid(image)

    assert grid_contrast(cleaned, grid_only) < 0.25 * grid_contrast(image, grid_only)
    grey = cv2.cvtColor(cleaned, cv2.COLOR_RGB2GRAY)
    assert (grey[core] < 80).mean() > 0.95


def test_image_without_straight_lines_is_returned_unchanged() -> None:
    blank = np.full((300, 300, 3), 240, dtype=np.uint8)
    cv2.circle(blank, (150, 150), 60, (10, 10, 10), 12)

    assert np.array_equal(remove_grid(blank), blank)


def test_segments_come_back_as_rows_of_four_coordinates() -> None:
    image, _, _ = squared_paper()

    segments = find_grid_segments(image[:, :, 0])

    assert segments.ndim == 2
    assert segments.shape[1] == 4
    assert len(segments) >= 10


def test_grid_removal_writes_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    image, _, _ = squared_paper()

    remove_grid(image)

    assert list(tmp_path.iterdir()) == []


def test_grid_removal_refuses_non_rgb_arrays() -> None:
    with pytest.raises(ValueError, match="RGB"):
        remove_grid(np.zeros((10, 10), dtype=np.uint8))
