"""The live collection: the image folder (IMAGES_DIR) and the store kept in step: add,
delete, and the reads a client makes of them.

Order of writes, so that a crash at any point leaves a state the next reconciliation
(``app.reconciliation``) repairs without losing an accepted file: an add writes the file
(atomically), then the store; a delete removes the file, then the store's record.

Every method blocks (file I/O, the encoder, the store); the HTTP layer calls them from
worker threads, never on the event loop.
"""

import logging
import threading
from datetime import UTC, datetime

from app.encoder import Encoder
from app.errors import DuplicateImageError, ImageNotFoundError
from app.imaging.decoding import file_extension
from app.ranking import SearchQuery
from app.search import Match, Search
from app.storage.image_folder import ImageFolder, sha256_hex
from app.storage.store import Store
from app.storage.types import ImageRecord

logger = logging.getLogger(__name__)

# Longest upload file name kept as metadata.
MAX_ORIGINAL_FILENAME = 255


def _duplicate(holder: ImageRecord) -> DuplicateImageError:
    return DuplicateImageError(
        f"The collection already holds this image as {holder.id}.", holder.id
    )


def _not_found(image_id: str) -> ImageNotFoundError:
    return ImageNotFoundError(f"No image with id {image_id!r} in the collection.")


class Collection:
    """Adds and deletes images in the folder and the store together; reads records.
    ``write_lock`` serialises this process's changes (the reconciler's included), so the
    folder and the store change together."""

    def __init__(
        self,
        encoder: Encoder,
        folder: ImageFolder,
        store: Store,
        search: Search,
        write_lock: threading.Lock,
    ) -> None:
        self.encoder = encoder
        self.folder = folder
        self.store = store
        self.search = search
        self._write_lock = write_lock

    def add(
        self, data: bytes, original_filename: str | None, query: SearchQuery
    ) -> tuple[ImageRecord, list[Match]]:
        """Validate, store and index an uploaded image; return its record and the
        existing images most similar to it. Refuses bytes the collection already holds."""
        sha256 = sha256_hex(data)
        existing = self.store.find_sha256(sha256)
        if existing is not None:
            raise _duplicate(existing)
        vectors = self.encoder.encode(data)
        extension = file_extension(data)
        similar = self.search.by_vectors(vectors, query)
        with self._write_lock:
            image_id = self.folder.write_new(data, extension)
            stat = self.folder.stat(image_id)
            name = (original_filename or "").strip()[:MAX_ORIGINAL_FILENAME] or None
            record = ImageRecord(
                image_id, sha256, stat.size, stat.mtime_ns, name, datetime.now(UTC)
            )
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

    def get(self, image_id: str) -> ImageRecord:
        record = self.store.get(image_id)
        if record is None:
            raise _not_found(image_id)
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
            raise _not_found(image_id)
        logger.info("Deleted %s", image_id)

    def delete_all(self) -> int:
        """Remove every image of the folder and every stored vector; return how many."""
        with self._write_lock:
            ids = list(self.folder.scan())
            self.folder.delete(ids)
            self.store.delete_all()
        logger.warning("Deleted the whole collection (%d images)", len(ids))
        return len(ids)

    def count(self) -> int:
        """The images searchable now, other processes' changes included."""
        return self.store.searchable_count()
