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
