"""The two stores behind one interface: the same records and vectors give the same
search answers, to 1e-5, in every ranking mode and over turns; the Postgres store's
schema, HNSW index and unreachable database."""

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from pgserver.postgres_server import PostgresServer
from pgvector.psycopg import register_vector
from psycopg import sql

from app.config import load_settings
from app.errors import ConfigError, StoreUnavailableError
from app.imaging.shape import TURNS
from app.ranking import SearchMode, SearchQuery, image_query
from app.storage.embedded.catalog import CATALOG_FILE
from app.storage.embedded.store import EmbeddedStore
from app.storage.factory import open_store
from app.storage.postgres.nearest import parameters
from app.storage.postgres.schema import SCHEMA_VERSION
from app.storage.postgres.store import PostgresStore
from app.storage.store import Store
from app.storage.types import (
    NO_FETCH,
    EmbeddingKey,
    ImageRecord,
    VectorQuery,
    Vectors,
    VectorSpace,
)
from tests.conftest import drawing, encode, new_database

CONCEPT = EmbeddingKey("tiny-clip", "v4 test", 24)
SHAPE = EmbeddingKey("shape-v1", "v4 test", 432)
SPACE = VectorSpace(CONCEPT, SHAPE)
CORE = EmbeddingKey("core-v2-shape-v1", "v4 test", 432)
CORE_SPACE = VectorSpace(CONCEPT, SHAPE, CORE)
IMAGES = 300


def unit_rows(rng: np.random.Generator, count: int, dimension: int) -> NDArray[np.float32]:
    rows = rng.standard_normal((count, dimension)).astype(np.float32)
    unit: NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def collection_entries(count: int, seed: int = 0) -> list[tuple[ImageRecord, Vectors]]:
    rng = np.random.default_rng(seed)
    concepts, shapes = unit_rows(rng, count, CONCEPT.dimension), unit_rows(rng, count, 432)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (
            ImageRecord(f"img{n}.png", f"{n:064x}", 100 + n, n, f"name {n}.png", created),
            {CONCEPT: concepts[n], SHAPE: shapes[n]},
        )
        for n in range(count)
    ]


def row_query(row: NDArray[np.float32]) -> VectorQuery:
    """The query whose one weighted row is ``row``, whatever its halves are."""
    concept, shape = np.split(2 * row, [CONCEPT.dimension])
    return VectorQuery(concept, (shape,), 0.5)


def search_rows(store: Store, rows: NDArray[np.float32], top_k: int) -> list[set[str]]:
    """The ids each row finds, one search per row."""
    return [{hit.record.id for hit in store.search(row_query(row), top_k, -1.0)[0]} for row in rows]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Store]:
    store = EmbeddedStore(tmp_path / "index", SPACE)
    yield store
    store.close()


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    return new_database(postgres)


@pytest.fixture
def postgres_store(database: str) -> Iterator[Store]:
    store = PostgresStore(database, SPACE)
    yield store
    store.close()


@pytest.mark.parametrize("mode", list(SearchMode))
@pytest.mark.parametrize("turns", [False, True])
def test_both_stores_give_the_same_ids_and_scores_for_the_same_vectors(
    embedded: Store, postgres_store: Store, mode: SearchMode, turns: bool
) -> None:
    entries = collection_entries(IMAGES)
    for store in (embedded, postgres_store):
        store.save(entries)
    rng = np.random.default_rng(1)
    query = SearchQuery(10, -1.0, mode, turns, concept_weight=0.3)
    vectors, _ = image_query(
        unit_rows(rng, 1, CONCEPT.dimension)[0], unit_rows(rng, 1, 432)[0], query
    )
    rows = SPACE.rows(vectors)

    expected = embedded.search(vectors, 10, -1.0)
    answered = postgres_store.search(vectors, 10, -1.0)

    assert len(answered) == len(TURNS if turns else [0])
    for faiss_hits, postgres_hits in zip(expected, answered, strict=True):
        assert [hit.record for hit in postgres_hits] == [hit.record for hit in faiss_hits]
        for field in ("similarity", "concept_similarity", "shape_similarity"):
            np.testing.assert_allclose(
                [getattr(hit, field) for hit in postgres_hits],
                [getattr(hit, field) for hit in faiss_hits],
                atol=1e-5,
            )
    # And both equal the scores computed here from the vectors.
    joined = np.stack([SPACE.join(v) for _, v in entries])
    best = np.argsort(-(joined @ rows[0]))[:10]
    assert [hit.record.id for hit in answered[0]] == [f"img{n}.png" for n in best]
    first = entries[best[0]][1]
    assert answered[0][0].concept_similarity == pytest.approx(
        float(first[CONCEPT] @ vectors.concept), abs=1e-5
    )
    assert answered[0][0].shape_similarity == pytest.approx(
        float(first[SHAPE] @ vectors.shapes[0]), abs=1e-5
    )


