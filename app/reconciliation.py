"""Reconciliation: bring the catalog and the index in step with IMAGES_DIR.

First, the writes a crash interrupted are settled by the store's record
(``app.collection``'s protocol). Then new and changed files are embedded in batches (a
progress bar in the log), removed ones drop out unless the folder guard withholds their
removal (``app.folder_guard.removals_allowed``), and every stored vector is reused: a
file whose concept (CLIP) vector is stored but whose shape vector or stroke mask is not
(the shape descriptor or the verification's mask changed) is decoded and framed again for
those alone, without the model.

Blocking (file I/O, decoding, OpenCV, the model, the store): called from worker threads.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from app.embedding.read_ahead import read_ahead
from app.encoder import Encoder
from app.errors import ServiceError
from app.folder_guard import removals_allowed, require_collection_folder
from app.metrics import INDEXING_DONE, INDEXING_TOTAL
from app.storage.image_folder import FileStat, ImageFolder, sha256_hex
from app.storage.store import Store
from app.storage.types import ImageRecord, Vectors

logger = logging.getLogger(__name__)

PROGRESS_LOG_INTERVAL_S = 5.0
PROGRESS_BAR_WIDTH = 30


@dataclass
class IndexingProgress:
    """Where the indexing stands; read by /health and searches from other threads.
    ``ready``: searches can be answered (the store held vectors at start, or a
    reconciliation has finished)."""

    ready: bool = False
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
    """What a reconciliation did: files added and updated (stored and searchable),
    removed, unchanged, failed (unreadable), pending (new or changed, not embedded
    because it was stopped; the next reconciliation takes them), and withheld (gone from
    the folder, their records kept: too many to remove unconfirmed)."""

    added: int
    updated: int
    removed: int
    unchanged: int
    failed: int
    pending: int
    indexed_images: int
    withheld: int = 0


@dataclass
class _Work:
    """Files sharing one SHA-256, and the concept vector stored for it, if any."""

    records: list[ImageRecord]
    concept: NDArray[np.float32] | None


# A file's model input (None when its concept vector is stored) and what the encoder
# makes of its drawing without the model (shape descriptor, stroke mask).
_Prepared = tuple[NDArray[np.float32] | None, Vectors]


class Reconciler:
    """Reconciles the image folder with the store, embedding through the encoder.
    ``write_lock`` is the one the collection's changes hold, so that a file deleted
    through the API while it is embedded here is not saved back."""

    def __init__(
        self,
        encoder: Encoder,
        folder: ImageFolder,
        store: Store,
        write_lock: threading.Lock,
        progress: IndexingProgress,
        batch_size: int,
        threads: int,
    ) -> None:
        self.encoder = encoder
        self.folder = folder
        self.store = store
        self.batch_size = batch_size
        self.threads = threads
        self.progress = progress
        INDEXING_DONE.set_function(lambda: self.progress.done)
        INDEXING_TOTAL.set_function(lambda: self.progress.total)
        self._write_lock = write_lock
        self._lock = threading.Lock()

    def save_present(self, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        """Save records with their vectors, skipping files deleted since the folder was
        scanned."""
        with self._write_lock:
            entries = [entry for entry in entries if self.folder.holds(entry[0].id)]
            if entries:
                self.store.save(entries)

    def _forget(self, ids: list[str]) -> None:
        """Drop files gone from (or unreadable in) the folder from the store."""
        with self._write_lock:
            self.store.delete(ids)

    def reconcile(
        self, should_stop: Callable[[], bool] = lambda: False, confirm_removals: bool = False
    ) -> ReconcileReport:
        """Settle interrupted writes, embed new and changed files, drop removed ones
        (however many, with ``confirm_removals``), reuse every stored vector.

        Unreadable files are skipped with a warning so one bad file cannot stop start-up;
        they are tried again at the next reconciliation, and a registered one keeps its
        record unless ``confirm_removals``.
        """
        # One reconciliation at a time per store, across processes too (uvicorn
        # --workers N, replicas): the next one finds the first's work done.
        with self._lock, self.store.exclusive():
            self.progress.begin()
            try:
                return self._reconcile(should_stop, confirm_removals)
            finally:
                self.progress.running = False

    def _reconcile(
        self, should_stop: Callable[[], bool], confirm_removals: bool
    ) -> ReconcileReport:
        store, folder = self.store, self.folder
        # Records first, then files: a write in progress elsewhere commits its record
        # before its file appears, and hides its file before its record goes.
        known = store.records()
        require_collection_folder(folder)
        self._settle_abandoned(known)
        files = folder.scan()
        present = files.keys() | folder.pending_ids()  # once: a start must not grow as N^2
        removed = [image_id for image_id in known if image_id not in present]
        withheld = 0
        if removed and not confirm_removals and not removals_allowed(len(removed), len(known)):
            logger.warning(
                "%d of the %d images are missing from IMAGES_DIR %s; their records are kept. "
                "If they were removed on purpose, reconcile with confirm_removals=true "
                "(POST /reindex?confirm_removals=true, or CONFIRM_REMOVALS=true at start).",
                len(removed),
                len(known),
                folder.root,
            )
            removed, withheld = [], len(removed)
        if removed:
            self._forget(removed)

        current = [self._current_record(image_id, files[image_id], known) for image_id in files]
        records = [record for record in current if record is not None]
        sha256s = {record.sha256 for record in records}
        # Complete: searchable with its core's row, and verifiable; a missing stroke mask
        # or core (a new STROKES_VERSION or SHAPE_VERSION) is made again with the shape,
        # without the model. Told by the store's keys alone: a restart with nothing
        # changed reads no vector.
        space, strokes = store.space, self.encoder.strokes
        complete = store.holding(
            sha256s, {space.concept, space.shape, strokes, *filter(None, (space.core,))}
        )
        searchable = store.searchable_ids()
        missing = [
            record
            for record in records
            if record.sha256 in complete
            and (record.id not in searchable or known.get(record.id) != record)
        ]
        stored = store.stored({record.sha256 for record in missing}, (strokes,)) if missing else {}
        complete -= {one.sha256 for one in missing if strokes not in stored.get(one.sha256, {})}
        self.save_present(
            [(record, stored[record.sha256]) for record in missing if record.sha256 in stored]
        )

        unembedded = sha256s - complete
        concepts = store.vectors(space.concept, unembedded) if unembedded else {}
        work: dict[str, _Work] = {}
        for record in records:
            if record.sha256 not in complete:
                entry = work.setdefault(record.sha256, _Work([], concepts.get(record.sha256)))
                entry.records.append(record)
        embedded, unreadable = self._embed_all(list(work.values()), should_stop)
        self._settle_unreadable(unreadable & known.keys(), confirm_removals)

        self.progress.ready = True
        stored_now = embedded | {record.id for record in records if record.sha256 in complete}
        new = [record.id for record in records if record.id not in known]
        changed = [
            record.id
            for record in records
            if record.id in known and known[record.id].sha256 != record.sha256
        ]
        report = ReconcileReport(
            added=sum(image_id in stored_now for image_id in new),
            updated=sum(image_id in stored_now for image_id in changed),
            removed=len(removed),
            unchanged=len(records) - len(new) - len(changed),
            failed=len(unreadable) + len(current) - len(records),
            pending=sum(
                image_id not in stored_now and image_id not in unreadable
                for image_id in new + changed
            ),
            indexed_images=store.searchable_count(),
            withheld=withheld,
        )
        store.checkpoint()  # the next start loads what this one indexed
        logger.info("Reconciled %s with %s: %s", self.folder.root, store.location, report)
        return report

    def _settle_abandoned(self, known: dict[str, ImageRecord]) -> None:
        """Finish or undo what a killed process left halfway, by the store's record."""
        for pending in self.folder.abandoned():
            recorded = pending.image_id in known
            self.folder.settle(pending, recorded)
            logger.info(
                "Settled an interrupted %s of %s: %s",
                "add" if pending.adding else "delete",
                pending.image_id,
                "finished" if recorded == pending.adding else "undone",
            )

    def _current_record(
        self, image_id: str, stat: FileStat, known: dict[str, ImageRecord]
    ) -> ImageRecord | None:
        """The record of a file as it is now, hashing it only when its size or
        modification time differ from the stored ones."""
        folder = self.folder
        record = known.get(image_id)
        if record is not None and (record.size, record.mtime_ns) == (stat.size, stat.mtime_ns):
            return record
        try:
            sha256 = sha256_hex(folder.read_bytes(image_id))
            if folder.stat(image_id) != stat:
                return None  # still being written; the next reconciliation takes it
        except OSError as exc:
            logger.warning("Skipping %s: %s", image_id, exc)
            return None
        if record is not None:
            return replace(record, sha256=sha256, size=stat.size, mtime_ns=stat.mtime_ns)
        created_at = datetime.fromtimestamp(stat.mtime_ns / 1e9, UTC)
        return ImageRecord(image_id, sha256, stat.size, stat.mtime_ns, None, created_at)

    def _embed_all(
        self, work: list[_Work], should_stop: Callable[[], bool]
    ) -> tuple[set[str], set[str]]:
        """Embed each entry's bytes once, in batches; return the ids of the files stored
        and of those that could not be read.

        Worker threads decode and preprocess the next batch while the model embeds the
        current one.
        """
        self.progress.begin(sum(len(entry.records) for entry in work))
        unreadable: list[str] = []
        embedded: set[str] = set()
        last_log, logged_done = time.monotonic(), -1
        for batch in read_ahead(
            work, self.batch_size, self.threads, self._prepare_file, should_stop
        ):
            unreadable.extend(
                record.id for entry, result in batch if result is None for record in entry.records
            )
            readable = [(entry, result) for entry, result in batch if result is not None]
            to_embed = [pixels for _, (pixels, _) in readable if pixels is not None]
            concepts: Iterator[NDArray[np.float32]] = iter(
                self.encoder.concepts(np.concatenate(to_embed)) if to_embed else []
            )
            entries: list[tuple[ImageRecord, Vectors]] = []
            for entry, (pixels, drawing) in readable:
                concept = next(concepts) if pixels is not None else entry.concept
                assert concept is not None
                vectors = {self.store.space.concept: concept, **drawing}
                entries.extend((record, vectors) for record in entry.records)
            self.save_present(entries)
            embedded.update(record.id for record, _ in entries)
            self.progress.done += sum(len(entry.records) for entry, _ in batch)
            if time.monotonic() - last_log >= PROGRESS_LOG_INTERVAL_S:
                logger.info("Indexing %s", self.progress.bar())
                last_log, logged_done = time.monotonic(), self.progress.done
        if self.progress.total and logged_done != self.progress.done:
            logger.info("Indexing %s", self.progress.bar())
        return embedded, set(unreadable)

    def _settle_unreadable(self, ids: set[str], confirm_removals: bool) -> None:
        """Registered images whose files cannot be read now (damaged, or refused by a
        setting such as MAX_IMAGE_PIXELS) keep their records, labels and last vectors, as
        missing ones are withheld: a registry's labels are never dropped unconfirmed."""
        if not ids:
            return
        if confirm_removals:
            self._forget(list(ids))
            return
        logger.warning(
            "%d registered images cannot be read from IMAGES_DIR %s (%s); their records and "
            "labels are kept. Restore the files, or drop them by reconciling with "
            "confirm_removals=true (POST /reindex?confirm_removals=true).",
            len(ids),
            self.folder.root,
            ", ".join(sorted(ids)[:5]) + (", ..." if len(ids) > 5 else ""),
        )

    def _prepare_file(self, entry: _Work) -> _Prepared | None:
        """The model's input (unless the concept vector is stored), the shape vectors and
        the stroke mask of a collection file; ``None`` (and a warning) when it cannot be
        read or decoded."""
        image_id = entry.records[0].id
        try:
            framed, drawing = self.encoder.prepare_drawing(self.folder.read_bytes(image_id))
        except (ServiceError, OSError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else str(exc)
            logger.warning("Skipping %s: %s", image_id, message)
            return None
        pixels = self.encoder.model_input(framed) if entry.concept is None else None
        return pixels, drawing
