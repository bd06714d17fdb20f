"""The search service: indexes the collection and answers similarity queries.

Every method here blocks (decoding, OpenCV, the model, FAISS); the HTTP layer calls them
from a worker thread, never on the event loop.
"""

import io
import logging
from dataclasses import dataclass

from PIL import Image

from app.errors import ServiceError
from app.image_decoding import decode_image
from app.image_store import ImageStore
from app.model import ImageEmbedder
from app.preprocessing import PreprocessingOptions, prepare_for_embedding
from app.vector_index import VectorIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Match:
    id: str
    similarity: float
    path: str


class SimilaritySearch:
    """Embeds images the same way for indexing and for queries, and searches the index."""

    def __init__(
        self,
        embedder: ImageEmbedder,
        store: ImageStore,
        *,
        preprocessing: PreprocessingOptions | None = None,
        max_image_pixels: int = 64_000_000,
        batch_size: int = 16,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.preprocessing = preprocessing or PreprocessingOptions()
        self.max_image_pixels = max_image_pixels
        self.batch_size = batch_size
        self.index = VectorIndex(embedder.dimension)

    def prepare(self, data: bytes) -> Image.Image:
        """Decode untrusted bytes and preprocess them into what the embedder sees."""
        image = decode_image(data, self.max_image_pixels)
        return prepare_for_embedding(image, self.preprocessing)

    def index_collection(self) -> int:
        """Embed every readable image of the store into a fresh index; return its size.

        Unreadable files are skipped with a warning so one bad file cannot stop start-up.
        """
        index = VectorIndex(self.embedder.dimension)
        ids: list[str] = []
        images: list[Image.Image] = []
        for image_id in self.store.image_ids():
            try:
                images.append(self.prepare(self.store.read_bytes(image_id)))
                ids.append(image_id)
            except (ServiceError, OSError) as exc:
                message = exc.message if isinstance(exc, ServiceError) else str(exc)
                logger.warning("Skipping %s: %s", image_id, message)
                continue
            if len(images) == self.batch_size:
                index.add(ids, self.embedder.embed(images))
                ids, images = [], []
        index.add(ids, self.embedder.embed(images))
        self.index = index
        logger.info("Indexed %d images from %s", len(index), self.store.root)
        return len(index)

    def search(self, data: bytes, top_k: int, min_similarity: float) -> list[Match]:
        """Return up to ``top_k`` collection images at least ``min_similarity`` similar to
        the uploaded image, best first."""
        vector = self.embedder.embed([self.prepare(data)])[0]
        return [
            Match(id=image_id, similarity=score, path=self.store.display_path(image_id))
            for image_id, score in self.index.search(vector, top_k, min_similarity)
        ]

    def preview_png(self, data: bytes) -> bytes:
        """The PNG of what the embedder sees for an uploaded image."""
        buffer = io.BytesIO()
        self.prepare(data).save(buffer, format="PNG")
        return buffer.getvalue()

    @property
    def image_count(self) -> int:
        return len(self.index)