def test_an_image_with_a_core_is_found_by_its_cores_row_once_on_both_stores_until_deleted(
    tmp_path: Path, database: str
) -> None:
    entries = collection_entries(40, seed=5)
    rng = np.random.default_rng(6)
    cores = unit_rows(rng, 40, 432)
    for number, (_, vectors) in enumerate(entries):  # every other image has a core
        vectors[CORE] = cores[number] if number % 2 else np.zeros(432, np.float32)
    embedded = EmbeddedStore(tmp_path / "index", CORE_SPACE)
    postgres = PostgresStore(database, CORE_SPACE)
    # A query that is image 7's core: image 7 is found first, by that row, and once.
    query = VectorQuery(entries[7][1][CONCEPT], (cores[7],), 0.0)
    try:
        for store in (embedded, postgres):
            store.save(entries)
            hits = store.search(query, 5, -1.0)[0]
            assert hits[0].record.id == "img7.png"
            assert hits[0].shape_similarity == pytest.approx(1.0, abs=1e-5)
            assert len({hit.record.id for hit in hits}) == len(hits) == 5
            # Image 8's zero core is never a row: its query finds it by its shape alone.
            other = VectorQuery(entries[8][1][CONCEPT], (entries[8][1][SHAPE],), 0.0)
            assert store.search(other, 1, -1.0)[0][0].record.id == "img8.png"

            store.delete(["img7.png"])
            assert "img7.png" not in {hit.record.id for hit in store.search(query, 40, -1.0)[0]}
        # Another process (a reopened store) finds the core's row from what was stored.
        reopened = EmbeddedStore(tmp_path / "index", CORE_SPACE)
        entries_9 = VectorQuery(entries[9][1][CONCEPT], (cores[9],), 0.0)
        assert reopened.search(entries_9, 1, -1.0)[0][0].record.id == "img9.png"
        reopened.close()
    finally:
        embedded.close()
        postgres.close()


def test_both_stores_keep_records_pages_and_vectors_alike(
    embedded: Store, postgres_store: Store
) -> None:
    entries = collection_entries(30)
    for store in (embedded, postgres_store):
        store.save(entries)
        assert store.delete(["img3.png", "img4.png", "missing.png"]) == 2

    for store in (embedded, postgres_store):
        assert store.searchable_count() == 28
        assert store.get("img5.png") == entries[5][0]
        assert store.find_sha256(entries[7][0].sha256) == entries[7][0]
        records, total, page = store.newest_first(9, 10)
        assert (total, page, len(records)) == (28, 3, 8)
        stored = store.vectors(CONCEPT, [entries[6][0].sha256, entries[3][0].sha256])
        assert list(stored) == [entries[6][0].sha256]
        np.testing.assert_array_equal(stored[entries[6][0].sha256], entries[6][1][CONCEPT])


def test_an_upload_of_bytes_already_held_returns_the_holder_and_writes_nothing(
    postgres_store: Store,
) -> None:
    record, vectors = collection_entries(1)[0]
    assert postgres_store.save_upload(record, vectors) is None

    copy = ImageRecord("other.png", record.sha256, 1, 1, None, record.created_at)
    assert postgres_store.save_upload(copy, vectors) == record
    assert postgres_store.searchable_ids() == {record.id}


