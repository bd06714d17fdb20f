"""A search's one store call: its candidates come with what verification needs, read by
key for those candidates only, so its cost does not grow with the registry; the Postgres
store answers every query row (turns, cores) in one statement."""

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pgserver.postgres_server import PostgresServer

from app.imaging.shape import TURNS
from app.storage.embedded.store import EmbeddedStore
from app.storage.postgres.store import PostgresStore
from app.storage.store import Store
from app.storage.types import EmbeddingKey, Fetch, VectorQuery, best_per_image
from tests.conftest import new_database
from tests.test_stores import CONCEPT, CORE, CORE_SPACE, SHAPE, collection_entries, unit_rows

MASK = EmbeddingKey("strokes-v2-core-v3", "v4 test", 512)
IMAGES = 200


@pytest.fixture(params=["embedded", "postgres"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of ``IMAGES`` images, each with a core and a stroke mask of its own."""
    store: Store
    if request.param == "embedded":
        store = EmbeddedStore(tmp_path / "index", CORE_SPACE)
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        store = PostgresStore(new_database(postgres), CORE_SPACE)
    entries = collection_entries(IMAGES, seed=11)
    rng = np.random.default_rng(12)
    cores = unit_rows(rng, IMAGES, CORE.dimension)
    for number, (_, vectors) in enumerate(entries):
        vectors[CORE] = cores[number]
        vectors[MASK] = np.full(MASK.dimension, number, np.float32)
    store.save(entries)
    yield store
    store.close()


def turned_query(rng: np.random.Generator) -> VectorQuery:
    """A drawing's query over every turn, and its core's in every turn: 16 rows."""
    shapes = unit_rows(rng, 2 * len(TURNS), SHAPE.dimension)
    return VectorQuery(unit_rows(rng, 1, CONCEPT.dimension)[0], tuple(shapes), 0.3)


def test_a_search_answers_its_first_candidates_with_their_masks_and_no_other_image(
    filled: Store,
) -> None:
    query = turned_query(np.random.default_rng(13))

    rows = filled.search(query, 10, -1.0, Fetch((MASK,), 4))

    ranked = [hit for _, hit in best_per_image(rows)]
    assert len(rows) == 16 and len(ranked) > 4
    for hit in ranked[:4]:
        number = int(re.sub(r"\D", "", hit.record.id))
        assert set(hit.stored) == {MASK}
        np.testing.assert_array_equal(hit.stored[MASK], np.full(MASK.dimension, number))
    assert all(not hit.stored for hit in ranked[4:])
    # Without a fetch, nothing but the hits.
    assert all(not hit.stored for hits in filled.search(query, 10, -1.0) for hit in hits)


def test_the_embedded_store_reads_vectors_by_key_and_never_scans_them(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "index", CORE_SPACE)
    entries = collection_entries(IMAGES, seed=11)
    for number, (_, vectors) in enumerate(entries):
        vectors[MASK] = np.full(MASK.dimension, number, np.float32)
    store.save(entries)
    statements: list[str] = []
    store.catalog._db.set_trace_callback(statements.append)

    store.search(turned_query(np.random.default_rng(14)), 10, -1.0, Fetch((MASK,), 8))
    store.vectors_of([entries[3][0].sha256], (MASK, CONCEPT))

    store.catalog._db.set_trace_callback(None)
    reads = [sql for sql in statements if "FROM embeddings" in sql]
    assert len(reads) >= 2
    with sqlite3.connect(store.catalog.path) as db:
        plans = [str(db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()) for sql in reads]
    store.close()
    # The primary key (bytes, model, preprocessing) finds each row: no scan of a key's
    # vectors, which grows with the collection.
    assert all("SCAN embeddings" not in plan and "SEARCH embeddings" in plan for plan in plans)


@contextmanager
def counted(store: PostgresStore, statements: list[str]) -> Iterator[None]:
    """Every statement the store's connections run, in ``statements``."""
    pooled: Callable[[], Any] = store._connection

    class Counting:
        def __init__(self, connection: Any) -> None:
            self._connection = connection

        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return self._connection.execute(query, *args, **kwargs)

    @contextmanager
    def connection() -> Iterator[Counting]:
        with pooled() as inner:
            yield Counting(inner)

    store._connection = connection  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        store._connection = pooled  # type: ignore[method-assign]


def test_postgres_answers_a_turned_search_with_its_cores_and_masks_in_one_statement(
    postgres: PostgresServer,
) -> None:
    store = PostgresStore(new_database(postgres), CORE_SPACE)
    entries = collection_entries(50, seed=15)
    for number, (_, vectors) in enumerate(entries):
        vectors[CORE] = unit_rows(np.random.default_rng(number), 1, CORE.dimension)[0]
        vectors[MASK] = np.full(MASK.dimension, number, np.float32)
    store.save(entries)
    statements: list[str] = []

    with counted(store, statements):
        rows = store.search(turned_query(np.random.default_rng(16)), 10, -1.0, Fetch((MASK,), 8))
    store.close()

    assert len(statements) == 1
    assert len(rows) == 16 and all(len(hits) == 10 for hits in rows)
    assert sum(bool(hit.stored) for _, hit in best_per_image(rows)) == 8


def test_holding_names_the_bytes_with_every_key_and_reads_no_vector(filled: Store) -> None:
    entries = collection_entries(IMAGES, seed=11)
    sha256s = [record.sha256 for record, _ in entries[:5]] + ["f" * 64]

    held = filled.holding(sha256s, (CONCEPT, SHAPE, MASK))
    with_another = filled.holding(sha256s, (CONCEPT, EmbeddingKey("other", "v4 test", 24)))

    assert held == set(sha256s[:5]) and with_another == set()
    if isinstance(filled, EmbeddedStore):
        statements: list[str] = []
        filled.catalog._db.set_trace_callback(statements.append)
        filled.holding(sha256s, (CONCEPT, MASK))
        filled.catalog._db.set_trace_callback(None)
        with sqlite3.connect(filled.catalog.path) as db:
            plan = str(db.execute(f"EXPLAIN QUERY PLAN {statements[-1]}").fetchall())
        assert "COVERING INDEX" in plan  # the key alone: no vector is read
