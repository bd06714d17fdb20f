"""Who may change the collection: clients in WRITE_ALLOWED_NETWORKS (loopback by
default), and any client sending API_KEY in X-API-Key. Searches and reads stay open.
Behind a reverse proxy, the client is X-Forwarded-For's only when uvicorn trusts the
proxy."""

import ipaddress
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.dependencies import in_networks
from app.config import Settings
from app.errors import ConfigError
from tests.conftest import EXAMPLE_IMAGES, drawing, encode
from tests.servers import Server

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
    detail = client.post("/reindex").json()["detail"]
    assert "203.0.113.7" in detail
    assert "WRITE_ALLOWED_NETWORKS" in detail and "API_KEY" in detail
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


def test_with_api_key_writes_from_outside_the_networks_without_the_right_header_return_401(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_key=KEY, client=REMOTE)

    assert writes(client) == [401] * 5
    detail = client.post("/reindex").json()["detail"]
    assert "X-API-Key" in detail and "WRITE_ALLOWED_NETWORKS" in detail
    assert "wrong" in client.post("/reindex", headers={"X-API-Key": "nope"}).json()["detail"]
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


def test_with_api_key_clients_in_the_allowed_networks_still_write_without_it(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_key=KEY)  # loopback, in the default networks

    assert writes(client) == [201, 201, 200, 200, 200]


def test_with_no_allowed_networks_even_this_machine_needs_the_key(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_key=KEY, write_allowed_networks="")

    assert writes(client) == [401] * 5
    assert writes(client, {"X-API-Key": KEY}) == [201, 201, 200, 200, 200]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("10.1.2.3", True), ("192.168.1.77", True), ("203.0.113.7", False), ("127.0.0.1", False)],
)
def test_clients_in_write_allowed_networks_write_without_a_key(
    make_client: Callable[..., TestClient], host: str, allowed: bool
) -> None:
    client = make_client(client=(host, 40000), write_allowed_networks="10.0.0.0/8, 192.168.1.0/24")

    assert writes(client) == ([201, 201, 200, 200, 200] if allowed else [403] * 5)


@pytest.mark.parametrize("value", ["10.0.0.0/33", "intranet", "10.1.2.3/8"])
def test_an_invalid_network_stops_start_up_naming_the_setting(
    make_settings: Callable[..., Settings], value: str
) -> None:
    with pytest.raises(ConfigError, match="WRITE_ALLOWED_NETWORKS"):
        make_settings(write_allowed_networks=value)


LOOPBACK_NETWORKS = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


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
def test_the_default_networks_mean_this_machine_only(host: str | None, expected: bool) -> None:
    assert in_networks(host, LOOPBACK_NETWORKS) is expected


INTRANET = {"WRITE_ALLOWED_NETWORKS": "10.0.0.0/8"}


def post_through_a_proxy(server: Server, forwarded_for: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/images/",
        files=new_image(seed=int(forwarded_for.split(".")[-1])),
        headers={"X-Forwarded-For": forwarded_for},
    )


def test_behind_a_trusted_proxy_the_client_is_the_forwarded_address(
    start_server: Callable[..., Server],
) -> None:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise.
    server = start_server(INTRANET)

    inside = post_through_a_proxy(server, "10.9.8.7")
    outside = post_through_a_proxy(server, "203.0.113.9")

    assert inside.status_code == 201
    assert outside.status_code == 403 and "203.0.113.9" in outside.json()["detail"]


def test_behind_an_untrusted_proxy_the_forwarded_address_is_ignored(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(INTRANET, ("--forwarded-allow-ips", "192.0.2.1"))  # another proxy

    spoofed = post_through_a_proxy(server, "10.9.8.7")

    assert spoofed.status_code == 403 and "127.0.0.1" in spoofed.json()["detail"]


ALL_REFUSED = [403] * 5
ALL_APPLIED = [201, 201, 200, 200, 200]


@pytest.mark.parametrize(
    "page",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:3000.evil.example"},
        {"Referer": "https://evil.example/registro?x=1"},
    ],
)
def test_writes_sent_by_a_page_on_another_site_are_refused_whatever_the_network_or_key(
    make_client: Callable[..., TestClient], page: dict[str, str]
) -> None:
    client = make_client(api_key=KEY)  # loopback, in the allowed networks, and with the key

    assert writes(client, page) == ALL_REFUSED
    assert writes(client, {**page, "X-API-Key": KEY}) == ALL_REFUSED
    detail = client.post("/reindex", headers=page).json()["detail"]
    assert "CORS_ORIGINS" in detail
    assert ("evil.example" in detail) or ("null" in detail)
    assert client.get("/health").json()["indexed_images"] == 8


def test_a_page_on_another_site_may_still_search(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    data = (EXAMPLE_IMAGES / "imagen2.jpg").read_bytes()

    search = client.post(
        "/search-similar-images/",
        files={"file": ("q.jpg", data, "image/jpeg")},
        headers={"Origin": "http://evil.example"},
    )

    assert search.status_code == 200


@pytest.mark.parametrize(
    "page",
    [
        {"Origin": "http://localhost:3000"},  # the default CORS_ORIGINS
        {"Origin": "http://testserver"},  # the service's own page
        {"Referer": "http://testserver/"},
        {"Origin": "https://registro.example.org"},  # matched by CORS_ORIGIN_REGEX
        {"Origin": "https://api.example.org:443"},  # PUBLIC_BASE_URL's, default port written
    ],
)
def test_writes_from_the_frontend_or_the_service_own_page_are_applied(
    make_client: Callable[..., TestClient], page: dict[str, str]
) -> None:
    client = make_client(
        cors_origin_regex=r"https://[a-z]+\.example\.org",
        public_base_url="https://api.example.org",
    )

    assert writes(client, page) == ALL_APPLIED


def test_a_long_forwarded_address_is_cut_short_in_the_refusal(
    start_server: Callable[..., Server],
) -> None:
    server = start_server({"API_KEY": KEY})

    answer = post_through_a_proxy(server, "10." * 1400 + "1")

    assert answer.status_code == 401
    assert len(answer.json()["detail"]) < 400
