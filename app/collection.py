"""The live collection: the image folder, the stored index and the in-memory FAISS index
kept in step, and similarity search over them.

Every method here blocks (file I/O, decoding, OpenCV, the model, FAISS, SQLite); the
HTTP layer calls them from worker threads, never on the event loop.

Order of writes, so that a crash at any point leaves a state the next reconciliation
repairs without losing an accepted file: an add writes the file (atomically), then the
catalog, then the in-memory index; a delete removes the file, then the catalog row.
"""

import io
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.config import Settings
from app.embedding.batching import EmbeddingBatcher
from app.embedding.model import ImageEmbedder
from app.errors import (
    DuplicateImageError,
    ImageNotFoundError,
    IndexNotReadyError,
    ServiceError,
)
from app.imaging.decoding import decode_image, file_extension
from app.imaging.grid_removal import GridRemovalParams
from app.imaging.preprocessing import PreprocessingOptions, prepare_for_embedding
from app.storage.embedded.catalog import Catalog, EmbeddingKey, ImageRecord
from app.storage.embedded.image_store import FileStat, ImageStore, sha256_hex
from app.storage.embedded.vector_index import VectorIndex

logger = logging.getLogger(__name__)

PROGRESS_LOG_INTERVAL_S = 5.0
PROGRESS_BAR_WIDTH = 30
# Longest upload file name kept as metadata.
MAX_ORIGINAL_FILENAME = 255


@dataclass(frozen=True)
class Match:
    id: str
    similarity: float
    path: str


@dataclass
class IndexingProgress:
    """Where the running reconciliation stands; read by /health from other threads."""

    running: bool = False
    total: int = 0
    done: int = 0
    started_at: float = field(default_factory=time.monotonic)

    def begin(self, total: int = 0) -> None:
        self.total, self.done, self.started_at, self.running = total, 0, time.monotonic(), True

    def seconds_left(self) -> float | None:
        elapsed = time.monotonic() - self.started_at
        if not self.running or self.done == 0 or elapsed <= 0:
            return None
        return (self.total - self.done) * elapsed / self.done

    def bar(self) -> str:
        """``[#########.....] 320/1000 32% 41.2 images/s, 16 s left`` for the log."""
        fraction = self.done / self.total if self.total else 1.0
        filled = round(fraction * PROGRESS_BAR_WIDTH)
        rate = self.done / max(time.monotonic() - self.started_at, 1e-9)
        left = self.seconds_left()
        return (
            f"[{'#' * filled}{'.' * (PROGRESS_BAR_WIDTH - filled)}] {self.done}/{self.total} "
            f"{fraction:.0%} {rate:.1f} images/s"
            + (f", {left:.0f} s left" if left is not None else "")
        )


@dataclass(frozen=True)
class ReconcileReport:
    added: int
    updated: int
    removed: int
    unchanged: int
    failed: int
    indexed_images: int


