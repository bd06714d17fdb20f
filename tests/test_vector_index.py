"""The FAISS index under string ids: exact and HNSW indexes behave alike through adds,
replacements and removals."""

import numpy as np
import pytest

from app.storage.embedded.vector_index import VectorIndex, make_faiss_index

DIMENSION = 16


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSION)).astype(np.float32)
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


@pytest.fixture(params=["Flat", "HNSW32"])
def index(request: pytest.FixtureRequest) -> VectorIndex:
    return VectorIndex(DIMENSION, request.param)


def test_each_vector_finds_itself_first_with_similarity_one(index: VectorIndex) -> None:
    vectors = unit_vectors(50)
    index.add([f"id{number}" for number in range(50)], vectors)

    results = index.search(vectors, top_k=3, min_similarity=-1.0)

    assert [hits[0][0] for hits in results] == [f"id{number}" for number in range(50)]
    assert all(abs(hits[0][1] - 1.0) < 1e-5 for hits in results)
    assert all(len(hits) == 3 for hits in results)


def test_removed_ids_are_never_returned_and_the_rest_keep_their_ids(index: VectorIndex) -> None:
    vectors = unit_vectors(20)
    index.add([f"id{number}" for number in range(20)], vectors)

    assert index.remove(["id3", "id7", "unknown"]) == 2

    assert len(index) == 18 and "id3" not in index
    hits = index.search(vectors, top_k=20, min_similarity=-1.0)
    assert all("id3" not in dict(row) and "id7" not in dict(row) for row in hits)
    assert hits[10][0][0] == "id10"
    assert len(hits[0]) == 18


def test_adding_an_existing_id_replaces_its_vector(index: VectorIndex) -> None:
    first, second = unit_vectors(2, seed=1)
    index.add(["a"], first.reshape(1, -1))

    index.add(["a"], second.reshape(1, -1))

    assert len(index) == 1
    [[(image_id, similarity)]] = index.search(second, 5, -1.0)
    assert image_id == "a" and similarity == pytest.approx(1.0, abs=1e-5)


def test_min_similarity_and_top_k_limit_the_results(index: VectorIndex) -> None:
    vectors = unit_vectors(10, seed=2)
    index.add([str(number) for number in range(10)], vectors)

    everything = index.search(vectors[0], 10, -1.0)[0]
    close = index.search(vectors[0], 10, 0.5)[0]

    assert [score for _, score in everything] == sorted(
        (score for _, score in everything), reverse=True
    )
    assert all(score >= 0.5 for _, score in close) and close[0][0] == "0"
    assert index.search(vectors[0], 0, -1.0) == [[]]


def test_clear_empties_the_index(index: VectorIndex) -> None:
    index.add(["a", "b"], unit_vectors(2))

    index.clear()

    assert len(index) == 0 and index.search(unit_vectors(1), 5, -1.0) == [[]]


@pytest.mark.parametrize("factory", ["IVF16,Flat", "PQ4", "NoSuchIndex"])
def test_factories_that_need_training_or_do_not_exist_are_refused(factory: str) -> None:
    with pytest.raises(ValueError, match=factory.split(",")[0]):
        make_faiss_index(DIMENSION, factory)