def test_vectors_of_another_model_are_never_searched(database: str) -> None:
    old_space = VectorSpace(EmbeddingKey("old-model", "v4 test", 24), SHAPE)
    old = PostgresStore(database, old_space)
    old.save(
        [(r, {old_space.concept: v[CONCEPT], SHAPE: v[SHAPE]}) for r, v in collection_entries(5)]
    )
    old.close()
    current = PostgresStore(database, SPACE)

    assert current.searchable_count() == 0
    assert current.search(row_query(np.ones(SPACE.dimension, np.float32)), 5, -1.0) == [[]]
    assert len(current.records()) == 5  # kept, for the reconciliation to re-embed
    current.close()


def test_hnsw_search_finds_most_of_the_exact_neighbours(database: str) -> None:
    entries = collection_entries(2000, seed=3)
    store = PostgresStore(database, CORE_SPACE, hnsw=True)
    store.save(entries)
    exact = PostgresStore(database, SPACE)
    queries = np.stack(
        [
            SPACE.join(v) + 0.5 * unit_rows(np.random.default_rng(n), 1, SPACE.dimension)[0]
            for n, (_, v) in enumerate(entries[:50])
        ]
    ).astype(np.float32)

    approximate = search_rows(store, queries, 10)
    truth = search_rows(exact, queries, 10)

    found = sum(len(a & t) for a, t in zip(approximate, truth, strict=True))
    assert found / (10 * len(queries)) >= 0.9
    # The store's query uses the index even as a prepared statement's generic plan.
    with psycopg.connect(database) as connection:
        register_vector(connection)
        connection.execute("SET plan_cache_mode = force_generic_plan")
        plan = connection.execute(
            sql.SQL("EXPLAIN ") + store._nearest.statement(0),
            parameters(queries[:2], 10, -1.0, NO_FETCH),
        ).fetchall()
    # One index per searched column: the images' rows and their cores' rows.
    assert "images_hnsw_" in str(plan) and "images_hnsw_core_embedding_" in str(plan)
    store.close()
    exact.close()


def test_the_schema_is_migrated_once_and_a_newer_schema_is_refused(database: str) -> None:
    PostgresStore(database, SPACE).close()
    PostgresStore(database, SPACE).close()  # nothing to migrate the second time
    with psycopg.connect(database, autocommit=True) as connection:
        versions = connection.execute("SELECT version FROM schema_version").fetchall()
        connection.execute(
            "INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,)
        )

    assert versions == [(version,) for version in range(1, SCHEMA_VERSION + 1)]
    with pytest.raises(ConfigError, match="newer than this service"):
        PostgresStore(database, SPACE)


