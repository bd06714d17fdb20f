"""Who may change the collection: the X-API-Key holder, or loopback clients when no
API_KEY is set. Searches and reads stay open."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.api.dependencies import is_loopback
from tests.conftest import EXAMPLE_IMAGES, drawing, encode

REMOTE = ("203.0.113.7", 40000)
KEY = "s3cret-key-for-tests"


def new_image(seed: int = 3) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("new.png", encode(drawing(seed=seed), "PNG"), "image/png")}


def writes(client: TestClient, headers: dict[str, str] | None = None) -> list[int]:
    return [
        client.post("/images/", files=new_image(), headers=headers).status_code,
        client.post("/add-image/", files=new_image(4), headers=headers).status_code,
        client.delete("/images/imagen1.jpg", headers=headers).status_code,
        client.post("/reindex", headers=headers).status_code,
        client.delete("/images/", params={"confirm": "true"}, headers=headers).status_code,
    ]


def test_without_api_key_remote_clients_cannot_change_the_collection(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(client=REMOTE)

    assert writes(client) == [403] * 5
    assert "API_KEY" in client.post("/reindex").json()["detail"]
    assert client.get("/health").json()["indexed_images"] == 8


def test_without_api_key_remote_clients_can_still_search_and_read(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(client=REMOTE)
    data = (EXAMPLE_IMAGES / "imagen2.jpg").read_bytes()

    search = client.post("/search-similar-images/", files={"file": ("q.jpg", data, "image/jpeg")})

    assert search.status_code == 200
    assert client.get("/images/").status_code == 200
    assert client.get("/images/imagen2.jpg").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_without_api_key_loopback_clients_may_change_the_collection(
    make_client: Callable[..., TestClient], host: str
) -> None:
    client = make_client(client=(host, 40000))

    assert writes(client) == [201, 201, 200, 200, 200]


def test_without_api_key_start_up_logs_a_warning(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    make_client()

    assert any(
        record.levelname == "WARNING" and "API_KEY" in record.getMessage()
        for record in caplog.records
    )


def test_with_api_key_writes_without_the_right_header_return_401(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_key=KEY)  # loopback, which the key overrides

    assert writes(client) == [401] * 5
    assert writes(client, {"X-API-Key": KEY + "x"}) == [401] * 5
    assert writes(client, {"X-API-Key": ""}) == [401] * 5
    assert client.get("/health").json()["indexed_images"] == 8


def test_with_api_key_writes_with_it_succeed_from_anywhere(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_key=KEY, client=REMOTE)

    assert writes(client, {"X-API-Key": KEY}) == [201, 201, 200, 200, 200]


def test_api_key_header_is_documented_as_a_security_scheme(
    make_client: Callable[..., TestClient],
) -> None:
    schema = make_client().get("/openapi.json").json()

    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert "security" in schema["paths"]["/images/"]["post"]
    assert "security" not in schema["paths"]["/search-similar-images/"]["post"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("172.17.0.1", False),
        ("testclient", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_means_this_machine_only(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected
