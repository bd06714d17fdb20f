"""Grid removal and framing on synthetic scans with known ink and grid masks."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.imaging.framing import frame_drawing
from app.imaging.grid_removal import remove_grid
from app.imaging.levels import median_level
from app.imaging.preprocessing import (
    PreprocessingOptions,
    dark_on_light,
    prepare_for_embedding,
    to_working_size,
    without_grid,
)
from bench.brand_scans import Redraw, ink_on_paper
from bench.grid_removal import score, service_remover
from bench.hough_baseline import find_grid_segments
from bench.synthetic_scans import ScanSpec, make_scan

GRID_STYLES = ["light_grey", "dark_broken_hairy", "blue", "green", "dotted", "half_ink"]


def cleaned(spec: ScanSpec) -> dict[str, float]:
    scan = make_scan(spec)
    return score(scan, service_remover(scan.image))


@pytest.mark.parametrize("style", GRID_STYLES)
def test_grid_contrast_falls_and_ink_stays_on_every_grid_style(style: str) -> None:
    metrics = cleaned(ScanSpec(style, 900, seed=3))

    assert metrics["grid"] < 0.1
    assert metrics["keep"] > 0.95
    assert metrics["iou"] > 0.75


def test_the_original_method_would_fail_the_same_bound() -> None:
    from bench.hough_baseline import remove_grid as hough_remove_grid

    scan = make_scan(ScanSpec("dark_broken_hairy", 900, seed=3))

    assert score(scan, hough_remove_grid(scan.image))["grid"] > 0.1


def test_straight_strokes_lying_on_grid_lines_survive() -> None:
    side, pitch = 640, 32
    page = np.full((side, side, 3), 245, np.uint8)
    for position in range(16, side, pitch):
        page[position : position + 2, :] = 60  # dark grid, 2 px
        page[:, position : position + 2] = 60
    ink = np.zeros((side, side), np.uint8)
    row, column = 16 + 5 * pitch, 16 + 9 * pitch
    cv2.line(ink, (100, row + 1), (540, row + 1), 255, 8)  # horizontal, on a grid line
    cv2.line(ink, (column + 1, 120), (column + 1, 560), 255, 8)  # vertical, on a grid line
    page[ink > 0] = 20
    core = cv2.erode(ink, np.ones((5, 5), np.uint8)) > 0

    out = cv2.cvtColor(remove_grid(page), cv2.COLOR_RGB2GRAY)

    assert (out[core] < 100).mean() > 0.99
    grid_only = (page[:, :, 0] == 60) & (cv2.dilate(ink, np.ones((9, 9), np.uint8)) == 0)
    assert (out[grid_only] < 200).mean() < 0.01


def test_a_drawing_without_grid_is_left_alone() -> None:
    metrics = cleaned(ScanSpec("none", 800, seed=4))

    assert metrics["keep"] > 0.99
    assert metrics["spur"] < 0.001
    assert metrics["iou"] > 0.9


def test_a_blank_page_stays_blank() -> None:
    blank = np.full((300, 400, 3), 238, np.uint8)

    assert (remove_grid(blank) == 255).all()


def test_light_drawing_on_dark_paper_is_turned_dark_on_light() -> None:
    page = np.full((400, 400, 3), 25, np.uint8)
    cv2.circle(page, (200, 200), 100, (235, 235, 235), 14)

    seen = np.asarray(prepare_for_embedding(Image.fromarray(page)).convert("L"))

    assert np.median(seen) > 200
    assert seen.min() < 80


def test_a_bold_brand_covering_most_of_the_page_stays_dark_on_light() -> None:
    page = np.full((400, 400, 3), 245, np.uint8)
    cv2.line(page, (100, 100), (300, 300), (20, 20, 25), 140)
    cv2.line(page, (300, 100), (100, 300), (20, 20, 25), 140)
    assert np.median(page) < 110  # most of the page is ink, strokes far wider than a grid's

    seen = np.asarray(prepare_for_embedding(Image.fromarray(page)).convert("L"))

    assert seen[112, 112] < 80 and seen[112, 10] > 200  # the X dark, the paper white


def test_a_symbol_in_a_corner_is_framed_like_the_same_symbol_in_the_middle() -> None:
    def page_with_ring(centre: tuple[int, int]) -> np.ndarray:
        page = np.full((600, 600, 3), 255, np.uint8)
        cv2.circle(page, centre, 60, (0, 0, 0), 10)
        return page

    corner = frame_drawing(page_with_ring((90, 90))).astype(float)
    middle = frame_drawing(page_with_ring((300, 300))).astype(float)

    assert corner.shape == (224, 224, 3)
    assert np.abs(corner - middle).mean() < 1.0
    assert corner.min() < 50  # the ring is there, not cropped away


def test_framing_keeps_the_whole_drawing_inside_the_square() -> None:
    wide = np.full((200, 800, 3), 255, np.uint8)
    cv2.line(wide, (20, 100), (780, 100), (0, 0, 0), 6)

    framed = cv2.cvtColor(frame_drawing(wide), cv2.COLOR_RGB2GRAY)

    dark_columns = np.nonzero((framed < 128).any(axis=0))[0]
    assert dark_columns.min() > 0 and dark_columns.max() < 223
    assert dark_columns.max() - dark_columns.min() > 180


def test_grid_removal_writes_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    remove_grid(make_scan(ScanSpec("blue", 500, seed=1)).image)

    assert list(tmp_path.iterdir()) == []


def test_grid_removal_refuses_non_rgb_arrays() -> None:
    with pytest.raises(ValueError, match="RGB"):
        remove_grid(np.zeros((10, 10), dtype=np.uint8))


def test_baseline_reads_opencv5_hough_segments_as_rows_of_four() -> None:
    scan = make_scan(ScanSpec("dark_broken_hairy", 600, seed=1))

    segments = find_grid_segments(cv2.cvtColor(scan.image, cv2.COLOR_RGB2GRAY))

    assert segments.ndim == 2
    assert segments.shape[1] == 4
    assert len(segments) > 0


@pytest.mark.parametrize("size", [1, 2, 999, 1000])
def test_median_level_equals_numpy_median_with_and_without_a_mask(size: int) -> None:
    rng = np.random.default_rng(size)
    channel = rng.integers(0, 256, (1, size), dtype=np.uint8)
    mask = (rng.random((1, size)) < 0.5).astype(np.uint8)
    mask[0, 0] = 1

    assert median_level(channel) == np.median(channel)
    assert median_level(channel, mask) == np.median(channel[mask > 0])


def test_thin_strokes_as_wide_as_a_small_scans_grid_lines_survive() -> None:
    side = 400  # a small scan: its 2-pixel strokes barely wider than the grid's lines
    drawing, circle = np.zeros((side, side), np.uint8), np.zeros((side, side), np.uint8)
    cv2.ellipse(drawing, (150, 150), (60, 80), 0, 0, 300, 255, 2, cv2.LINE_AA)
    cv2.line(drawing, (150, 60), (210, 240), 255, 2, cv2.LINE_AA)
    cv2.circle(circle, (300, 300), 30, 255, 4, cv2.LINE_AA)
    redraw = Redraw(seed=3, side=side, paper="dark_broken")
    page = ink_on_paper(np.maximum(drawing, circle), redraw, np.random.default_rng(3), pen=4)
    working = dark_on_light(to_working_size(page))
    core = cv2.resize(drawing, working.shape[:2]) > 250
    away = cv2.resize(cv2.dilate(drawing | circle, np.ones((9, 9))), working.shape[:2]) == 0
    grid_only = away & (cv2.cvtColor(working, cv2.COLOR_RGB2GRAY) < 150)

    out = cv2.cvtColor(without_grid(page, working, PreprocessingOptions()), cv2.COLOR_RGB2GRAY)

    assert (out[core] < 150).mean() > 0.95
    assert grid_only.sum() > 10_000
    assert (out[grid_only] < 200).mean() < 0.01
    # At the working size alone, the grid's disc takes most of the drawing with it.
    at_working_size = cv2.cvtColor(remove_grid(working), cv2.COLOR_RGB2GRAY)
    assert (at_working_size[core] < 150).mean() < 0.6


BLUE_INK = (30, 45, 150)


def _thin_drawing(side: int) -> np.ndarray:
    drawing = np.zeros((side, side), np.uint8)
    cv2.ellipse(drawing, (side // 2, side // 2), (60, 80), 0, 0, 300, 255, 2, cv2.LINE_AA)
    cv2.line(drawing, (side // 2, side // 2 - 90), (side // 2 + 60, side // 2 + 90), 255, 2)
    return drawing


@pytest.mark.parametrize("paper", ["dark_broken", "grey"])
def test_blue_strokes_as_thin_as_a_black_grids_lines_or_crosses_are_kept_and_the_grid_goes(
    paper: str,
) -> None:
    side = 400
    drawing = _thin_drawing(side)
    redraw = Redraw(seed=5, side=side, paper=paper)
    page = ink_on_paper(drawing, redraw, np.random.default_rng(5), pen=6, ink_colour=BLUE_INK)
    working = dark_on_light(to_working_size(page))
    core = cv2.resize(drawing, working.shape[:2]) > 250
    away = cv2.resize(cv2.dilate(drawing, np.ones((9, 9))), working.shape[:2]) == 0
    grid_only = away & (cv2.cvtColor(working, cv2.COLOR_RGB2GRAY) < 110)

    out = cv2.cvtColor(without_grid(page, working, PreprocessingOptions()), cv2.COLOR_RGB2GRAY)

    assert grid_only.sum() > 1_000
    assert (out[core] < 200).mean() > 0.95
    assert (out[grid_only] < 200).mean() < 0.01


def test_a_drawing_in_two_inks_on_a_black_grid_keeps_both() -> None:
    side = 400
    red, blue = np.zeros((side, side), np.uint8), np.zeros((side, side), np.uint8)
    cv2.circle(red, (140, 200), 70, 255, 5, cv2.LINE_AA)
    cv2.line(blue, (260, 100), (260, 300), 255, 5)
    redraw = Redraw(seed=5, side=side, paper="dark_broken")
    page = ink_on_paper(np.zeros_like(red), redraw, np.random.default_rng(5), pen=6)
    for mask, colour in ((red, (170, 30, 30)), (blue, BLUE_INK)):
        alpha = (mask.astype(np.float32) / 255)[..., None]
        page = (page * (1 - alpha) + np.array(colour, np.float32) * alpha).astype(np.uint8)
    working = dark_on_light(to_working_size(page))

    out = cv2.cvtColor(without_grid(page, working, PreprocessingOptions()), cv2.COLOR_RGB2GRAY)

    # Told apart by colour alone, the grid's group would hold the red circle too.
    for mask in (red, blue):
        core = cv2.resize(cv2.erode(mask, np.ones((3, 3))), working.shape[:2]) > 250
        assert (out[core] < 200).mean() > 0.95
