"""The repository's own sample folder: a newcomer who adds and deletes through the API
is warned that the samples change, and one command restores them."""

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.storage.image_folder import RESTORE_SAMPLES, SAMPLES_MARKER
from tests.conftest import EXAMPLE_IMAGES, drawing, encode
from tests.servers import REPO

SAMPLES = [f"imagen{number}.jpg" for number in range(1, 6)]


def git(checkout: Path, *arguments: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *arguments],
        cwd=checkout,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout holding a sample folder like the repository's."""
    folder = tmp_path / "checkout" / "example_images"
    folder.mkdir(parents=True)
    for name in [*SAMPLES, SAMPLES_MARKER]:
        shutil.copy(EXAMPLE_IMAGES / name, folder)
    git(folder.parent, "init", "-q")
    git(folder.parent, "add", ".")
    git(folder.parent, "commit", "-qm", "samples")
    return folder.parent


def test_the_repository_marks_its_sample_folder() -> None:
    assert (EXAMPLE_IMAGES / SAMPLES_MARKER).is_file()
    assert RESTORE_SAMPLES in (REPO / "README.md").read_text()


def test_serving_the_sample_folder_warns_at_start_and_in_every_delete_answer(
    make_client: Callable[..., TestClient], checkout: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(images_dir=checkout / "example_images")

    one = client.delete("/images/imagen1.jpg").json()["message"]
    every = client.delete("/images/", params={"confirm": "true"}).json()["message"]

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("samples" in line and RESTORE_SAMPLES in line for line in warnings)
    assert RESTORE_SAMPLES in one and RESTORE_SAMPLES in every


def test_one_command_restores_the_samples_after_adds_and_deletes(
    make_client: Callable[..., TestClient], checkout: Path
) -> None:
    folder = checkout / "example_images"
    client = make_client(images_dir=folder)
    client.post("/images/", files={"file": ("new.png", encode(drawing(seed=4), "PNG"))})
    client.delete("/images/", params={"confirm": "true"})
    client.post("/images/", files={"file": ("new.png", encode(drawing(seed=5), "PNG"))})
    assert sorted(path.name for path in folder.iterdir() if path.suffix == ".jpg") == []

    subprocess.run(RESTORE_SAMPLES, shell=True, cwd=checkout, check=True)

    assert sorted(path.name for path in folder.iterdir()) == sorted([*SAMPLES, SAMPLES_MARKER])
    for name in SAMPLES:
        assert (folder / name).read_bytes() == (EXAMPLE_IMAGES / name).read_bytes()


def test_a_folder_of_ones_own_gets_no_sample_warning(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()

    message = client.delete("/images/imagen1.jpg").json()["message"]

    assert message == "Deleted imagen1.jpg."
    assert not any(RESTORE_SAMPLES in record.getMessage() for record in caplog.records)
