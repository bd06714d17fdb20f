"""Framing on real-scan defects: page borders, corner dashes, thin strokes on light grids."""

import cv2
import numpy as np
from PIL import Image

from app.imaging.framing import drawing_and_core
from app.imaging.grid_removal import remove_grid
from app.imaging.preprocessing import prepare_for_embedding, prepare_with_core
from bench.brand_scans import Redraw, draw_scan, make_brand


def seen(image: np.ndarray) -> np.ndarray:
    return np.asarray(prepare_for_embedding(Image.fromarray(image)).convert("L"), np.float32)


def ink_box(grey: np.ndarray) -> tuple[int, ...]:
    return tuple(cv2.boundingRect((grey < 128).astype(np.uint8)))


def test_a_page_border_and_corner_dashes_do_not_change_the_frame() -> None:
    for seed in range(4):
        strokes = make_brand(seed)
        clean = seen(draw_scan(strokes, Redraw(seed=seed, paper="dark_broken", fill=0.55)))
        bordered = seen(
            draw_scan(strokes, Redraw(seed=seed, paper="dark_broken", fill=0.55, border=True))
        )

        box_clean, box_bordered = ink_box(clean), ink_box(bordered)
        assert np.abs(np.subtract(box_clean, box_bordered)).max() <= 4, (seed, box_clean)
        assert np.abs(clean - bordered).mean() < 6


def test_the_drawing_fills_the_frame_wherever_it_was_on_the_page() -> None:
    strokes = make_brand(3)
    small, large = (
        ink_box(seen(draw_scan(strokes, Redraw(seed=seed, fill=fill, border=True))))
        for seed, fill in ((1, 0.4), (2, 0.85))
    )

    assert np.abs(np.subtract(small, large)).max() <= 6


