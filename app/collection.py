"""The live collection: the image folder (IMAGES_DIR) and the store kept in step: add,
delete, and the reads a client makes of them.

Whole writes: an add or a delete is fully applied or not at all, as clients and searches
see it, whatever fails between its steps. The store's commit decides; the file follows
it (``app.storage.image_folder`` keeps a file in the middle of a write hidden and locked):

- **add**: stage the bytes (hidden) -> commit the record -> publish the file under its
  id. A failed commit discards the staged file, unless the store answers that it holds
  the record after all (its answer was lost): then the file is published and the add
  succeeds; when the store cannot say, the staged file waits, hidden, until the store
  answers again (``_settle_when_reachable``). A full disk fails the staging, before
  anything is written to the store.
- **delete**: withdraw the file (hidden) -> remove the record -> purge the file. A
  failed removal restores the file when the store still holds the record, and finishes
  the delete when it does not; when the store cannot say, the withdrawn file waits until
  the store answers again, and is settled the same way.
- a process killed between two steps leaves a hidden file whose lock died with it: the
  next reconciliation publishes or restores it when its record is stored, and discards
  or purges it otherwise. So a refused write never appears later, an acknowledged one
  is never undone, and no file is registered without the metadata of its upload.

Every method blocks (file I/O, the encoder, the store); the HTTP layer calls them from
worker threads, never on the event loop.
"""

import errno
import logging
import threading
import time
import unicodedata
from datetime import UTC, datetime

from app.encoder import Encoder
from app.errors import (
    DuplicateImageError,
    ImageNotFoundError,
    InvalidLabelError,
    StorageFullError,
    StoreUnavailableError,
)
from app.folder_guard import require_collection_folder
from app.imaging.decoding import file_extension
from app.messages.catalogue import Message, message
from app.ranking import SearchQuery
from app.search import Match, Search
from app.storage.image_folder import ImageFolder, PendingFile, sha256_hex
from app.storage.store import Store
from app.storage.types import ImageRecord, Vectors

logger = logging.getLogger(__name__)

# Longest upload file name kept as metadata.
MAX_ORIGINAL_FILENAME = 255
# A registration number and an owner's name fit, with room to spare.
MAX_LABEL_CHARS = 200
# Unicode categories removed from upload file names: control characters (NUL breaks
# Postgres, newlines forge log lines), format characters (bidirectional overrides
# disguise a name) and lone surrogates.
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# A write whose commit the store could not confirm is settled as soon as the store
# answers again: asked this often, for this long (then by the next reconciliation).
SETTLE_RETRY_S = 1.0
SETTLE_GIVE_UP_S = 600.0


def clean_filename(name: str | None) -> str | None:
    """An upload's file name as stored: without unprintable characters, trimmed, at
    most ``MAX_ORIGINAL_FILENAME`` characters; None when nothing is left."""
    return _printable(name)[:MAX_ORIGINAL_FILENAME] or None


def _printable(text: str | None) -> str:
    """``text`` without control, format and surrogate characters, trimmed."""
    kept = "".join(
        character
        for character in text or ""
        if unicodedata.category(character) not in UNPRINTABLE_CATEGORIES
    )
    return kept.strip()


def clean_label(label: str | None) -> str | None:
    """A label as stored: without unprintable characters, trimmed; None when nothing is
    left. Refuses one over ``MAX_LABEL_CHARS`` (a clerk should see it was not kept whole)."""
    kept = _printable(label)
    if len(kept) > MAX_LABEL_CHARS:
        raise InvalidLabelError(message("label_too_long", length=len(kept), max=MAX_LABEL_CHARS))
    return kept or None


def spoken_name(record: ImageRecord) -> Message | str:
    """How messages name an image: its name with its id, or its id when that is its name."""
    if record.name == record.id:
        return record.id
    return message("name_and_id", name=record.name, id=record.id)


def _duplicate(holder: ImageRecord) -> DuplicateImageError:
    return DuplicateImageError(message("duplicate", name=spoken_name(holder)), holder.id)