class Collection:
    """Embeds images the same way for indexing and for queries; keeps IMAGES_DIR, the
    catalog and the FAISS index in step; searches."""

    def __init__(
        self,
        embedder: ImageEmbedder,
        store: ImageStore,
        catalog: Catalog,
        index: VectorIndex,
        *,
        preprocessing: PreprocessingOptions | None = None,
        max_image_pixels: int = 64_000_000,
        batch_size: int = 16,
        search_batch_size: int = 8,
        search_queue_size: int = 32,
        preprocess_threads: int = 1,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.catalog = catalog
        self.index = index
        self.preprocessing = preprocessing or PreprocessingOptions()
        self.max_image_pixels = max_image_pixels
        self.batch_size = batch_size
        self.preprocess_threads = preprocess_threads
        self.batcher = EmbeddingBatcher(
            lambda pixels: self.embedder.embed_pixels(pixels),
            search_batch_size,
            search_queue_size,
        )
        self.key = EmbeddingKey(embedder.fingerprint, self.preprocessing.fingerprint)
        self.progress = IndexingProgress()
        # Searchable: a stored index was loaded, or a reconciliation has finished.
        self.ready = False
        # Serialises changes, so folder, catalog and index change together.
        self._write_lock = threading.Lock()
        self._reconcile_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> "Collection":
        """Load the model, open IMAGES_DIR and the stored index, and load the stored
        vectors (blocking: seconds; embeds nothing; ``reconcile`` does that)."""
        embedder = ImageEmbedder.load(
            settings.model_name,
            settings.device,
            settings.inference,
            settings.model_threads,
            settings.onnx_dir,
        )
        collection = cls(
            embedder,
            ImageStore(settings.images_dir),
            Catalog(settings.index_dir, embedder.dimension),
            VectorIndex(embedder.dimension, settings.index_factory),
            preprocessing=PreprocessingOptions(
                remove_grid=settings.grid_removal,
                working_side=settings.grid_working_side,
                grid=GridRemovalParams(
                    ink_threshold_fraction=settings.grid_ink_threshold,
                    min_grid_lines=settings.grid_min_lines,
                    max_disc_fraction=settings.grid_max_disc_fraction,
                ),
            ),
            max_image_pixels=settings.max_image_pixels,
            batch_size=settings.embed_batch_size,
            search_batch_size=settings.search_batch_size,
            search_queue_size=settings.search_queue_size,
            preprocess_threads=settings.preprocess_threads or settings.cpu_threads,
        )
        collection.load()
        return collection

    def close(self) -> None:
        self.batcher.close()
        self.catalog.close()

    # Embedding

    def prepare(self, data: bytes) -> Image.Image:
        """Decode untrusted bytes and preprocess them into what the embedder sees."""
        image = decode_image(data, self.max_image_pixels)
        return prepare_for_embedding(image, self.preprocessing)

    def pixels(self, data: bytes) -> NDArray[np.float32]:
        """The model's input for untrusted image bytes: done in the caller's thread, so the
        model's worker only runs the model."""
        return self.embedder.pixels([self.prepare(data)])

    def embed_upload(self, data: bytes) -> NDArray[np.float32]:
        vector: NDArray[np.float32] = self.batcher.embed(self.pixels(data))[0]
        return vector

    def preview_png(self, data: bytes) -> bytes:
        """The PNG of what the embedder sees for an uploaded image."""
        buffer = io.BytesIO()
        self.prepare(data).save(buffer, format="PNG")
        return buffer.getvalue()

    # Start-up and reconciliation

    def load(self) -> int:
        """Fill the index from the stored vectors, embedding nothing; return its size."""
        records = self.catalog.records()
        vectors = self.catalog.vectors(self.key, {record.sha256 for record in records.values()})
        ids = [image_id for image_id, record in records.items() if record.sha256 in vectors]
        if ids:
            self.index.add(ids, np.vstack([vectors[records[image_id].sha256] for image_id in ids]))
        self.ready = bool(ids)
        logger.info("Loaded %d stored vectors from %s", len(ids), self.catalog.path)
        return len(ids)

    def reconcile(self, should_stop: Callable[[], bool] = lambda: False) -> ReconcileReport:
        """Bring catalog and index in step with the folder: embed new and changed files
        (in batches, logging a progress bar), drop removed ones, reuse every stored vector.

        Unreadable files are skipped with a warning so one bad file cannot stop start-up;
        they are tried again at the next reconciliation.
        """
        with self._reconcile_lock:
            self.progress.begin()
            try:
                return self._reconcile(should_stop)
            finally:
                self.progress.running = False

    def _reconcile(self, should_stop: Callable[[], bool]) -> ReconcileReport:
        files = self.store.scan()
        known = self.catalog.records()
        removed = [image_id for image_id in known if image_id not in files]
        if removed:
            with self._write_lock:
                self.catalog.delete(removed)
                self.index.remove(removed)

        current = [self._current_record(image_id, files[image_id], known) for image_id in files]
        records = [record for record in current if record is not None]
        stored = self.catalog.vectors(self.key, {record.sha256 for record in records})
        self._apply(
            [
                (record, stored[record.sha256])
                for record in records
                if record.sha256 in stored
                and (record.id not in self.index or known.get(record.id) != record)
            ],
            store_vectors=False,
        )

        to_embed: dict[str, list[ImageRecord]] = {}
        for record in records:
            if record.sha256 not in stored:
                to_embed.setdefault(record.sha256, []).append(record)
        failed = self._embed_all(list(to_embed.values()), should_stop)

        self.ready = True
        new = sum(record.id not in known for record in records)
        updated = sum(
            record.id in known and known[record.id].sha256 != record.sha256 for record in records
        )
        report = ReconcileReport(
            added=new,
            updated=updated,
            removed=len(removed),
            unchanged=len(records) - new - updated,
            failed=failed + len(current) - len(records),
            indexed_images=len(self.index),
        )
        logger.info("Reconciled %s with %s: %s", self.store.root, self.catalog.path, report)
        return report

    def _current_record(
        self, image_id: str, stat: FileStat, known: dict[str, ImageRecord]
    ) -> ImageRecord | None:
        """The record of a file as it is now, hashing it only when its size or
        modification time differ from the stored ones."""
        record = known.get(image_id)
        if record is not None and (record.size, record.mtime_ns) == (stat.size, stat.mtime_ns):
            return record
        try:
            sha256 = sha256_hex(self.store.read_bytes(image_id))
            if self.store.stat(image_id) != stat:
                return None  # still being written; the next reconciliation takes it
        except OSError as exc:
            logger.warning("Skipping %s: %s", image_id, exc)
            return None
        if record is not None:
            return replace(record, sha256=sha256, size=stat.size, mtime_ns=stat.mtime_ns)
        created_at = datetime.fromtimestamp(stat.mtime_ns / 1e9, UTC)
        return ImageRecord(image_id, sha256, stat.size, stat.mtime_ns, None, created_at)

    def _embed_all(self, groups: list[list[ImageRecord]], should_stop: Callable[[], bool]) -> int:
        """Embed each group's bytes once (a group shares one SHA-256), in batches; return
        how many files could not be read (they leave the catalog and the index).

        Worker threads decode and preprocess the next batch while the model embeds the
        current one.
        """
        self.progress.begin(sum(len(group) for group in groups))
        chunks = [
            groups[start : start + self.batch_size]
            for start in range(0, len(groups), self.batch_size)
        ]
        unreadable: list[str] = []
        last_log = time.monotonic()
        with ThreadPoolExecutor(self.preprocess_threads, thread_name_prefix="preprocess") as pool:
            upcoming = (
                [pool.submit(self._prepare_file, group[0].id) for group in chunks[0]]
                if chunks
                else []
            )
            for number, chunk in enumerate(chunks):
                if should_stop():
                    break
                prepared = upcoming
                if number + 1 < len(chunks):
                    upcoming = [
                        pool.submit(self._prepare_file, group[0].id) for group in chunks[number + 1]
                    ]
                batch = [
                    (group, future.result()) for group, future in zip(chunk, prepared, strict=True)
                ]
                readable = [(group, pixels) for group, pixels in batch if pixels is not None]
                unreadable.extend(
                    record.id for group, pixels in batch if pixels is None for record in group
                )
                if readable:
                    vectors = self.batcher.embed(np.concatenate([pixels for _, pixels in readable]))
                    self._apply(
                        [
                            (record, vector)
                            for (group, _), vector in zip(readable, vectors, strict=True)
                            for record in group
                        ],
                        store_vectors=True,
                    )
                self.progress.done += sum(len(group) for group in chunk)
                if time.monotonic() - last_log >= PROGRESS_LOG_INTERVAL_S:
                    logger.info("Indexing %s", self.progress.bar())
                    last_log = time.monotonic()
            for future in upcoming:
                future.cancel()
        if self.progress.total:
            logger.info("Indexing %s", self.progress.bar())
        if unreadable:  # a file that became unreadable must not keep its old vector
            with self._write_lock:
                self.catalog.delete(unreadable)
                self.index.remove(unreadable)
        return len(unreadable)

    def _prepare_file(self, image_id: str) -> NDArray[np.float32] | None:
        """The model's input for a collection file; ``None`` (and a warning) when it
        cannot be read or decoded."""
        try:
            return self.pixels(self.store.read_bytes(image_id))
        except (ServiceError, OSError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else str(exc)
            logger.warning("Skipping %s: %s", image_id, message)
            return None

    def _apply(
        self, entries: list[tuple[ImageRecord, NDArray[np.float32]]], *, store_vectors: bool
    ) -> None:
        """Save records (and their vectors) and index them, skipping files deleted since
        the folder was scanned."""
        with self._write_lock:
            entries = [
                (record, vector) for record, vector in entries if self.store.holds(record.id)
            ]
            if not entries:
                return
            self.catalog.save(
                [(record, vector if store_vectors else None) for record, vector in entries],
                self.key,
            )
            self.index.add([record.id for record, _ in entries], np.vstack([v for _, v in entries]))

    # Collection changes

    def add(
        self, data: bytes, original_filename: str | None, top_k: int, min_similarity: float
    ) -> tuple[ImageRecord, list[Match]]:
        """Validate, store and index an uploaded image; return its record and the
        existing images most similar to it. Refuses bytes the collection already holds."""
        sha256 = sha256_hex(data)
        self._refuse_duplicate(sha256)
        vector = self.embed_upload(data)
        extension = file_extension(data)
        similar = self._matches(self.index.search(vector, top_k, min_similarity)[0])
        with self._write_lock:
            self._refuse_duplicate(sha256)  # an identical upload may have won the race
            image_id = self.store.write_new(data, extension)
            stat = self.store.stat(image_id)
            name = (original_filename or "").strip()[:MAX_ORIGINAL_FILENAME] or None
            record = ImageRecord(
                image_id, sha256, stat.size, stat.mtime_ns, name, datetime.now(UTC)
            )
            self.catalog.save([(record, vector)], self.key)
            self.index.add([image_id], vector.reshape(1, -1))
        logger.info("Added %s (%s)", image_id, name)
        return record, similar

    def _refuse_duplicate(self, sha256: str) -> None:
        existing = self.catalog.find_sha256(sha256)
        if existing is not None:
            raise DuplicateImageError(
                f"The collection already holds this image as {existing.id}.", existing.id
            )

    def get(self, image_id: str) -> ImageRecord:
        record = self.catalog.get(image_id)
        if record is None:
            raise ImageNotFoundError(f"No image with id {image_id!r} in the collection.")
        return record

    def page(self, page: int, page_size: int) -> tuple[list[ImageRecord], int]:
        """Page ``page`` (from 1) of the collection, newest first, and the total."""
        return self.catalog.newest_first((page - 1) * page_size, page_size)

    def delete(self, image_id: str) -> None:
        """Remove an image's file and vector."""
        with self._write_lock:
            self.get(image_id)
            self.store.delete([image_id])
            self.catalog.delete([image_id])
            self.index.remove([image_id])
        logger.info("Deleted %s", image_id)

    def delete_all(self) -> int:
        """Remove every image of the folder and every stored vector; return how many."""
        with self._write_lock:
            ids = list(self.store.scan())
            for image_id in ids:
                self.store.delete([image_id])
            self.catalog.delete_all()
            self.index.clear()
        logger.warning("Deleted the whole collection (%d images)", len(ids))
        return len(ids)

    # Search

    def search(self, data: bytes, top_k: int, min_similarity: float) -> list[Match]:
        """Return up to ``top_k`` collection images at least ``min_similarity`` similar to
        the uploaded image, best first."""
        self._require_ready()
        with self.batcher.search_slot():
            vector = self.embed_upload(data)
        return self._matches(self.index.search(vector, top_k, min_similarity)[0])

    def _require_ready(self) -> None:
        if not self.ready:
            left = self.progress.seconds_left()
            raise IndexNotReadyError(
                f"The collection is being indexed ({self.progress.done}/{self.progress.total} "
                "images); retry shortly.",
                retry_after_s=max(1, min(60, math.ceil(left))) if left is not None else 5,
            )

    def _matches(self, hits: list[tuple[str, float]]) -> list[Match]:
        return [
            Match(id=image_id, similarity=score, path=self.store.display_path(image_id))
            for image_id, score in hits
        ]

    @property
    def image_count(self) -> int:
        return len(self.index)
