"""The service's parts as their own rooms: an image search asks the store once (its
candidates' stroke masks come with them), and the
embedded store catches up with other workers once per search; the reconciler indexes a
folder with no collection built."""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import service as service_module
from app.config import Settings
from app.embedding.batching import EmbeddingBatcher
from app.embedding.image import ImageTower
from app.encoder import Encoder
from app.memory import MB, MemoryBudget
from app.messages.catalogue import message
from app.reconciliation import IndexingProgress, Reconciler
from app.service import preprocessing_options, tower_options
from app.storage.embedded.store import EmbeddedStore
from app.storage.factory import open_store
from app.storage.image_folder import ImageFolder
from app.storage.store import Store
from app.storage.types import VectorSpace
from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES

SEARCH = "/search-similar-images/"


class RecordingStore:
    """The real store, with the name of every method called on it, in order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.store, name)
        if not callable(value):
            return value

        def recorded(*args: object, **kwargs: object) -> object:
            self.calls.append(name)
            return value(*args, **kwargs)

        return recorded


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[RecordingStore]:
    """The stores the service opens from now on, recording their calls."""
    stores: list[RecordingStore] = []

    def recording_open_store(settings: Settings, space: VectorSpace) -> Store:
        stores.append(RecordingStore(open_store(settings, space)))
        return stores[-1]  # type: ignore[return-value]

    monkeypatch.setattr(service_module, "open_store", recording_open_store)
    return stores


@BOTH_STORES
@pytest.mark.parametrize(
    "params",
    [{}, {"mode": "shape"}, {"mode": "concept"}, {"turns": "true"}],
    ids=["hybrid", "shape", "concept", "turns"],
)
def test_an_image_search_asks_the_store_once_for_its_candidates_and_their_strokes(
    make_client: Callable[..., TestClient],
    recorded: list[RecordingStore],
    params: dict[str, str],
) -> None:
    client = make_client()
    data = (EXAMPLE_IMAGES / "imagen4.jpg").read_bytes()
    recorded[0].calls.clear()

    response = client.post(SEARCH, params=params, files={"file": ("q.jpg", data)})

    assert response.status_code == 200
    first = response.json()["results"][0]
    assert first["id"] == "imagen4.jpg" and first["original_filename"] is None
    assert first["concept_similarity"] == pytest.approx(1.0, abs=1e-4)
    assert first["shape_similarity"] == pytest.approx(1.0, abs=1e-4)
    verified = params.get("mode") != "concept"
    assert recorded[0].calls == ["search"]
    assert (first["overlap"] == pytest.approx(1.0)) if verified else first["overlap"] is None


@BOTH_STORES
def test_a_text_search_asks_the_store_once(
    make_client: Callable[..., TestClient], recorded: list[RecordingStore]
) -> None:
    client = make_client()
    recorded[0].calls.clear()

    response = client.post("/search-by-text", json={"text": "a bull's head", "top_k": 3})

    assert response.status_code == 200 and len(response.json()["results"]) == 3
    assert recorded[0].calls == ["search"]


def test_the_embedded_store_catches_up_with_other_workers_once_per_search(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    catch_ups: list[int] = []
    real_catch_up = EmbeddedStore._catch_up

    def counting_catch_up(store: EmbeddedStore) -> None:
        catch_ups.append(1)
        real_catch_up(store)

    monkeypatch.setattr(EmbeddedStore, "_catch_up", counting_catch_up)
    data = (EXAMPLE_IMAGES / "imagen2.jpg").read_bytes()

    response = client.post(SEARCH, params={"turns": "true"}, files={"file": ("q.jpg", data)})

    assert response.json()["results"][0]["id"] == "imagen2.jpg"
    assert len(catch_ups) == 1


@BOTH_STORES
def test_the_reconciler_indexes_a_folder_without_a_collection(
    make_settings: Callable[..., Settings], images_dir: Path
) -> None:
    settings = make_settings()
    tower = ImageTower.load(settings.model_name, tower_options(settings))
    batcher = EmbeddingBatcher(settings.search_batch_size)
    encoder = Encoder(
        tower,
        None,
        message("text_search_off"),
        batcher,
        preprocessing_options(settings),
        10**8,
        2,
        MemoryBudget(settings.decode_memory_mb * MB),
    )
    folder = ImageFolder(images_dir)
    store = open_store(settings, encoder.space)
    progress = IndexingProgress()
    reconciler = Reconciler(encoder, folder, store, threading.Lock(), progress, 3, 1)
    try:
        report = reconciler.reconcile()
        assert (report.added, report.failed, report.pending) == (8, 0, 0)
        assert progress.ready
        assert store.searchable_ids() == set(folder.scan())
        (images_dir / "imagen3.jpg").unlink()
        assert reconciler.reconcile().removed == 1
        assert "imagen3.jpg" not in store.searchable_ids()
    finally:
        encoder.close()
        store.close()


@BOTH_STORES
def test_a_reconciliation_with_nothing_changed_reads_no_stored_vector(
    make_client: Callable[..., TestClient], recorded: list[RecordingStore]
) -> None:
    client = make_client()
    recorded[0].calls.clear()

    response = client.post("/reindex")

    assert response.status_code == 200 and response.json()["unchanged"] > 0
    read = {"vectors", "vectors_of", "stored", "image"} & set(recorded[0].calls)
    assert read == set() and "holding" in recorded[0].calls
