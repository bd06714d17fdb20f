"""What every image, indexed or queried, goes through before the embedder.

Pipeline (``prepare_for_embedding``), on a decoded RGB image:

1. working size: resized so the longer side is ``working_side`` pixels (448 by default;
   ``to_working_size``):
   enough for the embedder's 224-pixel view of a drawing that fills half the page, and
   enough pixels across a small scan's strokes to tell them from grid lines (the
   grid-removal benchmark scores 448 within 0.005 of 640, in 60% of the time); first,
   so that nothing after it works on a large image (step 3's second cleaning, on few
   pages, on twice that at most);
2. polarity: a light drawing on dark paper is inverted to dark on light;
3. grid removal (``app.imaging.grid_removal``), when enabled: ink on white paper; done
   again at ``FINE_SCALE`` times the working size (from the decoded image, up to twice
   the working size; cubic above it) when the strokes kept are barely wider than the
   grid's lines, since thinner ones may have gone with them, then reduced;
4. framing (``app.imaging.framing``): page borders and stray marks far from the strokes
   are dropped, then the drawing is cropped with a margin and padded to a square on the
   paper colour, so the model's centre crop never cuts the drawing and a symbol drawn in
   a corner matches the same symbol drawn in the middle; the square is
   ``EMBEDDER_SIDE`` pixels, what CLIP looks at.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from app.imaging import grid_removal
from app.imaging.framing import frame_parts
from app.imaging.grid_removal import RGBImage
from app.imaging.levels import median_level

WORKING_SIDE = 448
# Downscaling to this fraction or less averages areas, so one-pixel grid lines keep their
# weight; above it bilinear sampling loses none of them and costs a fifth as much (the
# grid-removal benchmark scores it equal or better: grid 0.002, keep 0.998, IoU 0.953).
AREA_AVERAGING_SCALE = 0.5
# Paper darker than this (0-255 median) means a light drawing on dark paper: the page's
# median and the median of its margin, the band within PAPER_BAND_FRACTION of its side
# from an edge, must both be that dark, since a bold brand may cover most of its page but
# seldom its margin, and a scanner's dark edges seldom most of the page.
DARK_PAPER_LEVEL = 110
PAPER_BAND_FRACTION = 0.05
# Bump whenever this pipeline or grid removal changes what the embedder sees: stored
# vectors carry it (with the options) and are recomputed when it differs.
PREPROCESSING_VERSION = 8
# Grid removal again at this many times the working size when the strokes are barely
# wider than the grid's lines at it (step 3).
FINE_SCALE = 2


@dataclass(frozen=True)
class PreprocessingOptions:
    remove_grid: bool = True
    working_side: int = WORKING_SIDE
    grid: grid_removal.GridRemovalParams = field(default_factory=grid_removal.GridRemovalParams)

    @property
    def fingerprint(self) -> str:
        """Names this pipeline version and these options, for the stored vectors' key."""
        return f"v{PREPROCESSING_VERSION} {self!r}"


def dark_on_light(image: RGBImage) -> RGBImage:
    """Invert a light-on-dark drawing; leave a dark-on-light one as it is."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    band = max(1, round(PAPER_BAND_FRACTION * max(grey.shape)))
    margin = np.ones_like(grey)
    margin[band:-band, band:-band] = 0
    dark = max(median_level(grey), median_level(grey, margin)) < DARK_PAPER_LEVEL
    return 255 - image if dark else image


def to_working_size(image: RGBImage, working_side: int = WORKING_SIDE) -> RGBImage:
    """Resize so the longer side is ``working_side``: area averaging to half size or less,
    bilinear above that, cubic up."""
    height, width = image.shape[:2]
    scale = working_side / max(height, width)
    if scale == 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale <= AREA_AVERAGING_SCALE:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_LINEAR if scale < 1 else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)


def without_grid(decoded: RGBImage, working: RGBImage, options: PreprocessingOptions) -> RGBImage:
    """``working`` (``decoded`` at working size, dark on light) without its grid; cleaned
    again from ``decoded`` at ``FINE_SCALE`` times the working size, then reduced, when
    its strokes are at risk there (``grid_removal.Ink.strokes_at_risk``)."""
    pixels, ink = grid_removal.cleaned(working, options.grid)
    if not ink.strokes_at_risk:
        return pixels
    fine = dark_on_light(to_working_size(decoded, FINE_SCALE * options.working_side))
    return to_working_size(grid_removal.remove_grid(fine, options.grid), options.working_side)


def prepare_for_embedding(
    image: Image.Image, options: PreprocessingOptions = PreprocessingOptions()
) -> Image.Image:
    """Return the RGB image the embedder sees for the decoded RGB ``image``."""
    return prepare_with_core(image, options, core=False)[0]


def prepare_with_core(
    image: Image.Image, options: PreprocessingOptions = PreprocessingOptions(), core: bool = True
) -> tuple[Image.Image, Image.Image | None]:
    """What the embedder sees, and, with ``core``, the drawing's core framed alike when
    it has one (``app.imaging.framing.frame_parts``)."""
    decoded = np.asarray(image, np.uint8)
    pixels = dark_on_light(to_working_size(decoded, options.working_side))
    if options.remove_grid:
        pixels = without_grid(decoded, pixels, options)
    whole, largest = frame_parts(pixels, core)
    return Image.fromarray(whole), None if largest is None else Image.fromarray(largest)
