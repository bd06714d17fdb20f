"""The repository's own sample folder: a newcomer who adds and deletes through the API
is warned that the samples change, and one command restores them."""

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.storage.image_folder import BULK_LOCK, COLLECTION_MARKER, RESTORE_SAMPLES, SAMPLES_MARKER
from tests.conftest import EXAMPLE_IMAGES, drawing, encode, folder_files
from tests.servers import REPO, index_command

SAMPLES = [f"imagen{number}.jpg" for number in range(1, 6)]


def git(checkout: Path, *arguments: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *arguments],
        cwd=checkout,
        check=True,
        capture_output=True,
    )


def restore_samples(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The documented restore command, as an operator runs it with these settings."""
    return index_command(environment, "restore-samples")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout holding a sample folder like the repository's."""
    folder = tmp_path / "checkout" / "example_images"
    folder.mkdir(parents=True)
    for name in [*SAMPLES, SAMPLES_MARKER]:
        shutil.copy(EXAMPLE_IMAGES / name, folder)
    (folder.parent / ".gitignore").write_text(
        f"example_images/{COLLECTION_MARKER}\nexample_images/{BULK_LOCK}\n"
    )  # as the repository's
    git(folder.parent, "init", "-q")
    git(folder.parent, "add", ".")
    git(folder.parent, "commit", "-qm", "samples")
    return folder.parent


def test_the_repository_marks_its_sample_folder() -> None:
    assert (EXAMPLE_IMAGES / SAMPLES_MARKER).is_file()
    assert RESTORE_SAMPLES in (REPO / "README.md").read_text()


def test_serving_the_sample_folder_warns_at_start_and_when_samples_are_deleted(
    make_client: Callable[..., TestClient], checkout: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(images_dir=checkout / "example_images")
    upload = client.post("/images/", files={"file": ("mine.png", encode(drawing(seed=3), "PNG"))})

    sample = client.delete("/images/imagen1.jpg").json()["message"]
    uploaded = client.delete(f"/images/{upload.json()['image']['id']}").json()["message"]
    every = client.delete("/images/", params={"confirm": "true"}).json()["message"]

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("samples" in line and RESTORE_SAMPLES in line for line in warnings)
    assert "samples" in sample and RESTORE_SAMPLES in sample
    assert uploaded.startswith("Deleted mine.png (id ") and "samples" not in uploaded
    assert RESTORE_SAMPLES in every


def test_one_command_restores_the_samples_and_the_running_service_sees_them(
    make_client: Callable[..., TestClient],
    checkout: Path,
    tiny_model_dir: Path,
    index_dir: Path,
    onnx_cache_dir: Path,
    store_settings: dict[str, str],
) -> None:
    folder = checkout / "example_images"
    client = make_client(images_dir=folder)
    client.post("/images/", files={"file": ("new.png", encode(drawing(seed=4), "PNG"))})
    client.delete("/images/", params={"confirm": "true"})
    client.post("/images/", files={"file": ("new.png", encode(drawing(seed=5), "PNG"))})
    assert sorted(path.name for path in folder.iterdir() if path.suffix == ".jpg") == []
    environment = {
        **os.environ,
        "MODEL_NAME": str(tiny_model_dir),
        "DEVICE": "cpu",
        "IMAGES_DIR": str(folder),
        "INDEX_DIR": str(index_dir),
        "ONNX_CACHE_DIR": str(onnx_cache_dir),
        **store_settings,
    }

    restored = restore_samples(environment)

    assert restored.returncode == 0, restored.stderr
    assert "added=5" in restored.stdout and "removed=1" in restored.stdout
    assert folder_files(folder) == sorted([*SAMPLES, SAMPLES_MARKER])
    for name in SAMPLES:
        assert (folder / name).read_bytes() == (EXAMPLE_IMAGES / name).read_bytes()
    listed = client.get("/images/", params={"page_size": 100}).json()
    assert sorted(image["id"] for image in listed["images"]) == SAMPLES
    found = client.post(
        "/search-similar-images/",
        files={"file": ("q.jpg", (EXAMPLE_IMAGES / "imagen2.jpg").read_bytes())},
    ).json()["results"]
    assert found[0]["id"] == "imagen2.jpg"


def test_restoring_samples_in_a_folder_of_ones_own_changes_nothing(
    images_dir: Path, tiny_model_dir: Path, index_dir: Path
) -> None:
    environment = {
        **os.environ,
        "MODEL_NAME": str(tiny_model_dir),
        "IMAGES_DIR": str(images_dir),
        "INDEX_DIR": str(index_dir),
    }
    before = sorted(path.name for path in images_dir.iterdir())

    refused = restore_samples(environment)

    assert refused.returncode == 1
    assert "is not the repository's sample folder" in refused.stderr
    assert sorted(path.name for path in images_dir.iterdir()) == before


def test_a_folder_of_ones_own_gets_no_sample_warning(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()

    message = client.delete("/images/imagen1.jpg").json()["message"]

    assert message == "Deleted imagen1.jpg."
    assert not any(RESTORE_SAMPLES in record.getMessage() for record in caplog.records)
