"""The live collection: the image folder and the store (``app.storage.store``: records,
vectors and search) kept in step, and similarity search over them.

Every image is represented by two unit vectors of what the embedder sees (the framed,
grid-free drawing): its concept (CLIP) vector and its shape descriptor
(``app.imaging.shape``); the store searches their concatenation (``app.ranking``).

Every method here blocks (file I/O, decoding, OpenCV, the model, the store); the HTTP
layer calls them from worker threads, never on the event loop.

Order of writes, so that a crash at any point leaves a state the next reconciliation
(``app.reconciliation``) repairs without losing an accepted file: an add writes the file
(atomically), then the store; a delete removes the file, then the store's record.
"""

import io
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.config import Settings
from app.embedding.batching import IMAGE_TOWER, TEXT_TOWER, EmbeddingBatcher
from app.embedding.model import ImageEmbedder
from app.embedding.text import TextEmbedder
from app.errors import (
    DuplicateImageError,
    ImageNotFoundError,
    IndexNotReadyError,
    InvalidTextError,
    ModelLoadError,
    TextSearchDisabledError,
)
from app.imaging.decoding import decode_image, file_extension
from app.imaging.grid_removal import GridRemovalParams
from app.imaging.preprocessing import PreprocessingOptions, prepare_for_embedding
from app.imaging.shape import SHAPE_DIMENSION, SHAPE_VERSION, shape_descriptor
from app.metrics import IMAGES_INDEXED
from app.ranking import QueryVectors, SearchMode, SearchQuery, best_turns
from app.reconciliation import IndexingProgress, Reconciler, ReconcileReport
from app.storage.embedded.image_store import ImageStore, sha256_hex
from app.storage.store import EmbeddingKey, ImageRecord, Store, Vectors, VectorSpace, open_store

logger = logging.getLogger(__name__)

# Longest upload file name kept as metadata.
MAX_ORIGINAL_FILENAME = 255
# Images are decoded reduced to at least this many times the working side (to_working_size
# then averages the rest): the reduction bounds memory, the margin keeps thin strokes.
DECODE_SIDE_FACTOR = 2
# Longest text a text search reads, in characters: far more than the tower's 77 tokens,
# so a long description is cut (and said so) rather than refused, while the tokenizer's
# work stays bounded.
MAX_TEXT_CHARS = 1000
TEXT_SEARCH_OFF = (
    "Text search is off in this service (TEXT_SEARCH=false). Set TEXT_SEARCH=true and "
    "restart it to search by words."
)


def _duplicate(holder: ImageRecord) -> DuplicateImageError:
    return DuplicateImageError(
        f"The collection already holds this image as {holder.id}.", holder.id
    )


@dataclass(frozen=True)
class Match:
    id: str
    similarity: float  # the mode's score
    path: str
    original_filename: str | None
    concept_similarity: float
    shape_similarity: float | None  # None for a text search: words have no shape
    turn: str | None  # the query's turn that matched, when turns were searched


