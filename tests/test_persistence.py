"""The stored index: restarts embed only what changed, searches during the first
indexing answer 503, and the command line builds the same index."""

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.embedding.image import ImageTower
from app.main import create_app
from app.storage.image_folder import ImageFolder
from tests.conftest import (
    BOTH_STORES,
    EXAMPLE_IMAGES,
    LOOPBACK_CLIENT,
    save_tiny_clip,
    wait_until_indexed,
)
from tests.servers import index_command

pytestmark = BOTH_STORES

SEARCH = "/search-similar-images/"


class EmbedCounter:
    """Counts the images that reach the model."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.images = 0
        real_embed = ImageTower.embed

        def counting_embed(tower: ImageTower, inputs: list[np.ndarray]) -> np.ndarray:
            self.images += sum(len(pixels) for pixels in inputs)
            return real_embed(tower, inputs)

        monkeypatch.setattr(ImageTower, "embed", counting_embed)


@pytest.fixture
def embeds(monkeypatch: pytest.MonkeyPatch) -> EmbedCounter:
    return EmbedCounter(monkeypatch)


@pytest.fixture
def service(make_settings: Callable[..., Settings]) -> Callable[..., object]:
    @contextmanager
    def start(**overrides: object) -> Iterator[TestClient]:
        with TestClient(create_app(make_settings(**overrides)), client=LOOPBACK_CLIENT) as client:
            wait_until_indexed(client)
            yield client

    return start


def top_id(client: TestClient, name: str) -> str:
    data = (EXAMPLE_IMAGES / name).read_bytes()
    response = client.post(SEARCH, files={"file": (name, data, "image/jpeg")})
    assert response.status_code == 200
    result: str = response.json()["results"][0]["id"]
    return result


def test_restart_with_unchanged_files_embeds_nothing(service, embeds: EmbedCounter) -> None:
    with service() as client:
        assert embeds.images == 8
        added = client.post(
            "/images/", files={"file": ("n.jpg", (EXAMPLE_IMAGES / "imagen9.jpg").read_bytes())}
        ).json()["image"]["id"]

    embeds.images = 0
    with service() as client:
        assert client.get("/health").json()["indexed_images"] == 9
        assert embeds.images == 0
        assert top_id(client, "imagen6.jpg") == "imagen6.jpg"
        assert client.get(f"/images/{added}").json()["original_filename"] == "n.jpg"
    assert embeds.images == 1  # the query, nothing else


def test_restart_embeds_only_new_and_changed_files_and_drops_removed_ones(
    service, embeds: EmbedCounter, images_dir: Path
) -> None:
    with service():
        pass
    shutil.copy(EXAMPLE_IMAGES / "imagen9.jpg", images_dir / "new.jpg")
    (images_dir / "imagen2.jpg").write_bytes((EXAMPLE_IMAGES / "imagen10.jpg").read_bytes())
    (images_dir / "imagen3.jpg").unlink()
    embeds.images = 0

    with service() as client:
        assert embeds.images == 2
        assert client.get("/health").json()["indexed_images"] == 8
        assert top_id(client, "imagen9.jpg") == "new.jpg"
        assert top_id(client, "imagen10.jpg") == "imagen2.jpg"
        assert client.get("/images/imagen3.jpg").status_code == 404


def test_touched_but_identical_files_are_not_embedded_again(
    service, embeds: EmbedCounter, images_dir: Path
) -> None:
    with service():
        pass
    os.utime(images_dir / "imagen4.jpg", ns=(1_000_000_000, 1_000_000_000))
    embeds.images = 0

    with service() as client:
        assert embeds.images == 0
        assert client.get("/health").json()["indexed_images"] == 8


def test_files_with_identical_bytes_share_one_embedding(
    service, embeds: EmbedCounter, images_dir: Path
) -> None:
    shutil.copy(images_dir / "imagen1.jpg", images_dir / "copy-of-1.jpg")

    with service() as client:
        assert embeds.images == 8
        assert client.get("/health").json()["indexed_images"] == 9


@pytest.mark.parametrize("change", ["preprocessing", "model"])
def test_changing_model_or_preprocessing_recomputes_every_vector(
    service, embeds: EmbedCounter, tmp_path: Path, change: str
) -> None:
    with service():
        pass
    embeds.images = 0
    if change == "model":
        other = save_tiny_clip(tmp_path / "other", seed=1)  # other weights, another path
        overrides: dict[str, object] = {"model_name": str(other)}
    else:
        overrides = {"grid_removal": False}

    with service(**overrides) as client:
        assert embeds.images == 8
        assert top_id(client, "imagen7.jpg") == "imagen7.jpg"


def test_searches_during_first_indexing_answer_503_with_retry_after(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_embed = ImageTower.embed

    def held_embed(tower: ImageTower, inputs: list[np.ndarray]) -> np.ndarray:
        assert release.wait(30)
        return real_embed(tower, inputs)

    monkeypatch.setattr(ImageTower, "embed", held_embed)
    client = make_client(wait=False)
    try:
        health = client.get("/health").json()
        data = (EXAMPLE_IMAGES / "imagen1.jpg").read_bytes()
        busy = client.post(SEARCH, files={"file": ("q.jpg", data, "image/jpeg")})
    finally:
        release.set()

    assert health["status"] == "indexing"
    assert health["indexing"]["running"] is True
    assert busy.status_code == 503
    assert int(busy.headers["Retry-After"]) >= 1
    assert "indexed" in busy.json()["detail"]
    wait_until_indexed(client)
    assert client.post(SEARCH, files={"file": ("q.jpg", data, "image/jpeg")}).status_code == 200


def test_searches_while_new_files_are_indexed_use_the_stored_index(
    service, make_client: Callable[..., TestClient], images_dir: Path, monkeypatch
) -> None:
    with service():
        pass
    shutil.copy(EXAMPLE_IMAGES / "imagen9.jpg", images_dir / "new.jpg")
    release = threading.Event()
    real_read = ImageFolder.read_bytes

    def held_read(folder: ImageFolder, image_id: str) -> bytes:
        if image_id == "new.jpg":
            assert release.wait(30)
        return real_read(folder, image_id)

    monkeypatch.setattr(ImageFolder, "read_bytes", held_read)
    client = make_client(wait=False)
    try:
        health = client.get("/health").json()
        assert top_id(client, "imagen5.jpg") == "imagen5.jpg"
    finally:
        release.set()

    assert health["status"] == "ok" and health["indexing"]["running"] is True
    wait_until_indexed(client)
    assert top_id(client, "imagen9.jpg") == "new.jpg"


def build_index(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return index_command(environment, "build")


def test_command_line_build_makes_the_index_the_service_loads_without_embedding(
    service,
    embeds: EmbedCounter,
    tiny_model_dir: Path,
    images_dir: Path,
    index_dir: Path,
    store_settings: dict[str, str],
) -> None:
    environment = {
        **os.environ,
        "MODEL_NAME": str(tiny_model_dir),
        "DEVICE": "cpu",
        "IMAGES_DIR": str(images_dir),
        "INDEX_DIR": str(index_dir),
        **store_settings,
    }
    built = build_index(environment)

    assert built.returncode == 0, built.stderr
    assert "added=8" in built.stdout
    assert "[##############################] 8/8 100%" in built.stderr
    with service() as client:
        assert embeds.images == 0
        assert client.get("/health").json()["indexed_images"] == 8
    again = build_index(environment)
    assert "added=0 updated=0 removed=0 unchanged=8 failed=0" in again.stdout


def test_command_line_build_with_a_bad_setting_exits_with_its_message(tmp_path: Path) -> None:
    result = build_index(
        {**os.environ, "MODEL_NAME": str(tmp_path / "missing"), "INDEX_DIR": str(tmp_path)}
    )

    assert result.returncode == 1
    assert "MODEL_NAME" in result.stderr
