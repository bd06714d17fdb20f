"""Decoding turns every accepted kind of image into the RGB picture a person would see."""

import numpy as np
import pytest
from PIL import Image

from app.errors import (
    ImageTooLargeError,
    InvalidImageError,
    ServiceBusyError,
    UnsupportedImageFormatError,
)
from app.imaging.decoding import _webp_canvas_size, decode_image
from app.memory import MB, MemoryBudget
from tests.conftest import encode

LIMIT = 50_000_000


def test_transparent_areas_become_white_paper_not_black() -> None:
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    rgba.putpixel((5, 5), (10, 20, 30, 255))

    decoded = np.asarray(decode_image(encode(rgba, "PNG"), LIMIT))

    assert decoded[0, 0].tolist() == [255, 255, 255]
    assert decoded[5, 5].tolist() == [10, 20, 30]


def test_palette_transparency_becomes_white() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    image.putpixel((3, 3), 1)

    decoded = np.asarray(decode_image(encode(image, "PNG", transparency=0), LIMIT))

    assert decoded[0, 0].tolist() == [255, 255, 255]
    assert decoded[3, 3].tolist() == [200, 0, 0]


def test_sixteen_bit_greyscale_is_rescaled_not_clipped() -> None:
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)

    decoded = np.asarray(decode_image(encode(image, "PNG"), LIMIT))

    assert decoded[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_is_converted_to_rgb() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 255))  # full black ink

    decoded = decode_image(encode(cmyk, "TIFF"), LIMIT)

    assert decoded.mode == "RGB"
    assert np.asarray(decoded).max() < 10


def test_exif_orientation_is_honoured() -> None:
    wide = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display

    decoded = decode_image(encode(wide, "JPEG", exif=exif.tobytes()), LIMIT)

    assert decoded.size == (20, 40)


def test_every_error_names_the_problem() -> None:
    with pytest.raises(InvalidImageError, match="empty"):
        decode_image(b"", LIMIT)
    with pytest.raises(UnsupportedImageFormatError, match="not an image"):
        decode_image(b"%PDF-1.7 not an image", LIMIT)
    with pytest.raises(ImageTooLargeError, match="100x100"):
        decode_image(encode(Image.new("L", (100, 100)), "PNG"), 9_999)


def test_an_absurdly_thin_image_is_refused_before_its_pixels_are_decoded() -> None:
    thin = encode(Image.new("L", (1, 4000), 255), "PNG")

    with pytest.raises(InvalidImageError, match="4000 times"):
        decode_image(thin, LIMIT)


@pytest.mark.parametrize(
    ("mode", "image_format"),
    [(mode, "PNG") for mode in ("RGB", "L", "P", "1", "I;16", "RGBA", "LA")]
    + [("RGB", "JPEG"), ("L", "JPEG"), ("RGB", "WEBP"), ("RGBA", "WEBP"), ("F", "TIFF")]
    + [("I", "TIFF")],
)
def test_a_large_image_is_decoded_reduced_to_what_preprocessing_needs(
    mode: str, image_format: str
) -> None:
    large = Image.new("RGB", (4000, 3000), (255, 255, 255))
    large.paste((0, 0, 0), (1000, 1000, 3000, 1100))  # a thick stroke
    converted = large.convert(mode) if mode in ("RGB", "P", "1", "RGBA") else large.convert("L")
    converted = converted.convert(mode)
    data = encode(converted, image_format)

    decoded = decode_image(data, LIMIT, longest_side=896)

    assert decoded.mode == "RGB"
    assert 896 <= max(decoded.size) < 2 * 896
    assert abs(decoded.size[0] / decoded.size[1] - 4 / 3) < 0.01
    stroke = np.asarray(decoded.convert("L"))[decoded.size[1] * 21 // 60, decoded.size[0] // 2]
    assert stroke < 64


def test_a_small_image_is_decoded_at_full_size() -> None:
    decoded = decode_image(
        encode(Image.new("RGB", (1500, 900), "white"), "PNG"), LIMIT, longest_side=896
    )

    assert decoded.size == (1500, 900)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_a_large_phone_photo_is_reduced_and_still_turned_upright(image_format: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    data = encode(Image.new("RGB", (4000, 2000), "white"), image_format, exif=exif.tobytes())

    decoded = decode_image(data, LIMIT, longest_side=896)

    assert decoded.size == (500, 1000)


def test_partly_transparent_palette_entries_are_blended_with_white_paper() -> None:
    image = Image.new("P", (4, 1))
    image.putpalette([200, 0, 0, 0, 0, 255, 0, 0, 0] + [0] * 759)
    image.putdata([0, 1, 2, 2])
    data = encode(image, "PNG", transparency=bytes([255, 128, 0]))

    decoded = np.asarray(decode_image(data, LIMIT)).astype(int)

    assert decoded[0, 0].tolist() == [200, 0, 0]
    assert np.abs(decoded[0, 1] - [127, 127, 255]).max() <= 1  # half blue on white
    assert decoded[0, 2].tolist() == decoded[0, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    "options",
    [{"lossless": True}, {"quality": 50}, {"lossless": True, "exif": b"Exif\x00\x00"}],
    ids=["lossless", "lossy", "extended"],
)
def test_a_webp_size_is_read_from_its_header_before_pillow_opens_it(
    options: dict[str, object],
) -> None:
    data = encode(Image.new("RGB", (1234, 567), "white"), "WEBP", **options)

    assert _webp_canvas_size(data) == (1234, 567)
    assert _webp_canvas_size(encode(Image.new("RGB", (9, 9)), "PNG")) is None


def test_an_animated_webp_size_is_read_from_its_canvas() -> None:
    frames = [Image.new("RGB", (300, 200), colour) for colour in ("white", "black")]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)

    assert _webp_canvas_size(data) == (300, 200)
    assert np.asarray(decode_image(data, LIMIT)).min() == 255  # its first frame


def test_an_image_that_would_take_more_than_the_decoding_budget_is_refused_unread() -> None:
    budget = MemoryBudget(16 * MB)
    webp = encode(Image.new("RGB", (1200, 1200), "white"), "WEBP", lossless=True)  # 22 MB

    with pytest.raises(ImageTooLargeError, match="DECODE_MEMORY_MB"):
        decode_image(webp, LIMIT, 896, budget)
    small = decode_image(encode(Image.new("RGB", (900, 900), "white"), "WEBP"), LIMIT, 896, budget)
    assert small.size == (900, 900)


def test_a_decode_waits_for_memory_others_hold_and_answers_busy_past_the_wait() -> None:
    budget = MemoryBudget(16 * MB, wait_s=0.2)
    png = encode(Image.new("RGB", (1500, 1500), "white"), "PNG")  # 9 MB to decode

    with budget.reserve(10 * MB), pytest.raises(ServiceBusyError):
        decode_image(png, LIMIT, 896, budget)
    assert decode_image(png, LIMIT, 896, budget).size == (1500, 1500)
