"""The Postgres store's similarity search: ``ORDER BY column <#> query LIMIT top_k`` over
the images of the service's vector space, for each query row, on both of an image's rows
(``embedding``, and ``core_embedding`` where its drawing has a core), merged by
``VectorSpace.merged``.

Exact by default (a scan of every vector, as FAISS Flat), or through an HNSW index per
column (approximate, faster on large collections) with PG_HNSW=true.
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import sql

from app.storage.postgres.database import Connection
from app.storage.search_index import MAX_EF_SEARCH
from app.storage.types import Hit, ImageRecord, VectorQuery, VectorSpace

COLUMNS = "id, sha256, size, mtime_ns, original_filename, created_at, label"
SEARCHED_COLUMNS = ("embedding", "core_embedding")


def record_of(row: tuple[Any, ...]) -> ImageRecord:
    return ImageRecord(*row[:7])


def as_numpy(vector: Any) -> NDArray[np.float32]:
    return np.asarray(vector.to_numpy(), dtype=np.float32)


def nearest_first(space: VectorSpace, hnsw: bool, column: str) -> sql.Composed:
    """The search statement of one column: ids and similarities of the space's images,
    nearest first. With HNSW, the index's own expression and predicate: the space is
    written into the statement, as a parameter would not match the partial index once
    psycopg prepares it."""
    searched = sql.Identifier(column)
    order: sql.Composable
    if hnsw:
        cast = sql.SQL("::vector({})").format(sql.Literal(space.dimension))
        order = sql.SQL("{}{} <#> %s{}").format(searched, cast, cast)
    else:
        order = sql.SQL("{} <#> %s").format(searched)
    return sql.SQL(
        "SELECT {}, -({} <#> %s), {} FROM images WHERE space = {} AND {} IS NOT NULL "
        "ORDER BY {} LIMIT %s"
    ).format(sql.SQL(COLUMNS), searched, searched, sql.Literal(space.name), searched, order)


class NearestSearch:
    """The search statements of one vector space, and running them."""

    def __init__(self, space: VectorSpace, hnsw: bool, ef_search: int) -> None:
        self.space = space
        self.ef_search = ef_search
        columns = SEARCHED_COLUMNS if space.core is not None else SEARCHED_COLUMNS[:1]
        self.statements = [nearest_first(space, hnsw, column) for column in columns]

    def search(
        self, connection: Connection, query: VectorQuery, top_k: int, min_similarity: float
    ) -> list[list[Hit]]:
        """One statement per query row and column, in the caller's transaction."""
        rows = self.space.rows(query)
        if top_k < 1:
            return [[] for _ in rows]
        # HNSW returns at most ef_search rows.
        connection.execute(
            "SELECT set_config('hnsw.ef_search', %s, true)",
            (str(min(max(self.ef_search, top_k), MAX_EF_SEARCH)),),
        )
        per_column = [
            [
                [
                    self.space.hit(record_of(row), float(row[7]), as_numpy(row[8]), query, turn)
                    for row in connection.execute(statement, (vector, vector, top_k)).fetchall()
                    if row[7] >= min_similarity
                ]
                for turn, vector in enumerate(rows)
            ]
            for statement in self.statements
        ]
        if len(per_column) == 1:
            return per_column[0]
        return self.space.merged(per_column[0], per_column[1], top_k)
