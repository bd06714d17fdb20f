"""The FAISS index under string ids: exact and HNSW indexes behave alike through adds,
replacements and removals."""

from pathlib import Path

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


def test_removing_from_hnsw_skips_the_removed_without_rebuilding_until_they_are_many(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    index = VectorIndex(DIMENSION, "HNSW32")
    vectors = unit_vectors(200)
    index.add([f"v{n}" for n in range(200)], vectors)
    rebuilds: list[int] = []
    rebuild = VectorIndex._rebuild_locked

    def counted(self: VectorIndex) -> None:
        rebuilds.append(len(self))
        rebuild(self)

    monkeypatch.setattr(VectorIndex, "_rebuild_locked", counted)

    index.remove([f"v{n}" for n in range(10)])  # 5 % of the graph: tombstones

    assert rebuilds == []
    assert all(hits[0][0] != f"v{n}" for n, hits in enumerate(index.search(vectors[:10], 1, -1)))
    found = index.search(vectors[:10], 190, -1.0)
    assert all(len(hits) == 190 for hits in found)
    assert not {f"v{n}" for n in range(10)} & {image_id for hits in found for image_id, _ in hits}
    # Written and read, the tombstones stay skipped.
    index.write(tmp_path / "index.faiss")
    loaded = VectorIndex.read(tmp_path / "index.faiss", DIMENSION, "HNSW32")
    assert len(loaded) == 190
    assert not {f"v{n}" for n in range(10)} & {
        image_id for hits in loaded.search(vectors[:10], 190, -1.0) for image_id, _ in hits
    }
    # Past a tenth of the graph, it is rebuilt from the vectors that stay.
    index.remove([f"v{n}" for n in range(10, 25)])
    assert rebuilds == [175]
    assert index.search(vectors[30:31], 1, -1.0)[0][0][0] == "v30"
