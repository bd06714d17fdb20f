"""The model worker: batched and single embeddings agree (transformers and ONNX Runtime),
concurrent requests share one model call, a full queue answers 503, and the int8 path
stays close to the float one."""

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from transformers import CLIPImageProcessor

from app.embedding.batching import EmbeddingBatcher
from app.embedding.image import ImageTower, SquareInput
from app.imaging.decoding import decode_image
from app.imaging.preprocessing import prepare_for_embedding
from app.search import Admission, QueueFullError
from tests.conftest import EXAMPLE_IMAGES, tower_options

SEARCH = "/search-similar-images/"


@pytest.fixture(scope="module")
def embedder(tiny_model_dir: Path) -> ImageTower:
    return ImageTower.load(str(tiny_model_dir), tower_options())


@pytest.fixture(scope="module")
def samples() -> list[Image.Image]:
    return [
        prepare_for_embedding(decode_image((EXAMPLE_IMAGES / f"imagen{n}.jpg").read_bytes(), 10**8))
        for n in range(1, 9)
    ]


@pytest.mark.parametrize("inference", ["torch", "onnx"])
def test_batched_and_single_embeddings_agree(
    inference: str, tiny_model_dir: Path, onnx_cache_dir: Path, samples: list[Image.Image]
) -> None:
    embedder = ImageTower.load(str(tiny_model_dir), tower_options(inference, onnx_cache_dir))
    assert embedder.inference == inference
    assert embedder.square_input is not None  # the way the service's squares take

    batched = embedder.embed_images(samples)
    single = np.vstack([embedder.embed_images([image]) for image in samples])

    assert batched.shape == (8, 24)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


class JoinedTower:
    """A tower whose model call is a function of the requests' inputs put together."""

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray]) -> None:
        self.function = embed

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self.function(np.concatenate(inputs))


def test_requests_queued_together_share_one_model_call_and_get_their_own_vectors(
    embedder: ImageTower, samples: list[Image.Image]
) -> None:
    calls: list[int] = []
    started, release = threading.Event(), threading.Event()

    def held_embed(pixels: np.ndarray) -> np.ndarray:
        calls.append(len(pixels))
        started.set()
        assert release.wait(30)
        return embedder.embed([pixels])

    tower = JoinedTower(held_embed)
    batcher = EmbeddingBatcher(max_batch=4)
    results: dict[int, np.ndarray] = {}

    def request(number: int) -> None:
        results[number] = batcher.embed(tower, embedder.pixels([samples[number]]))[0]

    first = threading.Thread(target=request, args=(0,))
    first.start()
    assert started.wait(30)
    others = [threading.Thread(target=request, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    while batcher._jobs.qsize() < 5:  # all five queued behind the held call
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(30)
    batcher.close()

    assert calls == [1, 4, 1]
    for number in range(6):
        np.testing.assert_allclose(
            results[number], embedder.embed_images([samples[number]])[0], atol=1e-5
        )


IMAGE_TOWER, TEXT_TOWER = "image", "text"


def test_queued_texts_and_images_are_batched_by_tower_oldest_first() -> None:
    calls: list[tuple[str, list[float]]] = []
    started, release = threading.Event(), threading.Event()

    class NamedTower:
        def __init__(self, name: str) -> None:
            self.name = name

        def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
            calls.append((self.name, [float(item[0, 0]) for item in inputs]))
            if not started.is_set():  # the first call waits until the others are queued
                started.set()
                assert release.wait(30)
            return np.concatenate(inputs)[:, :1] * (10 if self.name == TEXT_TOWER else 1)

    towers = {name: NamedTower(name) for name in (IMAGE_TOWER, TEXT_TOWER)}
    batcher = EmbeddingBatcher(4)
    results: dict[float, float] = {}

    def request(value: float, name: str) -> None:
        results[value] = float(batcher.embed(towers[name], np.full((1, 2), value))[0, 0])

    first = threading.Thread(target=request, args=(1.0, IMAGE_TOWER))
    first.start()
    assert started.wait(30)
    queued = [(2.0, TEXT_TOWER), (3.0, IMAGE_TOWER), (4.0, TEXT_TOWER), (5.0, IMAGE_TOWER)]
    threads = []
    for value, name in queued:  # in this order
        threads.append(threading.Thread(target=request, args=(value, name)))
        threads[-1].start()
        while batcher._jobs.qsize() < len(threads):
            threading.Event().wait(0.01)
    release.set()
    for thread in [first, *threads]:
        thread.join(30)
    batcher.close()

    assert calls == [
        (IMAGE_TOWER, [1.0]),
        (TEXT_TOWER, [2.0, 4.0]),
        (IMAGE_TOWER, [3.0, 5.0]),
    ]
    assert results == {1.0: 1.0, 2.0: 20.0, 3.0: 3.0, 4.0: 40.0, 5.0: 5.0}


def test_a_model_error_reaches_every_caller_and_the_worker_keeps_going(
    embedder: ImageTower, samples: list[Image.Image]
) -> None:
    failures = iter([RuntimeError("model failed")])

    def flaky_embed(pixels: np.ndarray) -> np.ndarray:
        for failure in failures:
            raise failure
        return np.ones((len(pixels), 3), np.float32)

    tower = JoinedTower(flaky_embed)
    batcher = EmbeddingBatcher(max_batch=4)

    with pytest.raises(RuntimeError, match="model failed"):
        batcher.embed(tower, embedder.pixels(samples[:1]))
    assert batcher.embed(tower, embedder.pixels(samples[:2])).shape == (2, 3)
    batcher.close()


def test_search_slots_refuse_at_once_when_all_are_taken() -> None:
    admission = Admission(2)

    with admission.slot(), admission.slot():
        with pytest.raises(QueueFullError) as refused, admission.slot():
            pass
        assert refused.value.retry_after_s >= 1
    with admission.slot():
        pass


def test_search_with_every_slot_taken_returns_503_with_retry_after(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(search_queue_size=1)
    entered, release = threading.Event(), threading.Event()
    real_embed = ImageTower.embed

    def held_embed(self: ImageTower, inputs: list[np.ndarray]) -> np.ndarray:
        entered.set()
        assert release.wait(30)
        return real_embed(self, inputs)

    monkeypatch.setattr(ImageTower, "embed", held_embed)
    data = (EXAMPLE_IMAGES / "imagen1.jpg").read_bytes()
    first: list[int] = []
    thread = threading.Thread(
        target=lambda: first.append(
            client.post(SEARCH, files={"file": ("q.jpg", data)}).status_code
        )
    )
    thread.start()
    try:
        assert entered.wait(30)
        refused = client.post(SEARCH, files={"file": ("q.jpg", data)})
    finally:
        release.set()
        thread.join(30)

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert "SEARCH_QUEUE_SIZE" in refused.json()["detail"]
    assert first == [200]


def test_many_concurrent_searches_all_succeed_with_their_own_results(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(search_batch_size=4)
    answers: dict[int, tuple[int, str]] = {}

    def search(number: int) -> None:
        name = f"imagen{number % 8 + 1}.jpg"
        response = client.post(SEARCH, files={"file": (name, (EXAMPLE_IMAGES / name).read_bytes())})
        answers[number] = (response.status_code, response.json()["results"][0]["id"])

    threads = [threading.Thread(target=search, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert answers == {n: (200, f"imagen{n % 8 + 1}.jpg") for n in range(16)}


def test_int8_inference_stays_close_to_the_float_model(
    tiny_model_dir: Path, embedder: ImageTower, samples: list[Image.Image]
) -> None:
    quantized = ImageTower.load(str(tiny_model_dir), tower_options("int8"))

    cosines = np.sum(quantized.embed_images(samples) * embedder.embed_images(samples), axis=1)

    assert cosines.min() >= 0.99
    assert quantized.fingerprint != embedder.fingerprint


def test_int8_setting_serves_searches_and_recomputes_stored_vectors(
    make_client: Callable[..., TestClient],
) -> None:
    assert make_client().get("/health").json()["indexing"]["total"] == 8

    client = make_client(inference="INT8")

    assert client.get("/health").json()["indexing"]["total"] == 8  # embedded again
    assert make_client(inference="int8").get("/health").json()["indexing"]["total"] == 0
    name = "imagen5.jpg"
    response = client.post(SEARCH, files={"file": (name, (EXAMPLE_IMAGES / name).read_bytes())})
    assert response.json()["results"][0]["id"] == name


def test_square_images_skip_the_image_processor_with_the_same_pixels(
    samples: list[Image.Image],
) -> None:
    processor = CLIPImageProcessor()  # ViT-B/32's: shortest edge 224, centre crop 224
    shortcut = SquareInput.of(processor)

    assert shortcut is not None and shortcut.applies_to(samples)
    expected = processor(images=samples, return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(shortcut.pixels(samples), expected, atol=1e-5)
    assert not shortcut.applies_to([samples[0].resize((224, 200))])


def test_processors_that_resize_or_crop_otherwise_get_no_shortcut() -> None:
    assert SquareInput.of(CLIPImageProcessor(crop_size={"height": 200, "width": 224})) is None
    assert SquareInput.of(CLIPImageProcessor(do_center_crop=False)) is None
    assert SquareInput.of(CLIPImageProcessor(size={"height": 224, "width": 224})) is None
