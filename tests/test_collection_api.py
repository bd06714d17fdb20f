"""The collection API as a client sees it: add, list, get, delete, reindex."""

import hashlib
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES, TEST_IMAGES, drawing, encode, folder_files

pytestmark = BOTH_STORES

SEARCH = "/search-similar-images/"


def file_part(data: bytes, name: str = "brand.png") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "application/octet-stream")}


def sample(name: str) -> bytes:
    return (EXAMPLE_IMAGES / name).read_bytes()


def top_result(client: TestClient, data: bytes) -> dict[str, object]:
    response = client.post(SEARCH, files=file_part(data))
    assert response.status_code == 200
    results: list[dict[str, object]] = response.json()["results"]
    return results[0]


def test_added_image_is_stored_under_a_new_name_and_found_by_the_next_search(
    client: TestClient, images_dir: Path
) -> None:
    data = sample("imagen9.jpg")
    before = datetime.now(UTC) - timedelta(seconds=1)

    response = client.post("/images/", files=file_part(data, "my brand.jpg"))

    assert response.status_code == 201
    image = response.json()["image"]
    assert set(image) == {
        "id",
        "path",
        "url",
        "sha256",
        "original_filename",
        "label",
        "name",
        "created_at",
    }
    assert image["id"].endswith(".jpg") and image["id"] != "my brand.jpg"
    assert (images_dir / image["id"]).read_bytes() == data
    assert image["path"] == f"{images_dir.as_posix()}/{image['id']}"
    assert image["url"] == f"http://testserver/static/{image['id']}"
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert image["original_filename"] == "my brand.jpg"
    assert datetime.fromisoformat(image["created_at"]) >= before
    found = top_result(client, data)
    assert found["id"] == image["id"]
    assert found["path"] == image["path"] and found["url"] == image["url"]
    assert client.get(f"/static/{image['id']}").content == data
    assert client.get("/health").json()["indexed_images"] == 9


def test_add_answers_the_most_similar_existing_images(client: TestClient) -> None:
    redrawn = (TEST_IMAGES / "imagen4_redrawn.jpg").read_bytes()

    response = client.post("/images/", files=file_part(redrawn), params={"top_k": 3})

    assert response.status_code == 201
    similar = response.json()["similar"]
    assert 1 <= len(similar) <= 3
    assert similar[0]["id"] == "imagen4.jpg"
    assert similar[0]["url"] == "http://testserver/static/imagen4.jpg"
    assert response.json()["image"]["id"] not in [result["id"] for result in similar]


def test_add_image_alias_path_adds_like_images(client: TestClient) -> None:
    response = client.post("/add-image/", files=file_part(encode(drawing(seed=5), "PNG")))

    assert response.status_code == 201
    assert response.json()["image"]["id"].endswith(".png")
    assert client.get("/images/", params={"page_size": 1}).json()["total"] == 9


def test_same_bytes_uploaded_twice_returns_409_naming_the_existing_image(
    client: TestClient, images_dir: Path
) -> None:
    data = encode(drawing(seed=7), "PNG")
    first = client.post("/images/", files=file_part(data)).json()["image"]["id"]

    again = client.post("/images/", files=file_part(data, "other-name.png"))
    existing = client.post("/images/", files=file_part(sample("imagen2.jpg")))

    assert again.status_code == 409
    assert first in again.json()["detail"]
    assert existing.status_code == 409
    assert "imagen2.jpg" in existing.json()["detail"]
    assert len(folder_files(images_dir)) == 9


def test_add_with_bad_upload_answers_4xx_and_stores_nothing(
    client: TestClient, images_dir: Path
) -> None:
    corrupt = client.post("/images/", files=file_part(sample("imagen9.jpg")[:2000]))
    not_image = client.post("/images/", files=file_part(b"%PDF-1.7 not an image"))
    empty = client.post("/images/", files=file_part(b""))

    assert (corrupt.status_code, not_image.status_code, empty.status_code) == (400, 415, 400)
    assert folder_files(images_dir) == [
        f"imagen{number}.jpg" for number in (1, 2, 3, 4, 5, 6, 7, 8)
    ]
    assert client.get("/images/").json()["total"] == 8


def test_original_filename_is_kept_as_metadata_and_never_used_as_a_path(
    client: TestClient, images_dir: Path
) -> None:
    response = client.post("/images/", files=file_part(sample("imagen9.jpg"), "../../evil.jpg"))

    assert response.status_code == 201
    image = response.json()["image"]
    assert image["original_filename"] == "../../evil.jpg"
    assert "/" not in image["id"] and ".." not in image["id"]
    assert (images_dir / image["id"]).is_file()
    assert not (images_dir.parent.parent / "evil.jpg").exists()


