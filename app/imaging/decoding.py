"""Turn untrusted bytes into a plain 8-bit RGB image, or a domain error saying why not.

The format is decided by decoding the bytes, never by the declared content type or name.
"""

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import (
    ImageTooLargeError,
    InvalidImageError,
    ServiceError,
    UnsupportedImageFormatError,
)
from app.metrics import DECODE_REFUSALS

# Pillow format names we accept; MPO is the multi-picture JPEG many phones write.
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "GIF", "WEBP", "BMP", "TIFF"})
ACCEPTED_FORMATS_TEXT = "PNG, JPEG, GIF, WEBP, BMP, TIFF"
# The extension a stored upload gets, from its decoded format (never from its name).
FILE_EXTENSIONS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tiff",
}
# A drawing scanned on a page is never a strip: sides further apart than this are refused
# before decoding (a 1 x 64,000,000 PNG would otherwise take seconds and gigabytes).
MAX_ASPECT_RATIO = 20
# Pillow modes that Image.reduce accepts.
REDUCIBLE_MODES = frozenset(
    {"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "I", "F", "CMYK", "YCbCr"}
)
# The label of each refusal in the decode-refusals metric.
REFUSAL_REASONS: dict[type[ServiceError], str] = {
    InvalidImageError: "invalid",
    UnsupportedImageFormatError: "unsupported_format",
    ImageTooLargeError: "too_large",
}
# Transparent areas become paper, and paper is white.
PAPER_WHITE = (255, 255, 255)


def decode_image(data: bytes, max_pixels: int, longest_side: int | None = None) -> Image.Image:
    """Decode ``data`` into an RGB image (``_decode``), counting refusals by reason."""
    try:
        return _decode(data, max_pixels, longest_side)
    except ServiceError as exc:
        DECODE_REFUSALS.labels(reason=REFUSAL_REASONS.get(type(exc), "other")).inc()
        raise


def _decode(data: bytes, max_pixels: int, longest_side: int | None) -> Image.Image:
    """Decode ``data`` into an RGB image.

    Pipeline: refuse empty bytes -> identify the format from the bytes -> refuse formats
    outside ``ACCEPTED_FORMATS``, images over ``max_pixels`` (decompression bombs) and
    sides more than ``MAX_ASPECT_RATIO`` apart, before decoding pixels -> decode the first
    frame, a JPEG at a reduced scale when ``longest_side`` allows -> reduce it by an
    integer factor while its longer side stays at least ``longest_side`` -> apply the
    EXIF orientation -> convert to 8-bit RGB, compositing transparency on white.

    The reductions bound the memory and time of everything after decoding: a 64-megapixel
    upload leaves this function at about ``longest_side`` pixels a side.
    """
    if not data:
        raise InvalidImageError("The uploaded file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedImageFormatError(
            f"The file is not an image in a supported format ({ACCEPTED_FORMATS_TEXT})."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(
            f"The image has more pixels than the limit of {max_pixels} (MAX_IMAGE_PIXELS)."
        ) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on malformed headers
        raise InvalidImageError(f"The image header is corrupt ({exc}).") from None

    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedImageFormatError(
            f"Image format {image.format} is not supported; send {ACCEPTED_FORMATS_TEXT}."
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} pixels, over the limit of {max_pixels} "
            "pixels (MAX_IMAGE_PIXELS)."
        )
    if width == 0 or height == 0:
        raise InvalidImageError("The image has no pixels.")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise InvalidImageError(
            f"The image is {width}x{height} pixels: one side is "
            f"{max(width, height) // min(width, height)} times the other, more than "
            f"{MAX_ASPECT_RATIO} times; a scanned drawing's sides are not that far apart."
        )
    try:
        image.seek(0)  # the first frame of an animation
        if longest_side is not None and image.format in ("JPEG", "MPO"):
            scale = longest_side / max(width, height)
            image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
        image.load()
        reduced = _reduced(image, longest_side) if longest_side is not None else image
        upright = ImageOps.exif_transpose(reduced)
    except Exception as exc:  # noqa: BLE001 - and many more on malformed pixel data
        raise InvalidImageError(f"The image is corrupt or truncated ({exc}).") from None
    return to_rgb(upright)


def _reduced(image: Image.Image, longest_side: int) -> Image.Image:
    """Box-average by the largest integer factor that keeps the longer side at least
    ``longest_side``; modes Pillow cannot reduce are widened first."""
    factor = max(image.size) // longest_side
    if factor < 2:
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    elif image.mode not in REDUCIBLE_MODES:
        image = to_rgb(image)
    return image.reduce(factor)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: transparency on white, 16-bit and float
    greyscale rescaled (Pillow's own conversion would clip them), CMYK and palettes mapped."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if values.max(initial=0) > 255 else 255.0
        grey = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (*PAPER_WHITE, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def file_extension(data: bytes) -> str:
    """The file extension of an image ``decode_image`` accepted, from its bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return FILE_EXTENSIONS[str(image.format)]
