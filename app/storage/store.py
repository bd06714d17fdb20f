"""The storage interface the collection uses: the catalog of image records, their vectors,
and similarity search over them. Two implementations sit behind it:

- ``app.storage.embedded.store.EmbeddedStore`` (STORE=embedded, the default): SQLite
  under INDEX_DIR and FAISS in memory; nothing to install; one machine;
- ``app.storage.postgres.store.PostgresStore`` (STORE=postgres): PostgreSQL with
  pgvector; search runs in the database, so replicas on several machines share it.

The image files themselves are IMAGES_DIR for both (``app.storage.embedded.image_store``):
replicas of the Postgres store mount one folder (README: Postgres).
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from app.config import Settings


@dataclass(frozen=True)
class ImageRecord:
    id: str
    sha256: str
    size: int
    mtime_ns: int
    original_filename: str | None
    created_at: datetime


@dataclass(frozen=True)
class EmbeddingKey:
    """What a vector depends on besides the bytes: what made it (a model's name, or the
    shape descriptor's version) and the preprocessing, and its length."""

    model: str
    preprocessing: str
    dimension: int


# The vectors of one file's bytes, by what they are keyed under.
Vectors = dict[EmbeddingKey, NDArray[np.float32]]


@dataclass(frozen=True)
class VectorSpace:
    """What the collection searches: each image as ``[concept | shape]``, the
    concatenation of its two unit vectors (``app.ranking``)."""

    concept: EmbeddingKey
    shape: EmbeddingKey

    @property
    def dimension(self) -> int:
        return self.concept.dimension + self.shape.dimension

    @property
    def name(self) -> str:
        """Names the space in a store, so vectors of another model or pipeline never mix."""
        return f"{self.concept.model} + {self.shape.model} ({self.concept.preprocessing})"

    def join(self, vectors: Vectors) -> NDArray[np.float32]:
        return np.concatenate([vectors[self.concept], vectors[self.shape]]).astype(np.float32)

    def split(self, joined: NDArray[np.float32]) -> Vectors:
        concept, shape = np.split(joined, [self.concept.dimension])
        return {self.concept: concept, self.shape: shape}

    def holds(self, vectors: Vectors) -> bool:
        return self.concept in vectors and self.shape in vectors


# Up to top_k (id, similarity) pairs per query row, best first.
Hits = list[list[tuple[str, float]]]


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
    def exclusive(self) -> AbstractContextManager[object]:
        """Held by one reconciliation at a time across every process on this store."""

    # Records

    @abstractmethod
    def records(self) -> dict[str, ImageRecord]: ...

    @abstractmethod
    def get(self, image_id: str) -> ImageRecord | None: ...

    @abstractmethod
    def records_of(self, ids: Iterable[str]) -> dict[str, ImageRecord]:
        """The records of ``ids``; ids not in the catalog are left out."""

    @abstractmethod
    def find_sha256(self, sha256: str) -> ImageRecord | None:
        """The oldest record of these bytes."""

    @abstractmethod
    def newest_first(self, page: int, page_size: int) -> tuple[list[ImageRecord], int, int]:
        """Page ``page`` (from 1) of the records, newest first, or the last page when
        ``page`` is past it; with the total count and the page answered, read together."""

    @abstractmethod
    def vectors(self, key: EmbeddingKey, sha256s: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        """The stored vectors of ``sha256s`` under ``key``; missing ones are left out."""

    def stored(self, sha256s: Iterable[str]) -> dict[str, Vectors]:
        """The bytes among ``sha256s`` whose vectors of the space are both stored."""
        wanted = set(sha256s)
        concepts = self.vectors(self.space.concept, wanted)
        shapes = self.vectors(self.space.shape, wanted)
        return {
            sha256: {self.space.concept: concepts[sha256], self.space.shape: shapes[sha256]}
            for sha256 in concepts.keys() & shapes.keys()
        }

    # Writes: each is atomic

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
    def search(self, rows: NDArray[np.float32], top_k: int, min_similarity: float) -> Hits:
        """For each query row of the space, up to ``top_k`` ``(id, similarity)`` pairs
        with similarity (inner product) at least ``min_similarity``, best first."""

    @abstractmethod
    def searchable(self, ids: list[str]) -> dict[str, NDArray[np.float32]]:
        """The joined vectors of those ``ids`` that are searchable."""

    @abstractmethod
    def searchable_ids(self) -> set[str]: ...

    @abstractmethod
    def searchable_count(self) -> int: ...


def open_store(settings: Settings, space: VectorSpace) -> Store:
    """The store STORE names, opened for ``space``."""
    if settings.store == "postgres":
        from app.storage.postgres.store import PostgresStore

        assert settings.database_url is not None  # Settings requires it for postgres
        return PostgresStore(
            settings.database_url.get_secret_value(),
            space,
            settings.pg_hnsw,
            settings.hnsw_ef_search,
        )
    from app.storage.embedded.store import EmbeddedStore

    return EmbeddedStore(settings.index_dir, space, settings.index_factory, settings.hnsw_ef_search)