def thin_stick_figure(ink: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """A pencil figure with 2-pixel strokes on a grid of 2-pixel light grey lines."""
    side, pitch = 400, 12
    page = np.full((side, side, 3), 248, np.uint8)
    for position in range(5, side, pitch):
        page[position : position + 2, :] = grid
        page[:, position : position + 2] = grid
    mask = np.zeros((side, side), np.uint8)
    cv2.circle(mask, (200, 150), 60, 255, 2, cv2.LINE_AA)
    cv2.line(mask, (200, 210), (200, 320), 255, 2, cv2.LINE_AA)
    cv2.line(mask, (140, 250), (260, 250), 255, 2, cv2.LINE_AA)
    cv2.line(mask, (200, 320), (150, 380), 255, 2, cv2.LINE_AA)
    alpha = mask[..., None] / 255.0
    page = (page * (1 - alpha) + ink * alpha).astype(np.uint8)
    noise = np.random.default_rng(0).normal(0, 3, page.shape)
    return np.clip(cv2.GaussianBlur(page, (0, 0), 0.6) + noise, 0, 255).astype(np.uint8), mask


def test_thin_pencil_strokes_on_a_light_grey_grid_keep_their_strokes_and_lose_the_grid() -> None:
    for ink, grid in ((120, 170), (100, 160), (110, 175)):
        page, mask = thin_stick_figure(ink, grid)

        out = cv2.cvtColor(remove_grid(page), cv2.COLOR_RGB2GRAY)

        assert (out[mask > 200] < 200).mean() > 0.97
        beside = (cv2.dilate(mask, np.ones((3, 3), np.uint8)) == 0) & (
            cv2.dilate(mask, np.ones((15, 15), np.uint8)) > 0
        )
        assert (out[beside] < 220).mean() < 0.002  # no grid stubs along the strokes
        away = cv2.dilate(mask, np.ones((15, 15), np.uint8)) == 0
        assert (out[away] < 220).mean() < 0.001


def test_a_drawing_on_grey_paper_with_darker_grid_lines_is_framed_like_on_plain_paper() -> None:
    for seed in range(3):
        strokes = make_brand(seed)
        plain = seen(draw_scan(strokes, Redraw(seed=seed, paper="none", fill=0.5)))
        grey = seen(draw_scan(strokes, Redraw(seed=seed, paper="grey", fill=0.5)))

        assert np.abs(np.subtract(ink_box(plain), ink_box(grey))).max() <= 6, seed
        # No grid dot or cross survives on the paper around the drawing.
        assert np.count_nonzero(grey[:12] < 128) + np.count_nonzero(grey[-12:] < 128) == 0


def test_a_grid_stub_beside_a_drawing_corner_does_not_move_its_frame() -> None:
    for seed in range(3):
        strokes = make_brand(seed)
        page = draw_scan(strokes, Redraw(seed=seed, paper="none", fill=0.5))
        left, top, _, _ = cv2.boundingRect(
            (cv2.cvtColor(page, cv2.COLOR_RGB2GRAY) < 128).astype(np.uint8)
        )
        stubbed = page.copy()
        # A dark grid stub, as thick as the pen, just off the drawing's top-left corner.
        gap, length = round(0.02 * page.shape[0]), round(0.06 * page.shape[0])
        start, end = (left - gap, top - gap), (left - gap - length, top - gap)
        cv2.line(stubbed, start, end, (35, 35, 40), 9)

        assert np.abs(np.subtract(ink_box(seen(page)), ink_box(seen(stubbed)))).max() <= 3, seed


def test_a_bar_drawn_half_the_brands_side_away_stays_in_the_frame_beside_its_core() -> None:
    for seed in (0, 1, 3, 4):  # brands of one part: with the bar, the brand is the core
        strokes = make_brand(seed)
        points = np.concatenate(strokes)
        low, high = points.min(axis=0), points.max(axis=0)
        side = (high - low).max()
        x = high[0] + 0.5 * side
        bar = np.array([(x, low[1] + 0.1 * side), (x, high[1] - 0.1 * side)])
        alone = draw_scan(strokes, Redraw(seed=seed, paper="none"))
        page = draw_scan([*strokes, bar], Redraw(seed=seed, paper="none"))

        whole, core = prepare_with_core(Image.fromarray(page))
        _, _, width, height = ink_box(np.asarray(whole.convert("L"), np.float32))
        _, _, alone_width, alone_height = ink_box(seen(alone))
        assert width / height > alone_width / alone_height + 0.3, seed  # the bar is kept
        assert core is not None, seed
        _, _, core_width, core_height = ink_box(np.asarray(core.convert("L"), np.float32))
        assert abs(core_width / core_height - alone_width / alone_height) < 0.1, seed


def test_a_stub_or_a_broken_page_border_half_the_drawings_side_away_stays_out_of_it() -> None:
    ink = np.zeros((400, 400), np.uint8)
    # A drawing of four separate strokes (its largest mark holds a quarter of its ink) ...
    for row in range(2):
        for column in range(2):
            x, y = 100 + 50 * column, 120 + 90 * row
            cv2.line(ink, (x, y), (x + 15, y + 70), 1, 7)
    # ... a grid stub half the drawing's side below it ...
    cv2.line(ink, (120, 364), (135, 364), 1, 3)
    # ... and a page border broken into dashes, holding a fifth of the drawing's ink.
    for y in range(40, 360, 14):
        cv2.line(ink, (6, y), (6, y + 6), 1, 2)

    drawing, _ = drawing_and_core(ink.astype(bool))

    assert drawing[100:300, 90:180].sum() == ink[100:300, 90:180].sum()
    assert not drawing[350:].any() and not drawing[:, :20].any()


def test_a_brand_broken_in_two_beside_an_addition_has_both_pieces_for_core() -> None:
    ink = np.zeros((448, 448), np.uint8)
    # A "P" on a stem, its stroke broken below the bowl (where grid removal took a
    # crossing line) a little more than a pen lift: two marks, close enough to be one part
    # only beside the wider gap ...
    cv2.ellipse(ink, (200, 130), (40, 35), 0, -90, 90, 1, 4)
    cv2.line(ink, (200, 95), (200, 180), 1, 4)
    cv2.line(ink, (200, 196), (200, 290), 1, 4)
    cv2.line(ink, (200, 290), (160, 290), 1, 4)
    # ... and a circle as large as either piece beside it, as an addition.
    cv2.circle(ink, (340, 250), 38, 1, 4)

    drawing, core = drawing_and_core(ink.astype(bool))

    assert drawing.sum() == ink.sum()
    assert core[:, :250].sum() == ink[:, :250].sum()  # both pieces of the brand
    assert not core[:, 290:].any()  # and not the addition
