"""Turn untrusted bytes into a plain 8-bit RGB image, or a domain error saying why not.

The format is decided by decoding the bytes, never by the declared content type or name.
"""

import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import (
    ImageTooLargeError,
    InvalidImageError,
    ServiceError,
    UnsupportedImageFormatError,
)
from app.memory import MB, MemoryBudget, give_back_freed
from app.messages.catalogue import message
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
# Bytes per pixel that decoding an image of each Pillow mode holds at its peak: the
# decoded pixels (Pillow keeps 1, L and P in one byte, 16-bit greyscale in two, every
# other mode in four) and the full-size copy reducing makes (alpha premultiplied, a
# palette widened to RGB, 1-bit or 16-bit greyscale widened); checked against what
# bench/memory_bench.py's uploads take.
PEAK_BYTES_PER_PIXEL = {
    "1": 2,
    "L": 1,
    "P": 6,
    "I;16": 6,
    "I;16B": 6,
    "I;16L": 6,
    "I;16N": 6,
    "RGB": 4,
    "RGBX": 4,
    "CMYK": 4,
    "YCbCr": 4,
    "I": 4,
    "F": 4,
}
DEFAULT_PEAK_BYTES_PER_PIXEL = 8  # LA, RGBA, PA and the rarer modes
STORED_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
# libwebp's canvas, the frame it hands over as bytes and the decoded image, at four
# bytes a pixel each, and the RGBA frame's premultiplied copy.
WEBP_PEAK_BYTES_PER_PIXEL = 16
# libjpeg's coefficient buffer of a progressive JPEG: 2 bytes per coefficient, up to
# 3 components at full resolution.
PROGRESSIVE_JPEG_BYTES_PER_PIXEL = 6
# A decode this large leaves the arenas holding what it freed; glibc is asked to give it
# back (app.memory). Scans of a few megapixels, the common case, are left alone.
GIVE_BACK_AFTER_BYTES = 64 * MB
# The label of each refusal in the decode-refusals metric.
REFUSAL_REASONS: dict[type[ServiceError], str] = {
    InvalidImageError: "invalid",
    UnsupportedImageFormatError: "unsupported_format",
    ImageTooLargeError: "too_large",
}
# Transparent areas become paper, and paper is white.
PAPER_WHITE = (255, 255, 255)


def decode_image(
    data: bytes,
    max_pixels: int,
    longest_side: int | None = None,
    budget: MemoryBudget | None = None,
) -> Image.Image:
    """Decode ``data`` into an RGB image (``_decode``), counting refusals by reason."""
    try:
        return _decode(data, max_pixels, longest_side, budget)
    except ServiceError as exc:
        DECODE_REFUSALS.labels(reason=REFUSAL_REASONS.get(type(exc), "other")).inc()
        raise


def _decode(
    data: bytes, max_pixels: int, longest_side: int | None, budget: MemoryBudget | None
) -> Image.Image:
    """Decode ``data`` into an RGB image.

    Pipeline: refuse empty bytes -> read the size from the header (a WEBP's from its
    RIFF chunks, since Pillow's decoder allocates the whole canvas on opening) -> refuse
    formats outside ``ACCEPTED_FORMATS``, images over ``max_pixels`` (decompression
    bombs) and sides more than ``MAX_ASPECT_RATIO`` apart -> estimate the memory decoding
    holds at its peak (``peak_bytes``), refuse an image needing more than the whole
    ``budget`` and wait for the rest to be free -> decode the first frame, a JPEG at a
    reduced scale when ``longest_side`` allows -> reduce it by an integer factor while
    its longer side stays at least ``longest_side`` -> apply the EXIF orientation ->
    convert to 8-bit RGB, compositing transparency on white -> give the memory back.

    The reductions bound the memory and time of everything after decoding: a 64-megapixel
    upload leaves this function at about ``longest_side`` pixels a side; the budget bounds
    what concurrent decodes hold together.
    """
    if not data:
        raise InvalidImageError(message("upload_empty"))
    webp_size = _webp_canvas_size(data)
    if webp_size is not None:
        _check_size(webp_size, max_pixels)
        peak = webp_size[0] * webp_size[1] * WEBP_PEAK_BYTES_PER_PIXEL
        with _reserved(budget, peak, webp_size, "WEBP"):
            image = _opened(data, max_pixels)
            return _loaded(image, longest_side)
    image = _opened(data, max_pixels)
    source_size = image.size
    if longest_side is not None and image.format in ("JPEG", "MPO"):
        width, height = image.size
        scale = longest_side / max(width, height)
        image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    with _reserved(budget, peak_bytes(image, source_size), source_size, str(image.format)):
        return _loaded(image, longest_side)