def _not_found(image_id: str) -> ImageNotFoundError:
    return ImageNotFoundError(message("image_not_found", id=image_id))


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
        self,
        data: bytes,
        original_filename: str | None,
        query: SearchQuery,
        label: str | None = None,
    ) -> tuple[ImageRecord, list[Match]]:
        """Validate, store and index an uploaded image with its label; return its record
        and the existing images most similar to it. Refuses bytes the collection already
        holds."""
        label = clean_label(label)
        sha256 = sha256_hex(data)
        existing = self.store.find_sha256(sha256)
        if existing is not None:
            raise _duplicate(existing)
        vectors = self.encoder.encode(data)
        similar = self.search.by_vectors(vectors, query)
        return self.register(data, vectors, original_filename, label), similar

    def register(
        self, data: bytes, vectors: Vectors, original_filename: str | None, label: str | None
    ) -> ImageRecord:
        """Store and index image bytes with the vectors the encoder made of them and a
        label (cleaned: ``clean_label``): stage, commit, publish. Refuses bytes the
        collection already holds, atomically across processes."""
        label = clean_label(label)
        name = clean_filename(original_filename)
        require_collection_folder(self.folder)
        with self._write_lock, self.folder.writing():
            staged = self._stage(data, file_extension(data))
            stat = staged.stat()
            record = ImageRecord(
                staged.image_id,
                sha256_hex(data),
                stat.size,
                stat.mtime_ns,
                name,
                datetime.now(UTC),
                label,
            )
            try:
                # Check and insert in one transaction: an identical upload to this or
                # another process may have won the race since any check before.
                holder = self.store.save_upload(record, vectors)
            except Exception:
                held = self._holds_record(record.id)
                if held is None:
                    self._settle_when_reachable(staged)
                    raise
                if not held:
                    self.folder.discard(staged)
                    raise
                holder = None
            if holder is not None:
                self.folder.discard(staged)
                raise _duplicate(holder)
            self.folder.publish(staged)
        logger.info("Added %s (%s)", record.id, name)
        return record

    def _stage(self, data: bytes, extension: str) -> PendingFile:
        try:
            return self.folder.stage(data, extension)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(message("storage_full")) from exc
            raise

    def _holds_record(self, image_id: str) -> bool | None:
        """Whether the store holds the image's record, after a write to it failed; None
        when it cannot say (unreachable)."""
        try:
            return self.store.get(image_id) is not None
        except StoreUnavailableError:
            logger.warning(
                "Cannot tell whether %s was committed; settling it once the store answers",
                image_id,
            )
            return None

    def _settle_when_reachable(self, pending: PendingFile) -> None:
        """Publish or discard a staged add, restore or purge a withdrawn file, by the
        store's record as soon as the store answers again, in the background: its brand
        is never listed without its file for longer than that. The file stays locked
        meanwhile (no reconciliation takes it); past ``SETTLE_GIVE_UP_S``, or when this
        process dies, the next reconciliation settles it."""

        def settle() -> None:
            deadline = time.monotonic() + SETTLE_GIVE_UP_S
            while time.monotonic() < deadline:
                time.sleep(SETTLE_RETRY_S)
                try:
                    recorded = self.store.get(pending.image_id) is not None
                except StoreUnavailableError:
                    continue
                except Exception:  # noqa: BLE001 - a closed store: the next start settles it
                    break
                with self._write_lock:
                    self.folder.settle(pending, recorded)
                logger.info("Settled %s once the store answered", pending.image_id)
                return
            pending.release()

        threading.Thread(target=settle, name=f"settle-{pending.image_id}", daemon=True).start()

    def get(self, image_id: str) -> ImageRecord:
        record = self.store.get(image_id)
        if record is None:
            raise _not_found(image_id)
        return record

    def holds(self, image_id: str) -> bool:
        return self.store.get(image_id) is not None

    def page(
        self, page: int, page_size: int, text: str | None = None
    ) -> tuple[list[ImageRecord], int, int]:
        """Page ``page`` (from 1) of the collection, newest first, or its last page when
        ``page`` is past it; with the total and the page answered. With ``text``, only
        the images whose id, label or original file name holds it (case and accents
        aside)."""
        return self.store.newest_first(page, page_size, text.strip() if text else None)

    def set_label(self, image_id: str, label: str | None) -> ImageRecord:
        """Give an image a new label (None: none); its record afterwards."""
        record = self.store.set_label(image_id, clean_label(label))
        if record is None:
            raise _not_found(image_id)
        logger.info("Labelled %s", image_id)
        return record

    def delete(self, image_id: str) -> ImageRecord:
        """Remove an image's record and file; the record it was."""
        require_collection_folder(self.folder)
        with self._write_lock, self.folder.writing():
            record = self.get(image_id)
            withdrawn = self.folder.withdraw(image_id)
            try:
                removed = self.store.delete([image_id])
            except Exception:
                held = self._holds_record(image_id)
                if held is not False:
                    if withdrawn is not None and held:
                        self.folder.restore(withdrawn)
                    elif withdrawn is not None:
                        self._settle_when_reachable(withdrawn)
                    raise
                removed = 1  # removed after all (its answer was lost)
            if withdrawn is not None:
                self.folder.purge(withdrawn)
        if not removed:  # another process deleted it first
            raise _not_found(image_id)
        logger.info("Deleted %s", image_id)
        return record

    def delete_all(self) -> int:
        """Remove every image's record and file; return how many."""
        require_collection_folder(self.folder)
        with self._write_lock, self.folder.bulk():
            withdrawn = self.folder.withdraw_all()
            try:
                self.store.delete_all()
            except Exception:
                try:
                    held = self.store.records()
                except StoreUnavailableError:
                    logger.warning(
                        "The store is unreachable; the next reconciliation "
                        "settles the %d withdrawn images",
                        len(withdrawn),
                    )
                    raise
                for pending in withdrawn:
                    self.folder.settle(pending, pending.image_id in held)
                raise
            for pending in withdrawn:
                self.folder.purge(pending)
        logger.warning("Deleted the whole collection (%d images)", len(withdrawn))
        return len(withdrawn)

    def count(self) -> int:
        """The images searchable now, other processes' changes included."""
        return self.store.searchable_count()
