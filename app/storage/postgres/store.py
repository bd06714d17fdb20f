"""The Postgres store (STORE=postgres): records, vectors and search in PostgreSQL with
the pgvector extension, shared by every replica of the service.

Search runs in the database (``app.storage.postgres.nearest``). Nothing is kept in
memory between requests, so an acknowledged change by any replica is seen by the next
search on every other.

Connections come from ``app.storage.postgres.database``'s pool.
"""

import logging
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from app.storage.postgres.database import Connection, Database, direct_connection
from app.storage.postgres.nearest import (
    COLUMNS,
    SEARCHED_COLUMNS,
    NearestSearch,
    as_numpy,
    record_of,
)
from app.storage.postgres.schema import RECONCILE_LOCK, create_hnsw_index, migrate
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
    folded,
)

logger = logging.getLogger(__name__)


# The embeddings of some bytes under some keys, through the primary key.
_KEYED = (
    "sha256 = ANY(%s) AND (model, preprocessing) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
)


def _keyed(sha256s: Iterable[str], names: list[tuple[str, str]]) -> tuple[object, ...]:
    """``_KEYED``'s parameters: the bytes, and the keys' models and preprocessings."""
    return (
        list(set(sha256s)),
        [model for model, _ in names],
        [preprocessing for _, preprocessing in names],
    )


def _upload_lock(sha256: str) -> int:
    """An advisory lock key per bytes: identical uploads take turns, others do not wait."""
    return int(sha256[:15], 16)