def _opened(data: bytes, max_pixels: int) -> Image.Image:
    """``data`` opened lazily (its header read, no pixels decoded) and checked."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedImageFormatError(
            message("not_an_image", accepted=ACCEPTED_FORMATS_TEXT)
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(message("image_pixels", max_pixels=max_pixels)) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on malformed headers
        raise InvalidImageError(message("image_header_corrupt", reason=exc)) from None
    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedImageFormatError(
            message("image_format", format=image.format, accepted=ACCEPTED_FORMATS_TEXT)
        )
    _check_size(image.size, max_pixels)
    return image


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            message("image_size", width=width, height=height, max_pixels=max_pixels)
        )
    if width == 0 or height == 0:
        raise InvalidImageError(message("image_no_pixels"))
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise InvalidImageError(
            message(
                "image_elongated",
                width=width,
                height=height,
                ratio=max(width, height) // min(width, height),
                max_ratio=MAX_ASPECT_RATIO,
            )
        )


def peak_bytes(image: Image.Image, source_size: tuple[int, int]) -> int:
    """The memory decoding and reducing an opened image holds at its peak, from its
    header: its pixels in the mode Pillow decodes into (a JPEG's at its draft scale), the
    full-size copy reducing makes, a TIFF strip's buffer, and a progressive JPEG's
    coefficients (``source_size``: its size before the draft)."""
    width, height = image.size
    per_pixel = PEAK_BYTES_PER_PIXEL.get(image.mode, DEFAULT_PEAK_BYTES_PER_PIXEL)
    if image.format == "TIFF":
        per_pixel += STORED_BYTES_PER_PIXEL.get(image.mode, 4)
    extra = 0
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        # Kept for the whole image at full size, whatever the draft scale.
        extra = source_size[0] * source_size[1] * PROGRESSIVE_JPEG_BYTES_PER_PIXEL
    return width * height * per_pixel + extra


@contextmanager
def _reserved(
    budget: MemoryBudget | None, peak: int, size: tuple[int, int], image_format: str
) -> Iterator[None]:
    """Hold ``peak`` bytes of ``budget`` while decoding; refuse an image needing more
    than the whole budget."""
    if budget is None:
        yield
        return
    if peak > budget.total_bytes:
        width, height = size
        raise ImageTooLargeError(
            message(
                "decode_memory",
                width=width,
                height=height,
                format=image_format,
                peak_mb=f"{peak / MB:,.0f}",
                budget_mb=f"{budget.total_bytes / MB:,.0f}",
            )
        )
    with budget.reserve(peak):
        yield
    if peak >= GIVE_BACK_AFTER_BYTES:
        give_back_freed()


def _loaded(image: Image.Image, longest_side: int | None) -> Image.Image:
    """The first frame of an opened image, reduced toward ``longest_side``, upright, in
    RGB; the full-size pixels are released before returning."""
    try:
        image.seek(0)  # the first frame of an animation
        image.load()
        reduced = _reduced(image, longest_side) if longest_side is not None else image
        upright = to_rgb(ImageOps.exif_transpose(reduced))
    except Exception as exc:  # noqa: BLE001 - and many more on malformed pixel data
        raise InvalidImageError(message("image_corrupt", reason=exc)) from None
    if upright is not image:
        image.close()
    return upright


def _reduced(image: Image.Image, longest_side: int) -> Image.Image:
    """Box-average by the largest integer factor that keeps the longer side at least
    ``longest_side``; modes Pillow cannot reduce are widened first, to the narrowest
    mode it can."""
    factor = max(image.size) // longest_side
    if factor < 2:
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    elif image.mode == "1":
        image = image.convert("L")
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
    if image.mode == "P":
        return _palette_on_paper(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (*PAPER_WHITE, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _palette_on_paper(image: Image.Image) -> Image.Image:
    """A palette image in RGB, its transparent entries composited on white in the palette
    itself: the same pixels as compositing each one, without a full-size RGBA copy."""
    transparency = image.info.get("transparency")
    if transparency is None:
        return image.convert("RGB")
    colours = np.asarray(image.getpalette("RGB") or [], np.float64).reshape(-1, 3)
    alpha = np.ones(len(colours))
    if isinstance(transparency, int) and transparency < len(colours):
        alpha[transparency] = 0.0
    elif isinstance(transparency, bytes):
        given = np.frombuffer(transparency, np.uint8)[: len(colours)] / 255.0
        alpha[: len(given)] = given
    on_paper = colours * alpha[:, None] + np.asarray(PAPER_WHITE) * (1.0 - alpha[:, None])
    flat = image.copy()
    flat.info.pop("transparency", None)
    flat.putpalette(np.round(on_paper).astype(np.uint8).tobytes(), "RGB")
    return flat.convert("RGB")


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """A WEBP's canvas size from its first chunk (RFC 9649: VP8X canvas, VP8L or VP8
    bitstream header); None for any other file or a header too short to say."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        return width, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def file_extension(data: bytes) -> str:
    """The file extension of an image ``decode_image`` accepted, from its bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return FILE_EXTENSIONS[str(image.format)]