class Collection:
    """Embeds images the same way for indexing and for queries; keeps IMAGES_DIR and the
    store in step; searches."""

    def __init__(
        self,
        embedder: ImageEmbedder,
        folder: ImageStore,
        store: Store,
        *,
        preprocessing: PreprocessingOptions,
        max_image_pixels: int = 64_000_000,
        batch_size: int = 16,
        search_batch_size: int = 8,
        search_queue_size: int = 32,
        preprocess_threads: int = 1,
        decode_concurrency: int = 2,
        text_embedder: TextEmbedder | None = None,
        text_off_reason: str = TEXT_SEARCH_OFF,
    ) -> None:
        self.embedder = embedder
        self.text_embedder = text_embedder
        self.text_off_reason = text_off_reason
        self.folder = folder
        self.store = store
        self.space = store.space
        self.preprocessing = preprocessing
        self.max_image_pixels = max_image_pixels
        towers = {IMAGE_TOWER: lambda inputs: self.embedder.embed_pixels(np.concatenate(inputs))}
        if text_embedder is not None:
            towers[TEXT_TOWER] = text_embedder.embed_tokens
        self.batcher = EmbeddingBatcher(towers, search_batch_size, search_queue_size)
        self.reconciler = Reconciler(self, batch_size, preprocess_threads)
        IMAGES_INDEXED.set_function(store.searchable_count)
        # Searchable: the store held vectors at start, or a reconciliation has finished.
        self.ready = store.searchable_count() > 0
        # Serialises this process's changes, so the folder and the store change together.
        self._write_lock = threading.Lock()
        self._decode_slots = threading.BoundedSemaphore(decode_concurrency)

    @staticmethod
    def vector_space(embedder: ImageEmbedder, preprocessing: PreprocessingOptions) -> VectorSpace:
        """The vectors this embedder and this preprocessing make, as the store keys them."""
        fingerprint = preprocessing.fingerprint
        return VectorSpace(
            EmbeddingKey(embedder.fingerprint, fingerprint, embedder.dimension),
            EmbeddingKey(f"shape-v{SHAPE_VERSION}", fingerprint, SHAPE_DIMENSION),
        )

    @classmethod
    def open(cls, settings: Settings) -> "Collection":
        """Load the model, open IMAGES_DIR and the store (STORE), which loads the stored
        vectors (blocking: seconds; embeds nothing; ``reconcile`` does that)."""
        embedder = ImageEmbedder.load(
            settings.model_name,
            settings.device,
            settings.inference,
            settings.model_threads,
            settings.onnx_dir,
        )
        preprocessing = PreprocessingOptions(
            remove_grid=settings.grid_removal,
            working_side=settings.grid_working_side,
            grid=GridRemovalParams(
                ink_threshold_fraction=settings.grid_ink_threshold,
                min_grid_lines=settings.grid_min_lines,
                max_disc_fraction=settings.grid_max_disc_fraction,
            ),
        )
        text_embedder, text_off_reason = None, TEXT_SEARCH_OFF
        if settings.text_search:
            try:
                text_embedder = cls._text_embedder(settings, embedder)
            except ModelLoadError as exc:
                if settings.text_model_name:  # asked for by name: a configuration error
                    raise
                # A checkpoint folder saved without its tokenizer (as README once told):
                # image search still works; text search says why it does not.
                text_off_reason = (
                    f"Text search is unavailable: MODEL_NAME's text tower cannot be loaded "
                    f"({exc.message}). Save the checkpoint's tokenizer beside it (README: "
                    "Offline use with a local model folder), or set TEXT_SEARCH=false."
                )
                logger.warning(text_off_reason)
        folder = ImageStore(settings.images_dir)
        store = open_store(settings, cls.vector_space(embedder, preprocessing))
        collection = cls(
            embedder,
            folder,
            store,
            preprocessing=preprocessing,
            max_image_pixels=settings.max_image_pixels,
            batch_size=settings.embed_batch_size,
            search_batch_size=settings.search_batch_size,
            search_queue_size=settings.search_queue_size,
            preprocess_threads=settings.preprocess_threads or settings.cpu_threads,
            decode_concurrency=settings.decode_concurrency,
            text_embedder=text_embedder,
            text_off_reason=text_off_reason,
        )
        logger.info("Loaded %d stored vectors from %s", store.searchable_count(), store.location)
        return collection

    @staticmethod
    def _text_embedder(settings: Settings, embedder: ImageEmbedder) -> TextEmbedder:
        setting = "TEXT_MODEL_NAME" if settings.text_model_name else "MODEL_NAME"
        name = settings.text_model_name or settings.model_name
        text_embedder = TextEmbedder.load(
            name,
            settings.device,
            settings.inference,
            settings.model_threads,
            settings.onnx_dir,
            setting,
        )
        if text_embedder.dimension != embedder.dimension:
            raise ModelLoadError(
                f"{setting}={name!r} makes {text_embedder.dimension}-dimensional vectors "
                f"and MODEL_NAME's images are {embedder.dimension}-dimensional: the text tower "
                "must share the image tower's space."
            )
        return text_embedder

    def close(self) -> None:
        self.batcher.close()
        self.store.close()

    # Embedding

    def prepare(self, data: bytes) -> Image.Image:
        """Decode untrusted bytes and preprocess them into what the embedder sees; at most
        DECODE_CONCURRENCY at once across every endpoint and the indexing, since a large
        image's decoding holds hundreds of megabytes until it is reduced."""
        with self._decode_slots:
            image = decode_image(
                data, self.max_image_pixels, DECODE_SIDE_FACTOR * self.preprocessing.working_side
            )
            return prepare_for_embedding(image, self.preprocessing)

    @staticmethod
    def shape_of(framed: Image.Image) -> NDArray[np.float32]:
        return shape_descriptor(np.asarray(framed, np.uint8))

    def embed_upload(self, data: bytes) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The concept and shape vectors of untrusted image bytes: decoding, framing and
        the shape in the caller's thread, only the model on its worker."""
        framed = self.prepare(data)
        concept: NDArray[np.float32] = self.batcher.embed(self.embedder.pixels([framed]))[0]
        return concept, self.shape_of(framed)

    def vectors_of(self, concept: NDArray[np.float32], shape: NDArray[np.float32]) -> Vectors:
        return {self.space.concept: concept, self.space.shape: shape}

    def preview_png(self, data: bytes) -> bytes:
        """The PNG of what the embedder sees for an uploaded image."""
        buffer = io.BytesIO()
        self.prepare(data).save(buffer, format="PNG")
        return buffer.getvalue()

    # Start-up and reconciliation

    @property
    def progress(self) -> IndexingProgress:
        return self.reconciler.progress

    def reconcile(self, should_stop: Callable[[], bool] = lambda: False) -> ReconcileReport:
        return self.reconciler.reconcile(should_stop)

    def apply(self, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        """Save records with their vectors, skipping files deleted since the folder was
        scanned."""
        with self._write_lock:
            entries = [entry for entry in entries if self.folder.holds(entry[0].id)]
            if entries:
                self.store.save(entries)

    def forget(self, ids: list[str]) -> None:
        """Drop files gone from (or unreadable in) the folder from the store."""
        with self._write_lock:
            self.store.delete(ids)

    # Collection changes

    def add(
        self, data: bytes, original_filename: str | None, query: SearchQuery
    ) -> tuple[ImageRecord, list[Match]]:
        """Validate, store and index an uploaded image; return its record and the
        existing images most similar to it. Refuses bytes the collection already holds."""
        sha256 = sha256_hex(data)
        self._refuse_duplicate(sha256)
        concept, shape = self.embed_upload(data)
        extension = file_extension(data)
        similar = self._search(QueryVectors.of(concept, shape, query), query)
        with self._write_lock:
            image_id = self.folder.write_new(data, extension)
            stat = self.folder.stat(image_id)
            name = (original_filename or "").strip()[:MAX_ORIGINAL_FILENAME] or None
            record = ImageRecord(
                image_id, sha256, stat.size, stat.mtime_ns, name, datetime.now(UTC)
            )
            vectors = self.vectors_of(concept, shape)
            # Check and insert in one transaction: an identical upload to this or another
            # process may have won the race since the check above.
            holder = self.store.save_upload(record, vectors)
            if holder is not None and holder.id == image_id:
                # Another process's reconciliation found the new file first: it is ours.
                self.store.save([(record, vectors)])
            elif holder is not None:
                self.folder.delete([image_id])
                raise _duplicate(holder)
        logger.info("Added %s (%s)", image_id, name)
        return record, similar

    def _refuse_duplicate(self, sha256: str) -> None:
        existing = self.store.find_sha256(sha256)
        if existing is not None:
            raise _duplicate(existing)

    def get(self, image_id: str) -> ImageRecord:
        record = self.store.get(image_id)
        if record is None:
            raise ImageNotFoundError(f"No image with id {image_id!r} in the collection.")
        return record

    def holds(self, image_id: str) -> bool:
        return self.store.get(image_id) is not None

    def page(self, page: int, page_size: int) -> tuple[list[ImageRecord], int, int]:
        """Page ``page`` (from 1) of the collection, newest first, or its last page when
        ``page`` is past it; with the total and the page answered."""
        return self.store.newest_first(page, page_size)

    def delete(self, image_id: str) -> None:
        """Remove an image's file and record."""
        with self._write_lock:
            self.get(image_id)
            self.folder.delete([image_id])
            removed = self.store.delete([image_id])
        if not removed:  # another process deleted it first
            raise ImageNotFoundError(f"No image with id {image_id!r} in the collection.")
        logger.info("Deleted %s", image_id)

    def delete_all(self) -> int:
        """Remove every image of the folder and every stored vector; return how many."""
        with self._write_lock:
            ids = list(self.folder.scan())
            self.folder.delete(ids)
            self.store.delete_all()
        logger.warning("Deleted the whole collection (%d images)", len(ids))
        return len(ids)

    # Search

    def search(self, data: bytes, query: SearchQuery) -> list[Match]:
        """Up to ``top_k`` collection images at least ``min_similarity`` similar to the
        uploaded image in the query's mode (and best turn), best first."""
        self._require_ready()
        with self.batcher.search_slot():
            concept, shape = self.embed_upload(data)
        return self._search(QueryVectors.of(concept, shape, query), query)

    def search_text(self, text: str, query: SearchQuery) -> tuple[list[Match], bool]:
        """Up to ``top_k`` collection images whose CLIP vectors are nearest the text's,
        at least ``min_similarity``, best first (concept only: words have no shape); and
        whether the text was cut to the text tower's tokens."""
        if self.text_embedder is None:
            raise TextSearchDisabledError(self.text_off_reason)
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidTextError(
                f"The text has {len(text)} characters; a text search reads at most "
                f"{MAX_TEXT_CHARS} (and the model only its first 77 tokens)."
            )
        tokens = self.text_embedder.tokens(text)
        if not tokens.words:
            raise InvalidTextError(
                "The text is empty: describe the drawing in words, for example "
                "'a circle crossed by a vertical bar'."
            )
        self._require_ready()
        with self.batcher.search_slot():
            concept: NDArray[np.float32] = self.batcher.embed(tokens.ids, TEXT_TOWER)[0]
        concept_only = replace(query, mode=SearchMode.CONCEPT, turns=False)
        return self._search(QueryVectors.of_words(concept), concept_only), tokens.truncated

    def similar_to(self, image_id: str, query: SearchQuery) -> list[Match]:
        """The images most similar to a collection image, from its stored vectors; the
        image itself is left out."""
        self.get(image_id)
        stored = self.store.searchable([image_id]).get(image_id)
        if stored is None:
            raise ImageNotFoundError(f"Image {image_id!r} is not indexed yet; retry shortly.")
        concept, shape = np.split(stored, [self.space.concept.dimension])
        wider = SearchQuery(
            query.top_k + 1, query.min_similarity, query.mode, query.turns, query.concept_weight
        )
        matches = self._search(QueryVectors.of(concept, shape, wider), wider)
        return [match for match in matches if match.id != image_id][: query.top_k]

    def _search(self, vectors: QueryVectors, query: SearchQuery) -> list[Match]:
        turns = list(vectors.shapes)
        hits_per_turn = self.store.search(
            vectors.rows(query.weight), query.top_k, query.min_similarity
        )
        hits = best_turns(turns, hits_per_turn)[: query.top_k]
        stored = self.store.searchable([hit.id for hit in hits])  # a delete may have won
        records = self.store.records_of(stored)
        dimension = self.space.concept.dimension
        return [
            Match(
                id=hit.id,
                similarity=hit.similarity,
                path=self.folder.display_path(hit.id),
                original_filename=records[hit.id].original_filename,
                concept_similarity=float(stored[hit.id][:dimension] @ vectors.concept),
                shape_similarity=None
                if vectors.words
                else float(stored[hit.id][dimension:] @ vectors.shapes[hit.turn]),
                turn=hit.turn if query.turns else None,
            )
            for hit in hits
            if hit.id in stored and hit.id in records
        ]

    def _require_ready(self) -> None:
        if not self.ready:
            progress = self.progress
            left = progress.seconds_left()
            raise IndexNotReadyError(
                f"The collection is being indexed ({progress.done}/{progress.total} "
                "images); retry shortly.",
                retry_after_s=max(1, min(60, math.ceil(left))) if left is not None else 5,
            )

    def current_count(self) -> int:
        """The images searchable now, other processes' changes included."""
        return self.store.searchable_count()