class PostgresStore(Store):
    """Records, vectors and search in one PostgreSQL database with pgvector."""

    def __init__(
        self, url: str, space: VectorSpace, hnsw: bool = False, ef_search: int = HNSW_EF_SEARCH
    ) -> None:
        self.space = space
        self._nearest = NearestSearch(space, hnsw, ef_search)
        with direct_connection(url) as connection:
            migrate(connection)
            if hnsw:
                for column in SEARCHED_COLUMNS:
                    create_hnsw_index(connection, space.name, space.dimension, column)
        # HNSW explores ef_search candidates per query (a larger top_k asks for more).
        self._database = Database(url, {"hnsw.ef_search": str(ef_search)} if hnsw else None)
        self.location = self._database.location
        self._connection = self._database.connection

    def close(self) -> None:
        self._database.close()

    def checkpoint(self) -> None:
        """Nothing to save: the database holds the search index."""

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (RECONCILE_LOCK,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (RECONCILE_LOCK,))

    def collection_id(self) -> str | None:
        with self._connection() as connection:
            row = connection.execute("SELECT id FROM collection").fetchone()
        return str(row[0]) if row else None

    def adopt_collection_id(self, candidate: str, replace: bool = False) -> str:
        conflict = "DO UPDATE SET id = excluded.id" if replace else "DO NOTHING"
        with self._connection() as connection:
            connection.execute(
                f"INSERT INTO collection VALUES (1, %s) ON CONFLICT (only_row) {conflict}",
                (candidate,),
            )
            row = connection.execute("SELECT id FROM collection").fetchone()
        assert row is not None  # just written, or written before
        return str(row[0])

    # Records

    def records(self) -> dict[str, ImageRecord]:
        with self._connection() as connection:
            rows = connection.execute(f"SELECT {COLUMNS} FROM images").fetchall()
        return {row[0]: record_of(row) for row in rows}

    def get(self, image_id: str) -> ImageRecord | None:
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {COLUMNS} FROM images WHERE id = %s", (image_id,)
            ).fetchone()
        return record_of(row) if row else None

    def find_sha256(self, sha256: str) -> ImageRecord | None:
        with self._connection() as connection:
            return self._find_sha256(connection, sha256)

    @staticmethod
    def _find_sha256(connection: Connection, sha256: str) -> ImageRecord | None:
        row = connection.execute(
            f"SELECT {COLUMNS} FROM images WHERE sha256 = %s ORDER BY seq LIMIT 1", (sha256,)
        ).fetchone()
        return record_of(row) if row else None

    def newest_first(
        self, page: int, page_size: int, text: str | None = None
    ) -> tuple[list[ImageRecord], int, int]:
        matching = "strpos(search_text, %(text)s) > 0" if text else "true"
        values = {"text": folded(text or ""), "limit": page_size}
        with self._connection() as connection, connection.transaction():
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = connection.execute(
                f"SELECT count(*) FROM images WHERE {matching}", values
            ).fetchone()
            total = int(row[0]) if row else 0
            page = max(1, min(page, math.ceil(total / page_size)))
            rows = connection.execute(
                f"SELECT {COLUMNS} FROM images WHERE {matching} "
                "ORDER BY created_at DESC, seq DESC LIMIT %(limit)s OFFSET %(offset)s",
                {**values, "offset": (page - 1) * page_size},
            ).fetchall()
        return [record_of(row) for row in rows], total, page

    def set_label(self, image_id: str, label: str | None) -> ImageRecord | None:
        with self._connection() as connection, connection.transaction():
            row = connection.execute(
                f"SELECT {COLUMNS} FROM images WHERE id = %s FOR UPDATE", (image_id,)
            ).fetchone()
            if row is None:
                return None
            record = replace(record_of(row), label=label)
            connection.execute(
                "UPDATE images SET label = %s, search_text = %s WHERE id = %s",
                (label, record.search_text, image_id),
            )
        return record

    def holding(self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]) -> set[str]:
        names = sorted({(key.model, key.preprocessing) for key in keys})
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT sha256 FROM embeddings WHERE {_KEYED} "
                "GROUP BY sha256 HAVING count(*) = %s",
                (*_keyed(sha256s, names), len(names)),
            ).fetchall()
        return {row[0] for row in rows}

    def vectors_of(
        self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]
    ) -> dict[str, Vectors]:
        by_name = {(key.model, key.preprocessing): key for key in keys}
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT sha256, model, preprocessing, vector FROM embeddings WHERE {_KEYED}",
                _keyed(sha256s, list(by_name)),
            ).fetchall()
        found: dict[str, Vectors] = {}
        for sha256, model, preprocessing, stored in rows:
            key, vector = by_name[(model, preprocessing)], as_numpy(stored)
            if len(vector) == key.dimension:
                found.setdefault(sha256, {})[key] = vector
        return found

    # Writes

    def save(self, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        with self._connection() as connection, connection.transaction():
            self._save(connection, entries)

    def save_upload(self, record: ImageRecord, vectors: Vectors) -> ImageRecord | None:
        with self._connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_upload_lock(record.sha256),))
            holder = self._find_sha256(connection, record.sha256)
            if holder is None:
                self._save(connection, [(record, vectors)])
        return holder

    def _save(self, connection: Connection, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO images ({COLUMNS}, search_text, space, embedding, core_embedding) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET sha256 = excluded.sha256, "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, space = excluded.space, "
                "embedding = excluded.embedding, core_embedding = excluded.core_embedding",
                [
                    (
                        record.id,
                        record.sha256,
                        record.size,
                        record.mtime_ns,
                        record.original_filename,
                        record.created_at,
                        record.label,
                        record.search_text,
                        *(
                            (
                                self.space.name,
                                self.space.join(vectors),
                                self.space.join_core(vectors),
                            )
                            if self.space.holds(vectors)
                            else (None, None, None)
                        ),
                    )
                    for record, vectors in entries
                ],
            )
            cursor.executemany(
                "INSERT INTO embeddings VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (sha256, model, preprocessing) DO UPDATE SET vector = excluded.vector",
                [
                    (record.sha256, key.model, key.preprocessing, np.asarray(vector, np.float32))
                    for record, vectors in entries
                    for key, vector in vectors.items()
                ],
            )

    def delete(self, ids: list[str]) -> int:
        with self._connection() as connection, connection.transaction():
            rows = connection.execute(
                "DELETE FROM images WHERE id = ANY(%s) RETURNING sha256", (ids,)
            ).fetchall()
            connection.execute(
                "DELETE FROM embeddings e WHERE e.sha256 = ANY(%s) "
                "AND NOT EXISTS (SELECT 1 FROM images i WHERE i.sha256 = e.sha256)",
                ([row[0] for row in rows],),
            )
        return len(rows)

    def delete_all(self) -> None:
        with self._connection() as connection, connection.transaction():
            connection.execute("DELETE FROM images")
            connection.execute("DELETE FROM embeddings")

    # Search

    def search(
        self, query: VectorQuery, top_k: int, min_similarity: float, fetch: Fetch = NO_FETCH
    ) -> list[list[Hit]]:
        with self._connection() as connection:
            return self._nearest.search(connection, query, top_k, min_similarity, fetch)

    def searchable_ids(self) -> set[str]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT id FROM images WHERE space = %s", (self.space.name,)
            ).fetchall()
        return {row[0] for row in rows}

    def searchable_count(self) -> int:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT count(*) FROM images WHERE space = %s", (self.space.name,)
            ).fetchone()
        return int(row[0]) if row else 0