def test_list_images_pages_newest_first(client: TestClient) -> None:
    added = [
        client.post(
            "/images/", files=file_part(encode(drawing(seed=seed), "PNG"), f"{seed}.png")
        ).json()["image"]["id"]
        for seed in (11, 12, 13)
    ]

    first = client.get("/images/", params={"page": 1, "page_size": 2}).json()
    last = client.get("/images/", params={"page": 6, "page_size": 2}).json()
    beyond = client.get("/images/", params={"page": 7, "page_size": 2}).json()

    assert (first["total"], first["page"], first["page_size"], first["total_pages"]) == (
        11,
        1,
        2,
        6,
    )
    assert [item["id"] for item in first["images"]] == [added[2], added[1]]
    item = first["images"][0]
    assert set(item) == {
        "id",
        "image_path",
        "original_filename",
        "label",
        "name",
        "sha256_hash",
        "created_at",
        "full_url",
    }
    assert item["original_filename"] == "13.png"
    assert item["full_url"] == f"http://testserver/static/{added[2]}"
    assert item["image_path"].endswith(f"/images/{added[2]}")
    assert len(last["images"]) == 1
    assert beyond["images"] == last["images"] and beyond["page"] == 6
    everything = client.get("/images/", params={"page_size": 100}).json()["images"]
    assert len({item["id"] for item in everything}) == 11
    folder_files = [item for item in everything if item["original_filename"] is None]
    assert len(folder_files) == 8


def test_list_images_refuses_bad_paging(client: TestClient) -> None:
    assert client.get("/images/", params={"page_size": 101}).status_code == 422
    assert client.get("/images/", params={"page": 0}).status_code == 422
    assert client.get("/images/", params={"page_size": 100}).status_code == 200


def test_get_image_answers_its_metadata_or_404(client: TestClient) -> None:
    found = client.get("/images/imagen5.jpg")
    missing = client.get("/images/nothing.jpg")

    assert found.status_code == 200
    assert found.json()["sha256_hash"] == hashlib.sha256(sample("imagen5.jpg")).hexdigest()
    assert found.json()["full_url"] == "http://testserver/static/imagen5.jpg"
    assert missing.status_code == 404
    assert "nothing.jpg" in missing.json()["detail"]


def test_delete_image_removes_its_file_and_vector(client: TestClient, images_dir: Path) -> None:
    response = client.delete("/images/imagen3.jpg")

    assert response.status_code == 200
    assert response.json()["deleted"] == 1
    assert not (images_dir / "imagen3.jpg").exists()
    results = client.post(SEARCH, files=file_part(sample("imagen3.jpg"))).json()["results"]
    assert "imagen3.jpg" not in [result["id"] for result in results]
    assert client.get("/images/imagen3.jpg").status_code == 404
    assert client.get("/static/imagen3.jpg").status_code == 404
    assert client.delete("/images/imagen3.jpg").status_code == 404
    assert client.get("/health").json()["indexed_images"] == 7


def test_delete_all_needs_confirm_true(client: TestClient, images_dir: Path) -> None:
    refused = client.delete("/images/")
    refused_false = client.delete("/images/", params={"confirm": "false"})

    assert refused.status_code == 400 and refused_false.status_code == 400
    assert "confirm=true" in refused.json()["detail"]
    assert len(folder_files(images_dir)) == 8

    done = client.delete("/images/", params={"confirm": "true"})

    assert done.status_code == 200
    assert done.json()["deleted"] == 8
    assert folder_files(images_dir) == []
    assert client.get("/images/").json()["total"] == 0
    assert client.post(SEARCH, files=file_part(sample("imagen1.jpg"))).json() == {"results": []}
    assert client.post("/images/", files=file_part(sample("imagen1.jpg"))).status_code == 201


def test_reindex_takes_files_copied_in_by_hand_and_drops_removed_ones(
    client: TestClient, images_dir: Path
) -> None:
    shutil.copy(EXAMPLE_IMAGES / "imagen9.jpg", images_dir / "hand-copied.jpg")
    (images_dir / "imagen2.jpg").unlink()
    (images_dir / "imagen5.jpg").write_bytes(sample("imagen10.jpg"))

    response = client.post("/reindex")

    assert response.status_code == 200
    assert response.json() == {
        "added": 1,
        "updated": 1,
        "removed": 1,
        "unchanged": 6,
        "failed": 0,
        "pending": 0,
        "indexed_images": 8,
        "withheld": 0,
    }
    assert top_result(client, sample("imagen9.jpg"))["id"] == "hand-copied.jpg"
    assert top_result(client, sample("imagen10.jpg"))["id"] == "imagen5.jpg"
    assert client.get("/images/imagen2.jpg").status_code == 404
    assert client.post("/reindex").json()["unchanged"] == 8


def test_hnsw_index_factory_serves_adds_deletes_and_searches(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(index_factory="HNSW32")
    added = client.post("/images/", files=file_part(sample("imagen9.jpg"))).json()["image"]["id"]

    assert top_result(client, sample("imagen9.jpg"))["id"] == added
    assert client.delete("/images/imagen3.jpg").status_code == 200
    results = client.post(SEARCH, files=file_part(sample("imagen3.jpg")), params={"top_k": 100})
    assert "imagen3.jpg" not in [result["id"] for result in results.json()["results"]]
    assert top_result(client, sample("imagen6.jpg"))["id"] == "imagen6.jpg"
