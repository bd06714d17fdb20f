"""The encoder: untrusted bytes (an image, a text) into what the store holds and
searches with.

Pipeline of an image: bytes -> decoded, reduced (``app.imaging.decoding``) -> grid
removed, framed, square (``app.imaging.preprocessing``) -> its concept vector (the image
tower, on the model's worker), its shape descriptor (``app.imaging.shape``), its core's
(``app.imaging.framing``: the brand beside an addition; zeros without one) and its
stroke mask (``app.imaging.verification``), keyed by the vector space. A text:
characters -> the text tower's tokens -> its concept vector, on the same worker.

Every method blocks (decoding, OpenCV, the model); the HTTP layer calls them from
worker threads, never on the event loop.
"""

import io
import threading

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.embedding.batching import EmbeddingBatcher
from app.embedding.image import ImageTower
from app.embedding.text import TextTower, Tokens
from app.errors import InvalidTextError, TextSearchDisabledError
from app.imaging.decoding import decode_image
from app.imaging.framing import CORE_VERSION
from app.imaging.preprocessing import PreprocessingOptions, prepare_with_core
from app.imaging.shape import SHAPE_DIMENSION, SHAPE_VERSION, shape_descriptor
from app.imaging.verification import (
    STROKES_DIMENSION,
    STROKES_VERSION,
    Strokes,
    pack,
    stroke_mask,
)
from app.memory import MemoryBudget
from app.messages.catalogue import Message, message
from app.storage.types import EmbeddingKey, Vectors, VectorSpace

# Images are decoded reduced to at least this many times the working side (to_working_size
# then averages the rest): the reduction bounds memory, the margin keeps thin strokes.
DECODE_SIDE_FACTOR = 2
# Longest text a text search reads, in characters: far more than the tower's 77 tokens,
# so a long description is cut (and said so) rather than refused, while the tokenizer's
# work stays bounded.
MAX_TEXT_CHARS = 1000


def vector_space(tower: ImageTower, preprocessing: PreprocessingOptions) -> VectorSpace:
    """The vectors this tower and this preprocessing make, as the store keys them."""
    fingerprint = preprocessing.fingerprint
    return VectorSpace(
        EmbeddingKey(tower.fingerprint, fingerprint, tower.dimension),
        EmbeddingKey(f"shape-v{SHAPE_VERSION}", fingerprint, SHAPE_DIMENSION),
        EmbeddingKey(f"core-v{CORE_VERSION}-shape-v{SHAPE_VERSION}", fingerprint, SHAPE_DIMENSION),
    )


def strokes_key(preprocessing: PreprocessingOptions) -> EmbeddingKey:
    """What an image's stroke mask (for the verification stage) is stored under, beside
    its vectors: recomputed without the model when ``STROKES_VERSION`` or what a core is
    (``CORE_VERSION``: the masks hold the core's) changes."""
    return EmbeddingKey(
        f"strokes-v{STROKES_VERSION}-core-v{CORE_VERSION}",
        preprocessing.fingerprint,
        STROKES_DIMENSION,
    )


def drawing_vectors(
    framed: Image.Image, core: Image.Image | None, space: VectorSpace, strokes: EmbeddingKey
) -> Vectors:
    """What the store keeps of a framed drawing besides its concept vector, computed
    without the model: the shape descriptor, the stroke masks and its core's shape
    (zeros without a core)."""
    pixels = np.asarray(framed, np.uint8)
    core_pixels = None if core is None else np.asarray(core, np.uint8)
    core_shape = (
        np.zeros(SHAPE_DIMENSION, np.float32)
        if core_pixels is None
        else shape_descriptor(core_pixels)
    )
    masks = Strokes(stroke_mask(pixels), None if core_pixels is None else stroke_mask(core_pixels))
    assert space.core is not None  # the encoder's space has one
    return {space.shape: shape_descriptor(pixels), strokes: pack(masks), space.core: core_shape}


class Encoder:
    """Embeds images the same way for indexing and for queries, and texts for search."""

    def __init__(
        self,
        image_tower: ImageTower,
        text_tower: TextTower | None,
        text_off_reason: Message | None,
        batcher: EmbeddingBatcher,
        preprocessing: PreprocessingOptions,
        max_image_pixels: int,
        decode_concurrency: int,
        decode_budget: MemoryBudget,
    ) -> None:
        self.image_tower = image_tower
        self.text_tower = text_tower
        # Why text search answers 404 when there is no text tower.
        self.text_off_reason = text_off_reason
        self.batcher = batcher
        self.preprocessing = preprocessing
        self.space = vector_space(image_tower, preprocessing)
        self.strokes = strokes_key(preprocessing)
        self.max_image_pixels = max_image_pixels
        self._decode_slots = threading.BoundedSemaphore(decode_concurrency)
        self._decode_budget = decode_budget

    def close(self) -> None:
        self.batcher.close()

    # Images

    def prepare(self, data: bytes) -> Image.Image:
        """Decode untrusted bytes and preprocess them into what the image tower sees."""
        return self._prepared(data)[0]

    def _prepared(self, data: bytes) -> tuple[Image.Image, Image.Image | None]:
        """What the image tower sees, and the drawing's core framed alike when it has one;
        decoding at most DECODE_CONCURRENCY at once across every endpoint and the
        indexing, holding at most DECODE_MEMORY_MB together, since a large image's
        decoding holds hundreds of megabytes until it is reduced."""
        with self._decode_slots:
            image = decode_image(
                data,
                self.max_image_pixels,
                DECODE_SIDE_FACTOR * self.preprocessing.working_side,
                self._decode_budget,
            )
            return prepare_with_core(image, self.preprocessing)

    def prepare_drawing(self, data: bytes) -> tuple[Image.Image, Vectors]:
        """What the image tower sees, and what the store keeps of it besides its concept
        vector, all computed without the model (``drawing_vectors``)."""
        framed, core = self._prepared(data)
        return framed, drawing_vectors(framed, core, self.space, self.strokes)

    def model_input(self, framed: Image.Image) -> NDArray[np.float32]:
        """The image tower's input for one prepared image."""
        return self.image_tower.pixels([framed])

    def concepts(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        """The concept vectors of model inputs, on the model's worker."""
        return self.batcher.embed(self.image_tower, pixels)

    def encode(self, data: bytes) -> Vectors:
        """The concept and shape vectors, the stroke mask and the core's shape of
        untrusted image bytes: decoding, framing, the shapes and the strokes in the
        caller's thread, only the model on its worker."""
        framed, drawing = self.prepare_drawing(data)
        return {self.space.concept: self.concepts(self.model_input(framed))[0], **drawing}

    def preview_png(self, data: bytes) -> bytes:
        """The PNG of what the image tower sees for an uploaded image."""
        buffer = io.BytesIO()
        self.prepare(data).save(buffer, format="PNG")
        return buffer.getvalue()

    # Texts

    def tokens(self, text: str) -> Tokens:
        """The text tower's input for a text search's text; refuses what it cannot read."""
        if self.text_tower is None:
            assert self.text_off_reason is not None  # the composition says why
            raise TextSearchDisabledError(self.text_off_reason)
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidTextError(message("text_too_long", length=len(text), max=MAX_TEXT_CHARS))
        tokens = self.text_tower.tokens(text)
        if not tokens.words:
            raise InvalidTextError(message("text_empty"))
        return tokens

    def text_concept(self, tokens: Tokens) -> NDArray[np.float32]:
        """A text's concept vector, on the model's worker."""
        assert self.text_tower is not None  # tokens() refused the text otherwise
        vector: NDArray[np.float32] = self.batcher.embed(self.text_tower, tokens.ids)[0]
        return vector
