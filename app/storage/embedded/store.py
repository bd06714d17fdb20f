"""The embedded store (STORE=embedded, the default): the SQLite catalog under INDEX_DIR
(``app.storage.embedded.catalog``) and a FAISS index in memory
(``app.storage.embedded.vector_index``), loaded at start from its last save beside the
catalog (``app.storage.embedded.saved_index``) and brought up to the catalog's last
change, or built from the catalog's vectors when there is no save to load.

Several processes on one INDEX_DIR (``uvicorn --workers N``) each hold their own FAISS
index: before every search a process reads the catalog's change log and applies what
the others changed since its last look (one query when nothing changed), so a change
acknowledged by one process is seen by the next search on any other.
"""

import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from filelock import FileLock

from app.errors import StoreUnavailableError
from app.storage.embedded.catalog import Catalog
from app.storage.embedded.saved_index import SavedIndex
from app.storage.embedded.vector_index import VectorIndex
from app.storage.search_index import HNSW_EF_SEARCH
from app.storage.store import Store
from app.storage.types import (
    NO_FETCH,
    EmbeddingKey,
    Fetch,
    Hit,
    ImageRecord,
    VectorQuery,
    Vectors,
    VectorSpace,
    best_per_image,
    with_fetched,
)

logger = logging.getLogger(__name__)

RECONCILE_LOCK = "reconcile.lock"
# Past this many images an exact (Flat) search's scan costs more than a quarter of a
# search's model call, and turns=true (16 rows) several times more: HNSW32 is advised
# (bench.registry_store_bench: at 100,000 images Flat answers a turns=true search's
# store call in about 160 ms, HNSW32 in about 10 ms).
FLAT_ADVISED_UP_TO = 50_000


