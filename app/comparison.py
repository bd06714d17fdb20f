"""Comparing two drawings laid over each other: an upload against one registered brand,
or two registered brands (a registry's audit of its own conflicts).

Pipeline: the registered brand's stored stroke masks; the other drawing's (an upload is
decoded, cleaned and framed as a search's query is, without the model; a registered one
is stored) -> ``app.imaging.verification.verify_drawings`` (in every turn when asked,
their cores too, as a search's verification scores them) -> the
scores, and on request a PNG overlay: the registered brand's strokes in blue, the other
drawing's aligned strokes in orange, black where they coincide.

Blocking (decoding, OpenCV, the store): the HTTP layer calls it from worker threads.
"""

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from app.encoder import Encoder
from app.errors import ImageNotFoundError
from app.imaging.grid_removal import Mask
from app.imaging.shape import TURNS
from app.imaging.verification import Alignment, Strokes, overlay, unpack, verify_drawings
from app.messages.catalogue import message
from app.ranking import UPRIGHT
from app.storage.store import Store
from app.verifier import Verifier

# Overlay colours (RGB) by ``overlay``'s codes: paper, registered only, other only, both.
OVERLAY_COLOURS = np.array(
    [(255, 255, 255), (30, 100, 220), (240, 130, 20), (20, 20, 20)], np.uint8
)
# The overlay's side in pixels: the 64-pixel masks, each pixel a 4 x 4 block.
OVERLAY_SIDE = 256


@dataclass(frozen=True)
class Compared:
    """Two drawings aligned: ``registered`` (a collection image) and the other one."""

    registered_id: str
    other_id: str | None  # None: an upload
    alignment: Alignment
    registered: Mask
    other: Mask

    def png(self) -> bytes:
        """The overlay as a PNG."""
        codes = overlay(self.other, self.registered, self.alignment)
        pixels = OVERLAY_COLOURS[codes]
        large = cv2.resize(pixels, (OVERLAY_SIDE, OVERLAY_SIDE), interpolation=cv2.INTER_NEAREST)
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(large, np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()


class Comparison:
    """Aligns an upload or a registered brand on a registered brand."""

    def __init__(self, encoder: Encoder, store: Store, verifier: Verifier) -> None:
        self.encoder = encoder
        self.store = store
        self.verifier = verifier

    def upload(self, image_id: str, data: bytes, turns: bool) -> Compared:
        registered = self._strokes(image_id)
        other = unpack(self.encoder.prepare_drawing(data)[1][self.encoder.strokes])
        alignment = verify_drawings(other, registered, _turns(turns))
        return Compared(image_id, None, alignment, registered.whole, other.whole)

    def between(self, image_id: str, other_id: str, turns: bool) -> Compared:
        registered, other = self._strokes(image_id), self._strokes(other_id)
        alignment = verify_drawings(other, registered, _turns(turns))
        return Compared(image_id, other_id, alignment, registered.whole, other.whole)

    def _strokes(self, image_id: str) -> Strokes:
        found = self.store.image(image_id, (self.verifier.key,))
        if found is None:
            raise ImageNotFoundError(message("image_not_found", id=image_id))
        strokes = self.verifier.strokes(found[1])
        if strokes is None:
            raise ImageNotFoundError(message("image_not_indexed", id=image_id))
        return strokes


def _turns(turns: bool) -> tuple[str, ...]:
    return TURNS if turns else (UPRIGHT,)
