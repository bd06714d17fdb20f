"""The Postgres store's similarity search, one statement per search: every query row
(``unnest`` of the rows) finds its nearest images by ``ORDER BY column <#> row LIMIT
top_k`` (a lateral join) on both of an image's rows (``embedding``, and
``core_embedding`` where its drawing has a core); the first images by their best row
come with the vectors a ``Fetch`` asks for, read by key from ``embeddings``. The rows
found are merged per query row by ``VectorSpace.merged``.

Exact by default (a scan of every vector, as FAISS Flat), or through an HNSW index per
column (approximate, faster on large collections) with PG_HNSW=true.
"""

from collections import defaultdict
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pgvector import Vector
from psycopg import sql

from app.storage.postgres.database import Connection
from app.storage.search_index import MAX_EF_SEARCH
from app.storage.types import (
    Fetch,
    Hit,
    ImageRecord,
    VectorQuery,
    Vectors,
    VectorSpace,
    with_fetched,
)

COLUMNS = "id, sha256, size, mtime_ns, original_filename, created_at, label"
SEARCHED_COLUMNS = ("embedding", "core_embedding")
# The columns of a found row before its record's: which searched column, which query row.
_FOUND = 2
_RECORD = len(COLUMNS.split(", "))


def record_of(row: tuple[Any, ...]) -> ImageRecord:
    return ImageRecord(*row[:7])


def as_numpy(vector: Any) -> NDArray[np.float32]:
    return np.asarray(vector.to_numpy(), dtype=np.float32)


def nearest_rows(space: VectorSpace, hnsw: bool, part: int, column: str) -> sql.Composed:
    """Every query row's nearest images by one column: the column's number, the row's,
    the record, the similarity and the stored row. With HNSW, the index's own expression
    and predicate: the space is written into the statement, as a parameter would not
    match the partial index once psycopg prepares it."""
    searched = sql.Identifier(column)
    order: sql.Composable
    if hnsw:
        cast = sql.SQL("::vector({})").format(sql.Literal(space.dimension))
        order = sql.SQL("{}{} <#> q.v{}").format(searched, cast, cast)
    else:
        order = sql.SQL("{} <#> q.v").format(searched)
    return sql.SQL(
        "SELECT {} AS part, q.n, i.* FROM q CROSS JOIN LATERAL ("
        "SELECT {}, -({} <#> q.v) AS similarity, {} AS joined FROM images "
        "WHERE space = {} AND {} IS NOT NULL ORDER BY {} LIMIT %(top_k)s) i"
    ).format(
        sql.Literal(part),
        sql.SQL(COLUMNS),
        searched,
        searched,
        sql.Literal(space.name),
        searched,
        order,
    )


def search_statement(space: VectorSpace, hnsw: bool, fetched_keys: int) -> sql.Composed:
    """The whole search: the rows found at least ``min_similarity`` similar, ordered by
    column, query row and similarity; on each image's best row, among the first
    ``fetched`` images by it, its stored vectors under the ``keys`` (one column each)."""
    columns = SEARCHED_COLUMNS if space.core is not None else SEARCHED_COLUMNS[:1]
    found = sql.SQL(" UNION ALL ").join(
        nearest_rows(space, hnsw, part, column) for part, column in enumerate(columns)
    )
    fetched = sql.SQL("").join(
        sql.SQL(
            ", (SELECT e.vector FROM embeddings e WHERE e.sha256 = k.sha256 "
            "AND k.first AND k.sha256 IN (SELECT sha256 FROM head) "
            "AND e.model = (%(models)s::text[])[{n}] "
            "AND e.preprocessing = (%(preprocessings)s::text[])[{n}])"
        ).format(n=sql.Literal(n + 1))
        for n in range(fetched_keys)
    )
    return sql.SQL(
        "WITH q AS (SELECT v, n FROM unnest(%(rows)s::vector[]) WITH ORDINALITY AS r(v, n)), "
        "found AS ({found}), "
        "kept AS (SELECT *, row_number() OVER (PARTITION BY id ORDER BY similarity DESC, n) = 1 "
        "AS first FROM found WHERE similarity >= %(min_similarity)s), "
        "head AS (SELECT sha256 FROM kept WHERE first "
        "ORDER BY similarity DESC, n LIMIT %(fetched)s) "
        "SELECT k.part, k.n, {columns}, k.similarity, k.joined{fetched} FROM kept k "
        "ORDER BY k.part, k.n, k.similarity DESC"
    ).format(
        found=found,
        columns=sql.SQL(", ").join(sql.SQL("k.") + sql.SQL(name) for name in COLUMNS.split(", ")),
        fetched=fetched,
    )


def parameters(
    rows: NDArray[np.float32], top_k: int, min_similarity: float, fetch: Fetch
) -> dict[str, object]:
    """The search statement's parameters."""
    keys = fetch.keys if fetch.images else ()
    return {
        "rows": [Vector(row) for row in rows],
        "top_k": top_k,
        "min_similarity": min_similarity,
        "fetched": fetch.images,
        "models": [key.model for key in keys],
        "preprocessings": [key.preprocessing for key in keys],
    }


class NearestSearch:
    """The search statement of one vector space, and running it."""

    def __init__(self, space: VectorSpace, hnsw: bool, ef_search: int) -> None:
        self.space = space
        self.hnsw = hnsw
        self.ef_search = ef_search
        self._statements: dict[int, sql.Composed] = {}

    def statement(self, fetched_keys: int) -> sql.Composed:
        """The search statement fetching ``fetched_keys`` keys' vectors (made once)."""
        statement = self._statements.get(fetched_keys)
        if statement is None:
            statement = search_statement(self.space, self.hnsw, fetched_keys)
            self._statements[fetched_keys] = statement
        return statement

    def search(
        self,
        connection: Connection,
        query: VectorQuery,
        top_k: int,
        min_similarity: float,
        fetch: Fetch,
    ) -> list[list[Hit]]:
        """One statement for every query row and column; a second only when ``top_k``
        exceeds HNSW_EF_SEARCH (HNSW returns at most ef_search rows)."""
        rows = self.space.rows(query)
        if top_k < 1:
            return [[] for _ in rows]
        keys = fetch.keys if fetch.images else ()
        if self.hnsw and top_k > self.ef_search:
            connection.execute(
                "SELECT set_config('hnsw.ef_search', %s, false)", (str(min(top_k, MAX_EF_SEARCH)),)
            )
        found = connection.execute(
            self.statement(len(keys)), parameters(rows, top_k, min_similarity, fetch)
        ).fetchall()
        per_part: list[list[list[Hit]]] = [[[] for _ in rows] for _ in SEARCHED_COLUMNS]
        fetched: dict[str, Vectors] = defaultdict(dict)
        for row in found:
            part, number, record = row[0], row[1] - 1, record_of(row[_FOUND:])
            similarity, joined = float(row[_FOUND + _RECORD]), as_numpy(row[_FOUND + _RECORD + 1])
            for key, vector in zip(keys, row[_FOUND + _RECORD + 2 :], strict=True):
                if vector is not None and len(vector.to_numpy()) == key.dimension:
                    fetched[record.sha256][key] = as_numpy(vector)
            per_part[part][number].append(self.space.hit(record, similarity, joined, query, number))
        merged = self.space.merged(per_part[0], per_part[1], top_k)
        return with_fetched(merged, fetched) if fetched else merged