class EmbeddedStore(Store):
    """SQLite plus FAISS, kept in step with each other and with other processes."""

    def __init__(
        self,
        index_dir: Path,
        space: VectorSpace,
        index_factory: str = "Flat",
        ef_search: int = HNSW_EF_SEARCH,
    ) -> None:
        self.space = space
        self.catalog = Catalog(index_dir)
        self.location = str(self.catalog.path)
        self._saved = SavedIndex(self.catalog, space, index_factory, ef_search)
        # The index and the last catalog change it reflects change together.
        self._lock = threading.Lock()
        loaded = self._saved.load()
        if loaded is not None:
            self.index, self.core_index = loaded.images, loaded.cores
            self._seen_change = loaded.change  # later ones are caught up
            self._catch_up()
        else:
            self.index = VectorIndex(space.dimension, index_factory, ef_search)
            # The second rows of the images whose drawings have a core (``VectorSpace.core``).
            self.core_index = VectorIndex(space.dimension, index_factory, ef_search)
            self._seen_change = self.catalog.last_change()  # later ones are caught up
            self._index_stored(self.catalog.records())
        self.checkpoint()
        if index_factory == "Flat" and len(self.index) > FLAT_ADVISED_UP_TO:
            logger.warning(
                "%d images with INDEX_FACTORY=Flat: every search scans them all; "
                "INDEX_FACTORY=HNSW32 searches a registry this size several times faster "
                "(docs/operations.md: Postgres: which store for which collection)",
                len(self.index),
            )

    def close(self) -> None:
        try:
            self.checkpoint()
        except (sqlite3.Error, OSError, StoreUnavailableError) as exc:
            # Nothing is lost: the next start loads the last save and catches up.
            logger.warning("The index was not saved at close: %s", exc)
        self.catalog.close()

    def checkpoint(self) -> None:
        """Save the index beside the catalog when the catalog changed since its last
        save, so that the next start loads it instead of building it."""
        if self._saved.saved_change() == self.catalog.last_change():
            return
        with self._lock:
            self._catch_up_locked()
            self._saved.save(self.index, self.core_index, self._seen_change)

    def exclusive(self) -> FileLock:
        return FileLock(self.catalog.path.with_name(RECONCILE_LOCK))

    def collection_id(self) -> str | None:
        return self.catalog.collection_id()

    def adopt_collection_id(self, candidate: str, replace: bool = False) -> str:
        return self.catalog.adopt_collection_id(candidate, replace)

    # Records

    def records(self) -> dict[str, ImageRecord]:
        return self.catalog.records()

    def get(self, image_id: str) -> ImageRecord | None:
        return self.catalog.get(image_id)

    def find_sha256(self, sha256: str) -> ImageRecord | None:
        return self.catalog.find_sha256(sha256)

    def newest_first(
        self, page: int, page_size: int, text: str | None = None
    ) -> tuple[list[ImageRecord], int, int]:
        return self.catalog.newest_first(page, page_size, text)

    def holding(self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]) -> set[str]:
        return self.catalog.holding(sha256s, keys)

    def vectors_of(
        self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]
    ) -> dict[str, Vectors]:
        return self.catalog.vectors_of(sha256s, keys)

    # Writes

    def set_label(self, image_id: str, label: str | None) -> ImageRecord | None:
        return self.catalog.set_label(image_id, label)

    def save(self, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        with self._lock:
            self.catalog.save(entries)
            self._index(entries)

    def save_upload(self, record: ImageRecord, vectors: Vectors) -> ImageRecord | None:
        with self._lock:
            holder = self.catalog.save_upload(record, vectors)
            if holder is None:
                self._index([(record, vectors)])
        return holder

    def delete(self, ids: list[str]) -> int:
        with self._lock:
            removed = self.catalog.delete(ids)
            self._unindex(ids)
        return removed

    def delete_all(self) -> None:
        with self._lock:
            self.catalog.delete_all()
            self.index.clear()
            self.core_index.clear()

    # Search

    def search(
        self, query: VectorQuery, top_k: int, min_similarity: float, fetch: Fetch = NO_FETCH
    ) -> list[list[Hit]]:
        """FAISS finds the ids; their vectors come from the index and their records from
        the catalog, read after it (an image deleted in between is left out), then what
        ``fetch`` asks for of the first images, by key."""
        self._catch_up()
        rows = self.space.rows(query)
        found = self.index.search(rows, top_k, min_similarity)
        found_core = self.core_index.search(rows, top_k, min_similarity)
        ids = list(dict.fromkeys(image_id for hits in found + found_core for image_id, _ in hits))
        records = self.catalog.records_of(ids)
        main, core = (
            self._hits(index, hits_per_row, records, query)
            for index, hits_per_row in ((self.index, found), (self.core_index, found_core))
        )
        merged = self.space.merged(main, core, top_k)
        if not fetch.images or not fetch.keys:
            return merged
        leading = {hit.record.sha256 for _, hit in best_per_image(merged)[: fetch.images]}
        return with_fetched(merged, self.catalog.vectors_of(leading, fetch.keys))

    def _hits(
        self,
        index: VectorIndex,
        found: list[list[tuple[str, float]]],
        records: dict[str, ImageRecord],
        query: VectorQuery,
    ) -> list[list[Hit]]:
        joined = index.vectors(list({image_id for hits in found for image_id, _ in hits}))
        return [
            [
                self.space.hit(records[image_id], score, joined[image_id], query, turn)
                for image_id, score in hits
                if image_id in joined and image_id in records
            ]
            for turn, hits in enumerate(found)
        ]

    def searchable_ids(self) -> set[str]:
        self._catch_up()
        return self.index.ids()

    def searchable_count(self) -> int:
        self._catch_up()
        return len(self.index)

    def _index(self, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        """Make records with both vectors of the space searchable (and their cores, when
        they have one), and the rest not."""
        space = self.space
        self._unindex([record.id for record, vectors in entries if not space.holds(vectors)])
        self.core_index.remove([record.id for record, vectors in entries])
        for index, join in ((self.index, space.join), (self.core_index, space.join_core)):
            rows = [
                (record.id, joined)
                for record, vectors in entries
                if space.holds(vectors) and (joined := join(vectors)) is not None
            ]
            if rows:
                index.add([image_id for image_id, _ in rows], np.vstack([row for _, row in rows]))

    def _unindex(self, ids: list[str]) -> None:
        self.index.remove(ids)
        self.core_index.remove(ids)

    def _index_stored(self, records: dict[str, ImageRecord]) -> set[str]:
        """Index the records whose vectors are stored; return their ids."""
        stored = self.stored({record.sha256 for record in records.values()})
        self._index(
            [
                (record, stored[record.sha256])
                for record in records.values()
                if record.sha256 in stored
            ]
        )
        return {record.id for record in records.values() if record.sha256 in stored}

    def _catch_up(self) -> None:
        """Apply the changes other processes made to the catalog since the last look (one
        query when there are none). Re-applying this process's own changes is harmless:
        each changed id takes its stored state."""
        if self.catalog.last_change() <= self._seen_change:
            return
        with self._lock:
            self._catch_up_locked()

    def _catch_up_locked(self) -> None:
        changed, last = self.catalog.changes_since(self._seen_change)
        if None in changed:  # everything was deleted, then these changed
            self.index.clear()
            self.core_index.clear()
            changed = changed[len(changed) - changed[::-1].index(None) :]
        ids = list(dict.fromkeys(image_id for image_id in changed if image_id is not None))
        present = self._index_stored(self.catalog.records_of(ids))
        self._unindex([image_id for image_id in ids if image_id not in present])
        self._seen_change = last
