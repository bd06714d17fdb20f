"""The registry's existing React/Next.js frontend, which we do not control, pinned field
by field: the early version (search only: ``results[].id``, ``similarity``, and
``<API>/static/<id>``) and the current one (search, upload and management pages). Both
must work unmodified, in both RESULT_PATH modes."""

import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient

from app.errors import ConfigError
from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES, drawing, encode, folder_files

pytestmark = BOTH_STORES

SEARCH = "/search-similar-images/"
HAND_COPIED = ["marca #7.png", "marca ?8.png", "marca 100%.png", "señal.png"]
SAFE_IDS = ["marca%20%237.png", "marca%20%3F8.png", "marca%20100%25.png", "se%C3%B1al.png"]


def upload(data: bytes, name: str = "query.jpg") -> dict[str, tuple[str, bytes]]:
    return {"file": (name, data)}


def sample(name: str = "imagen2.jpg") -> bytes:
    return (EXAMPLE_IMAGES / name).read_bytes()


@pytest.mark.parametrize("result_path", ["file", "url"])
def test_search_results_carry_every_field_the_current_frontend_reads(
    make_client: Callable[..., TestClient], result_path: str
) -> None:
    client = make_client(result_path=result_path)
    added = client.post("/add-image/", files=upload(encode(drawing(seed=5), "PNG"), "b42.png"))

    results = client.post(SEARCH, files=upload(sample()), params={"min_similarity": -1}).json()[
        "results"
    ]

    assert added.status_code == 201
    assert len(results) == 9
    for result in results:
        assert result["distance"] == pytest.approx(1 - result["similarity"], abs=1e-9)
        assert isinstance(result["similarity"], float)
        assert result["url"] == f"http://testserver/static/{result['id']}"
        if result_path == "url":
            assert result["path"] == result["url"]
        else:
            assert result["path"].endswith(f"/images/{result['id']}")
            assert not result["path"].startswith("http")
    filenames = {result["id"]: result["original_filename"] for result in results}
    assert filenames[added.json()["image"]["id"]] == "b42.png"
    assert filenames["imagen2.jpg"] is None  # copied into the folder by hand


def test_result_path_file_keeps_the_original_contract_by_default(
    client: TestClient, images_dir: Path
) -> None:
    results = client.post(SEARCH, files=upload(sample())).json()["results"]

    assert results[0]["id"] == "imagen2.jpg"
    assert results[0]["path"] == f"{images_dir.as_posix()}/imagen2.jpg"


def test_result_path_setting_refuses_other_values(make_settings: Callable[..., object]) -> None:
    with pytest.raises(ConfigError, match="RESULT_PATH"):
        make_settings(result_path="absolute")


def test_early_frontend_builds_thumbnails_from_static_and_the_id(client: TestClient) -> None:
    results = client.post(SEARCH, files=upload(sample())).json()["results"]

    thumbnail = client.get(f"/static/{results[0]['id']}")

    assert {"id", "similarity"} <= set(results[0])
    assert thumbnail.status_code == 200
    assert thumbnail.content == sample()


@pytest.mark.parametrize("result_path", ["file", "url"])
def test_add_image_answers_what_the_upload_page_reads(
    make_client: Callable[..., TestClient], result_path: str
) -> None:
    client = make_client(result_path=result_path)
    data = encode(drawing(seed=8), "PNG")

    added = client.post("/add-image/", files=upload(data, "brand 8.png"))
    again = client.post("/add-image/", files=upload(data, "brand 8.png"))

    assert added.status_code == 201
    image = added.json()["image"]
    assert image["original_filename"] == "brand 8.png"
    assert len(image["sha256"]) == 64
    assert image["url"] == f"http://testserver/static/{image['id']}"
    assert (
        image["path"] == image["url"]
        if result_path == "url"
        else image["path"].endswith(f"/images/{image['id']}")
    )
    assert client.get(image["url"]).content == data
    assert again.status_code == 409
    assert image["id"] in again.json()["detail"]


def test_listing_answers_what_the_management_page_reads(client: TestClient) -> None:
    body = client.get("/images/", params={"page": 2, "page_size": 3}).json()

    assert (body["total"], body["page"], body["total_pages"]) == (8, 2, 3)
    for item in body["images"]:
        assert {"id", "full_url", "original_filename", "created_at"} <= set(item)
        assert client.get(item["full_url"]).status_code == 200


