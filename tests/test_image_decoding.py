"""Decoding turns every accepted kind of image into the RGB picture a person would see."""

import numpy as np
import pytest
from PIL import Image

from app.errors import ImageTooLargeError, InvalidImageError, UnsupportedImageFormatError
from app.imaging.decoding import decode_image
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
    [(mode, "PNG") for mode in ("RGB", "L", "P", "1", "I;16", "RGBA")]
    + [("RGB", "JPEG"), ("L", "JPEG")],
)
def test_a_large_image_is_decoded_reduced_to_what_preprocessing_needs(
    mode: str, image_format: str
) -> None:
    large = Image.new("RGB", (4000, 3000), (255, 255, 255))
    large.paste((0, 0, 0), (1000, 1000, 3000, 1100))  # a thick stroke
    converted = large.convert("L").convert(mode) if mode == "I;16" else large.convert(mode)
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
