"""The embedded store's index is saved beside the catalog and loaded at start, not built
again; a process killed between a write's steps, or while saving, leaves a start that
answers exactly the catalog's images: no deleted image, no acknowledged one missing."""

import logging
import sys
import textwrap
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.storage.embedded import store as store_module
from app.storage.embedded.saved_index import SAVED_FOLDER
from app.storage.embedded.store import EmbeddedStore
from app.storage.embedded.vector_index import VectorIndex
from app.storage.types import VectorQuery
from tests.servers import run_command
from tests.test_stores import CONCEPT, CORE, CORE_SPACE, SHAPE, collection_entries

IMAGES = 300
ROOT = Path(__file__).resolve().parent.parent


def query_of(number: int, seed: int = 21) -> VectorQuery:
    """The query that is image ``number`` of ``collection_entries(IMAGES, seed)``."""
    vectors = collection_entries(IMAGES, seed)[number][1]
    return VectorQuery(vectors[CONCEPT], (vectors[SHAPE],), 0.5)


def entries_with_cores(seed: int = 21) -> list:  # type: ignore[type-arg]
    entries = collection_entries(IMAGES, seed)
    for number, (_, vectors) in enumerate(entries):
        vectors[CORE] = vectors[SHAPE][::-1].copy() if number % 3 == 0 else np.zeros(432)
    return entries


@pytest.mark.parametrize("factory", ["Flat", "HNSW32"])
def test_a_restart_loads_the_saved_index_and_builds_nothing(
    tmp_path: Path, factory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EmbeddedStore(tmp_path / "index", CORE_SPACE, factory)
    store.save(entries_with_cores())
    before = [store.search(query_of(n), 5, -1.0) for n in (0, 7, 150)]
    store.close()
    added: list[int] = []
    original_add = VectorIndex.add

    def counting_add(index: VectorIndex, ids: list[str], vectors: np.ndarray) -> None:
        added.append(len(ids))
        original_add(index, ids, vectors)

    monkeypatch.setattr(VectorIndex, "add", counting_add)

    reopened = EmbeddedStore(tmp_path / "index", CORE_SPACE, factory)

    assert added == []  # loaded, not one vector indexed again
    assert reopened.searchable_count() == IMAGES
    assert [reopened.search(query_of(n), 5, -1.0) for n in (0, 7, 150)] == before
    reopened.close()


def test_a_saved_index_of_another_factory_is_not_loaded(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "index", CORE_SPACE, "Flat")
    store.save(entries_with_cores())
    store.close()

    reopened = EmbeddedStore(tmp_path / "index", CORE_SPACE, "HNSW32")

    inner = getattr(faiss.downcast_index(reopened.index._index), "index", None)
    assert "HNSW" in type(faiss.downcast_index(inner)).__name__
    assert reopened.search(query_of(4), 1, -1.0)[0][0].record.id == "img4.png"
    reopened.close()


# A child process: opens the store (saving its index), deletes image 5 and adds image
# 299, then dies by SIGKILL where FAULT says, before a clean close could save again.
CHILD = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from pathlib import Path
    from app.storage.embedded.catalog import Catalog
    from app.storage.embedded.store import EmbeddedStore
    from tests.test_saved_index import entries_with_cores
    from tests.test_stores import CORE_SPACE

    fault, index_dir = sys.argv[1], Path(sys.argv[2])
    die = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    entries = entries_with_cores()
    store = EmbeddedStore(index_dir, CORE_SPACE, sys.argv[3])
    store.delete(["img5.png"])
    store.save(entries[299:])
    if fault == "before_naming":
        Catalog.name_saved_index = die
    if fault == "before_cleaning":
        shutil.rmtree = die
    if fault != "after_writes":
        store.checkpoint()
    die()
    """
)


@pytest.mark.parametrize("factory", ["Flat", "HNSW32"])
@pytest.mark.parametrize("fault", ["after_writes", "before_naming", "before_cleaning"])
def test_a_process_killed_between_a_writes_steps_leaves_an_index_in_step_with_the_catalog(
    tmp_path: Path, fault: str, factory: str
) -> None:
    index_dir = tmp_path / "index"
    store = EmbeddedStore(index_dir, CORE_SPACE, factory)
    store.save(entries_with_cores()[:299])
    store.close()

    child = run_command([sys.executable, "-c", CHILD, fault, str(index_dir), factory], cwd=ROOT)
    assert child.returncode == -9, child.stderr

    reopened = EmbeddedStore(index_dir, CORE_SPACE, factory)
    answered = {hit.record.id for hit in reopened.search(query_of(5), IMAGES, -1.0)[0]}
    assert answered == set(reopened.records()) and len(answered) == IMAGES - 1
    assert "img5.png" not in answered
    assert reopened.search(query_of(299), 1, -1.0)[0][0].record.id == "img299.png"
    assert reopened.search(query_of(6), 1, -1.0)[0][0].record.id == "img6.png"
    reopened.close()
    # The next save leaves one saved index: the one the catalog names.
    assert len(list((index_dir / SAVED_FOLDER).iterdir())) == 1


def test_a_start_on_flat_past_the_advised_size_advises_hnsw_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(store_module, "FLAT_ADVISED_UP_TO", 100)
    for folder, factory in (("flat", "Flat"), ("hnsw", "HNSW32")):
        filled = EmbeddedStore(tmp_path / folder, CORE_SPACE, factory)
        filled.save(entries_with_cores())
        filled.close()

    with caplog.at_level(logging.WARNING):
        EmbeddedStore(tmp_path / "flat", CORE_SPACE, "Flat").close()
        advised = [record.getMessage() for record in caplog.records]
        caplog.clear()
        EmbeddedStore(tmp_path / "hnsw", CORE_SPACE, "HNSW32").close()

    assert any(
        "300 images with INDEX_FACTORY=Flat" in line and "HNSW32" in line for line in advised
    )
    assert caplog.records == []
