"""Paths and methods answer what the OpenAPI schema says, as a fuzzer found they did not:
a path matches exactly (no trailing newline), a wrong method gets 405 listing every
method the path has, and an absurd page number is not a 500."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import BOTH_STORES, drawing, encode

pytestmark = BOTH_STORES


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/images/%0A"),
        ("POST", "/images/%0A"),
        ("GET", "/health%0A"),
        ("GET", "/health%0D"),
        ("GET", "/images%00/"),
        ("GET", "/image-count/%0A"),
    ],
)
def test_a_path_with_a_control_character_is_not_found(
    client: TestClient, method: str, path: str
) -> None:
    files = {"file": ("a.png", encode(drawing(seed=1), "PNG"))} if method == "POST" else None

    response = client.request(method, path, files=files)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert client.get("/health").json()["indexed_images"] == 8


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/images/", {"GET", "POST", "DELETE"}),
        ("PUT", "/images/", {"GET", "POST", "DELETE"}),
        ("PUT", "/images/imagen1.jpg", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/health", {"GET"}),
    ],
)
def test_a_wrong_method_gets_405_listing_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)

    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


def test_a_page_number_too_large_for_sqlite_answers_the_last_page(client: TestClient) -> None:
    response = client.get("/images/", params={"page": 9223372036854775809, "page_size": 1})

    assert response.status_code == 200
    assert response.json()["page"] == 8