def test_an_unreachable_database_is_reported_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://registry:s3cret@/registry?host={tmp_path}&port=1"

    with pytest.raises(StoreUnavailableError) as raised:
        PostgresStore(url, SPACE)

    assert "s3cret" not in raised.value.message
    assert "registry" in raised.value.message


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_a_search_while_the_database_is_gone_answers_503_with_retry_after(
    make_client: Callable[..., TestClient],
    store_settings: dict[str, str],
    postgres: PostgresServer,
) -> None:
    client = make_client()
    name = psycopg.conninfo.conninfo_to_dict(store_settings["DATABASE_URL"])["dbname"]
    with psycopg.connect(postgres.get_uri(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())

    response = client.post(
        "/search-similar-images/", files={"file": ("q.png", encode(drawing(), "PNG"))}
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "cannot be reached" in response.json()["detail"]


@pytest.mark.parametrize("kind", ["embedded", "postgres"])
def test_a_larger_hnsw_ef_search_finds_more_of_the_exact_neighbours(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    entries = collection_entries(3000, seed=5)
    stored = np.stack([SPACE.join(v) for _, v in entries])
    # Queries unlike any stored image: random vectors' neighbours are HNSW's hardest case.
    queries = unit_rows(np.random.default_rng(9), 40, SPACE.dimension)
    truth = [{entries[n][0].id for n in np.argsort(-stored @ query)[:10]} for query in queries]
    chosen: dict[str, object] = {"index_dir": tmp_path / "index"}
    if kind == "postgres":
        chosen |= {"store": "postgres", "database_url": request.getfixturevalue("database")}
    recalls = {}
    for ef_search in (10, 400):
        settings = load_settings(
            **chosen, index_factory="HNSW32", pg_hnsw=True, hnsw_ef_search=ef_search
        )
        store = open_store(settings, SPACE)
        if not store.searchable_count():
            store.save(entries)
        found = search_rows(store, queries, 10)
        store.close()
        recalls[ef_search] = sum(
            len(hits & expected) for hits, expected in zip(found, truth, strict=True)
        ) / (10 * len(queries))

    assert recalls[400] >= 0.95
    assert recalls[10] <= recalls[400] - 0.1


def test_the_first_collection_id_a_store_is_given_is_kept_unless_replaced(
    embedded: Store, database: str
) -> None:
    replicas = [PostgresStore(database, SPACE), PostgresStore(database, SPACE)]
    try:
        for first, second in [(embedded, embedded), tuple(replicas)]:
            assert first.adopt_collection_id("first") == "first"
            assert second.adopt_collection_id("second") == "first"
            assert second.adopt_collection_id("third", replace=True) == "third"
            assert first.collection_id() == "third"
    finally:
        for replica in replicas:
            replica.close()


def test_both_stores_keep_labels_and_filter_by_label_file_name_or_id_alike(
    embedded: Store, postgres_store: Store
) -> None:
    entries = collection_entries(12)
    labelled = replace(entries[2][0], label="Reg. 1043 - José PEÑA")
    entries[2] = (labelled, entries[2][1])
    for store in (embedded, postgres_store):
        store.save(entries)
        assert store.set_label("img5.png", "Estancia La Ñata") is not None
        assert store.set_label("missing.png", "x") is None
        store.save([entries[5]])  # a reconciliation saving the file again keeps its label

    for store in (embedded, postgres_store):
        assert store.get("img2.png") == labelled
        assert store.get("img5.png").label == "Estancia La Ñata"  # type: ignore[union-attr]
        assert [r.id for r in store.newest_first(1, 10, "pena")[0]] == ["img2.png"]
        assert [r.id for r in store.newest_first(1, 10, "la ñata")[0]] == ["img5.png"]
        assert [r.id for r in store.newest_first(1, 10, "LA NATA")[0]] == ["img5.png"]
        assert store.newest_first(1, 10, "name 1")[1] == 3  # name 1, name 10, name 11
        assert store.newest_first(1, 10, "img7.png")[0][0].id == "img7.png"
        assert store.newest_first(1, 10, "nothing like it") == ([], 0, 1)


def test_an_embedded_catalog_of_an_earlier_version_gains_labels_and_its_filter(
    tmp_path: Path,
) -> None:
    index = tmp_path / "index"
    index.mkdir()
    with sqlite3.connect(index / CATALOG_FILE) as old:
        old.executescript(
            "CREATE TABLE images (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL "
            "UNIQUE, sha256 TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, "
            "original_filename TEXT, created_at TEXT NOT NULL);"
            "INSERT INTO images (id, sha256, size, mtime_ns, original_filename, created_at) "
            "VALUES ('a.png', 'ab', 1, 1, 'Marca Núñez.png', '2026-01-01T00:00:00+00:00');"
        )

    store = EmbeddedStore(index, SPACE)
    try:
        assert store.get("a.png").label is None  # type: ignore[union-attr]
        assert [r.id for r in store.newest_first(1, 10, "nunez")[0]] == ["a.png"]
        assert store.set_label("a.png", "Reg. 7").label == "Reg. 7"  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_postgres_database_of_schema_2_gains_labels_and_its_filter(database: str) -> None:
    PostgresStore(database, SPACE).close()
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            "ALTER TABLE images DROP COLUMN label, DROP COLUMN search_text, "
            "DROP COLUMN core_embedding"
        )
        connection.execute("DELETE FROM schema_version WHERE version >= 3")
        connection.execute(
            "INSERT INTO images (id, sha256, size, mtime_ns, original_filename, created_at) "
            "VALUES ('a.png', 'ab', 1, 1, 'Marca Núñez.png', now())"
        )

    store = PostgresStore(database, SPACE)
    try:
        assert store.get("a.png").label is None  # type: ignore[union-attr]
        assert [r.id for r in store.newest_first(1, 10, "nunez")[0]] == ["a.png"]
    finally:
        store.close()
