"""The storage interface the domain uses: the catalog of image records, their vectors,
and similarity search over them. Two implementations sit behind it, opened by
``app.storage.factory.open_store``:

- ``app.storage.embedded.store.EmbeddedStore`` (STORE=embedded, the default): SQLite
  under INDEX_DIR and FAISS in memory; nothing to install; one machine;
- ``app.storage.postgres.store.PostgresStore`` (STORE=postgres): PostgreSQL with
  pgvector; search runs in the database, so replicas on several machines share it.

The image files themselves are IMAGES_DIR for both (``app.storage.image_folder``):
replicas of the Postgres store mount one folder (docs/operations.md: Postgres).
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager

import numpy as np
from numpy.typing import NDArray

from app.storage.types import (
    NO_FETCH,
    EmbeddingKey,
    Fetch,
    Hit,
    ImageRecord,
    VectorQuery,
    Vectors,
    VectorSpace,
)


class Store(ABC):
    """Image records, their vectors by bytes and key, and search over the collection's
    vector space. Every method blocks (a database or FAISS); thread-safe. A write
    acknowledged by any process on the same store is seen by every later call of every
    process."""

    space: VectorSpace
    # Where the store lives, for logs (a path, or the database without its password).
    location: str

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def checkpoint(self) -> None:
        """Persist what a start would otherwise build again (the embedded store's index);
        nothing for a store that keeps nothing in memory."""

    @abstractmethod
    def exclusive(self) -> AbstractContextManager[object]:
        """Held by one reconciliation at a time across every process on this store."""

    @abstractmethod
    def collection_id(self) -> str | None:
        """The id of the collection whose folder this store indexes (``app.folder_guard``)."""

    @abstractmethod
    def adopt_collection_id(self, candidate: str, replace: bool = False) -> str:
        """Take ``candidate`` as the collection's id unless the store has one already
        (or, with ``replace``, in any case), atomically across processes; the id the
        store holds afterwards."""

    # Records

    @abstractmethod
    def records(self) -> dict[str, ImageRecord]: ...

    @abstractmethod
    def get(self, image_id: str) -> ImageRecord | None: ...

    @abstractmethod
    def find_sha256(self, sha256: str) -> ImageRecord | None:
        """The oldest record of these bytes."""

    @abstractmethod
    def newest_first(
        self, page: int, page_size: int, text: str | None = None
    ) -> tuple[list[ImageRecord], int, int]:
        """Page ``page`` (from 1) of the records whose ``search_text`` holds ``text``
        folded (all without it), newest first, or the last page when ``page`` is past
        it; with the total count and the page answered, read together."""

    @abstractmethod
    def vectors_of(
        self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]
    ) -> dict[str, Vectors]:
        """The vectors stored for ``sha256s`` under ``keys``, read by key (never the
        whole key's vectors); bytes with none of them are left out, and so is a vector
        whose length is not its key's."""

    @abstractmethod
    def holding(self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]) -> set[str]:
        """The bytes among ``sha256s`` with a vector stored under every one of ``keys``,
        found through the primary key without reading a vector."""

    def vectors(self, key: EmbeddingKey, sha256s: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        """The stored vectors of ``sha256s`` under ``key``; missing ones are left out."""
        return {sha256: found[key] for sha256, found in self.vectors_of(sha256s, (key,)).items()}

    def stored(
        self, sha256s: Iterable[str], extra: Iterable[EmbeddingKey] = ()
    ) -> dict[str, Vectors]:
        """The bytes among ``sha256s`` whose vectors of the space are both stored, with
        their core's shape and the ``extra`` keys' vectors where stored."""
        space = self.space
        keys = {space.concept, space.shape, *filter(None, (space.core,)), *extra}
        return {
            sha256: vectors
            for sha256, vectors in self.vectors_of(sha256s, keys).items()
            if space.holds(vectors)
        }

    def image(
        self, image_id: str, extra: Iterable[EmbeddingKey] = ()
    ) -> tuple[ImageRecord, Vectors] | None:
        """An image's record and what ``stored`` holds for its bytes (nothing when its
        vectors are not stored yet); None when there is no such image."""
        record = self.get(image_id)
        if record is None:
            return None
        return record, self.stored({record.sha256}, extra).get(record.sha256, {})

    # Writes: each is atomic

    @abstractmethod
    def set_label(self, image_id: str, label: str | None) -> ImageRecord | None:
        """Give a record its label; the record afterwards, None when there is none."""

    @abstractmethod
    def save(self, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        """Insert or update records with the vectors of their bytes; those with both
        vectors of the space become searchable."""

    @abstractmethod
    def save_upload(self, record: ImageRecord, vectors: Vectors) -> ImageRecord | None:
        """Save an uploaded image's record unless another file holds the same bytes:
        then return that one's record and write nothing. Atomic across processes."""

    @abstractmethod
    def delete(self, ids: list[str]) -> int:
        """Remove records, and vectors no remaining record uses; return how many records
        were there (another process may have removed them first)."""

    @abstractmethod
    def delete_all(self) -> None: ...

    # Search

    @abstractmethod
    def search(
        self, query: VectorQuery, top_k: int, min_similarity: float, fetch: Fetch = NO_FETCH
    ) -> list[list[Hit]]:
        """For each turn of the query, up to ``top_k`` hits whose similarity (the
        weighted inner product) is at least ``min_similarity``, best first, each with its
        record and both halves' similarities, and the first images with the vectors
        ``fetch`` asks for: everything a result and its verification need, in one call."""

    @abstractmethod
    def searchable_ids(self) -> set[str]: ...

    @abstractmethod
    def searchable_count(self) -> int: ...