def test_a_page_past_the_end_answers_the_last_page_and_says_so(client: TestClient) -> None:
    asked = client.get("/images/", params={"page": 4, "page_size": 3}).json()
    last = client.get("/images/", params={"page": 3, "page_size": 3}).json()
    far = client.get("/images/", params={"page": 2**70, "page_size": 3})

    assert asked["page"] == 3 and asked["requested_page"] == 4
    assert asked["images"] == last["images"] and len(last["images"]) == 2
    assert last["requested_page"] == 3
    assert far.status_code == 200 and far.json()["page"] == 3


def test_an_empty_collection_answers_page_one_of_nothing(client: TestClient) -> None:
    client.delete("/images/", params={"confirm": "true"})

    body = client.get("/images/", params={"page": 2}).json()

    assert (body["images"], body["total"], body["page"], body["total_pages"]) == ([], 0, 1, 0)


def test_deleting_the_only_row_of_the_last_page_then_reloading_shows_the_page_before(
    client: TestClient,
) -> None:
    client.post("/add-image/", files=upload(encode(drawing(seed=9), "PNG")))
    only = client.get("/images/", params={"page": 5, "page_size": 2}).json()["images"]

    client.delete(f"/images/{only[0]['id']}")
    reloaded = client.get("/images/", params={"page": 5, "page_size": 2}).json()

    assert len(only) == 1
    assert (reloaded["page"], reloaded["total_pages"], len(reloaded["images"])) == (4, 4, 2)
    assert (
        reloaded["images"]
        == client.get("/images/", params={"page": 4, "page_size": 2}).json()["images"]
    )


def test_deletes_answer_a_message_and_the_count(client: TestClient) -> None:
    one = client.delete("/images/imagen1.jpg").json()
    every = client.delete("/images/", params={"confirm": "true"}).json()

    assert one["deleted"] == one["deleted_count"] == 1
    assert "imagen1.jpg" in one["message"]
    assert every["deleted"] == every["deleted_count"] == 7
    assert "7" in every["message"]


def test_image_count_answers_the_number_of_images(client: TestClient) -> None:
    before = client.get("/image-count/").json()
    client.post("/add-image/", files=upload(encode(drawing(seed=10), "PNG")))

    assert before == {"count": 8}
    assert client.get("/image-count/").json() == {"count": 9}


@pytest.fixture
def hand_copied(make_client: Callable[..., TestClient], images_dir: Path) -> TestClient:
    """A collection with files copied in by hand under names unsafe in a URL."""
    for name in HAND_COPIED:
        shutil.copy(EXAMPLE_IMAGES / "imagen9.jpg", images_dir / name)
    return make_client()


def listed_ids(client: TestClient) -> list[str]:
    return [
        item["id"] for item in client.get("/images/", params={"page_size": 100}).json()["images"]
    ]


def test_ids_in_answers_are_safe_in_a_url_without_encoding(hand_copied: TestClient) -> None:
    ids = [image_id for image_id in listed_ids(hand_copied) if not image_id.startswith("imagen")]

    assert sorted(ids) == SAFE_IDS
    for image_id in ids:
        thumbnail = hand_copied.get(f"/static/{image_id}")  # as the early frontend does
        assert thumbnail.status_code == 200 and thumbnail.content == sample("imagen9.jpg")


@pytest.mark.parametrize("encoded", [False, True], ids=["as-is", "encoded"])
def test_hand_copied_files_are_found_whether_or_not_the_client_encodes_the_id(
    hand_copied: TestClient, images_dir: Path, encoded: bool
) -> None:
    for image_id in [i for i in listed_ids(hand_copied) if not i.startswith("imagen")]:
        sent = quote(image_id, safe="") if encoded else image_id

        found = hand_copied.get(f"/images/{sent}")
        similar = hand_copied.get(f"/images/{sent}/similar")
        deleted = hand_copied.delete(f"/images/{sent}")

        assert found.status_code == 200 and found.json()["id"] == image_id
        assert similar.status_code == 200
        assert deleted.status_code == 200
    assert folder_files(images_dir) == [f"imagen{number}.jpg" for number in range(1, 9)]


def test_search_results_name_hand_copied_files_by_url_safe_id_and_real_path(
    hand_copied: TestClient, images_dir: Path
) -> None:
    results = hand_copied.post(SEARCH, files=upload(sample("imagen9.jpg"))).json()["results"]

    assert sorted(result["id"] for result in results[:4]) == SAFE_IDS
    for result in results[:4]:
        assert result["path"] == f"{images_dir.as_posix()}/{unquote(result['id'])}"
        assert hand_copied.get(result["url"]).status_code == 200
