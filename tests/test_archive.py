"""Moving a collection from the embedded store to Postgres with ``python -m app.cli.index
export`` and ``import``: the same images, records and search answers, nothing embedded
again."""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pgserver.postgres_server import PostgresServer

from app.config import Settings
from app.main import create_app
from tests.conftest import (
    EXAMPLE_IMAGES,
    LOOPBACK_CLIENT,
    drawing,
    encode,
    new_database,
    wait_until_indexed,
)
from tests.servers import index_command

SEARCH = "/search-similar-images/"


def run_index(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return index_command({**os.environ, **environment}, *arguments)


def listing_and_answer(
    settings: Settings,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    with TestClient(create_app(settings), client=LOOPBACK_CLIENT) as client:
        wait_until_indexed(client)
        listing = client.get("/images/", params={"page_size": 100}).json()["images"]
        data = (EXAMPLE_IMAGES / "imagen9.jpg").read_bytes()
        answer = client.post(SEARCH, files={"file": ("q.jpg", data)}).json()["results"]
    for image in listing:
        image.pop("full_url")
        image.pop("image_path")
    return listing, answer


def test_a_collection_exported_from_embedded_and_imported_into_postgres_answers_alike(
    make_settings: Callable[..., Settings],
    tiny_model_dir: Path,
    onnx_cache_dir: Path,
    tmp_path: Path,
    postgres: PostgresServer,
) -> None:
    embedded = make_settings()
    with TestClient(create_app(embedded), client=LOOPBACK_CLIENT) as client:
        wait_until_indexed(client)
        added = client.post(
            "/images/",
            files={"file": ("marca ñ.png", encode(drawing(), "PNG"))},
            data={"label": "Reg. 9 - Peña"},
        )
        assert added.status_code == 201
    before = listing_and_answer(embedded)
    common = {
        "MODEL_NAME": str(tiny_model_dir),
        "DEVICE": "cpu",
        "ONNX_CACHE_DIR": str(onnx_cache_dir),
    }
    database = new_database(postgres)
    target = {
        **common,
        "STORE": "postgres",
        "DATABASE_URL": database,
        "IMAGES_DIR": str(tmp_path / "shared-images"),
        "INDEX_DIR": str(tmp_path / "replica-index"),
    }

    exported = run_index(
        {**common, "IMAGES_DIR": str(embedded.images_dir), "INDEX_DIR": str(embedded.index_dir)},
        "export",
        str(tmp_path / "archive"),
    )
    imported = run_index(target, "import", str(tmp_path / "archive"))

    assert exported.returncode == 0, exported.stderr
    assert "exported=9" in exported.stdout
    assert imported.returncode == 0, imported.stderr
    assert "imported=9 already_there=0 conflicts=0" in imported.stdout
    assert "added=0 updated=0 removed=0 unchanged=9" in imported.stdout  # nothing embedded
    after = listing_and_answer(
        make_settings(
            store="postgres",
            database_url=database,
            images_dir=tmp_path / "shared-images",
            index_dir=tmp_path / "replica-index",
        )
    )
    assert after[0] == before[0]  # ids, original file names, labels, hashes, dates
    assert "Reg. 9 - Peña" in [image["label"] for image in after[0]]
    assert [r["id"] for r in after[1]] == [r["id"] for r in before[1]]
    assert [r["similarity"] for r in after[1]] == pytest.approx(
        [r["similarity"] for r in before[1]], abs=1e-5
    )


def test_export_refuses_a_folder_that_is_not_empty(
    make_settings: Callable[..., Settings],
    tiny_model_dir: Path,
    onnx_cache_dir: Path,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "notes.txt").write_text("mine")

    result = run_index(
        {
            "MODEL_NAME": str(tiny_model_dir),
            "DEVICE": "cpu",
            "ONNX_CACHE_DIR": str(onnx_cache_dir),
            "IMAGES_DIR": str(settings.images_dir),
            "INDEX_DIR": str(settings.index_dir),
        },
        "export",
        str(tmp_path / "archive"),
    )

    assert result.returncode == 1
    assert "is not empty" in result.stderr
    assert (tmp_path / "archive" / "notes.txt").read_text() == "mine"
