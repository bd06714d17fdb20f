"""What a hostile client cannot do with a request: see the folder's hidden or unfinished
files, make a browser run a served file as a page, have a megabyte echoed back, or forge
a line of the log."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import drawing, encode
from tests.servers import Server


@pytest.mark.parametrize(
    "name", [".incoming-0a1b2c.png", ".deleting-imagen2.jpg", ".collection-id", ".hidden.jpg"]
)
def test_hidden_and_unfinished_files_of_the_folder_are_never_served(
    client: TestClient, images_dir: Path, name: str
) -> None:
    if not (images_dir / name).exists():  # the collection's marker is there already
        (images_dir / name).write_bytes((images_dir / "imagen1.jpg").read_bytes())

    assert client.get(f"/static/{name}").status_code == 404
    assert client.get(f"/static/%2E{name[1:]}").status_code == 404
    assert name not in {image["id"] for image in client.get("/images/").json()["images"]}
    assert client.get("/static/imagen1.jpg").status_code == 200


def test_every_answer_tells_browsers_not_to_guess_its_type(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_upload_mb=1)
    answers = [
        client.get("/health"),
        client.get("/"),
        client.get("/static/imagen1.jpg"),
        client.get("/static/nothing.jpg"),
        client.get("/images/nothing.jpg"),
        client.post("/search-similar-images/", files={"file": ("a.png", b"x" * 2_000_000)}),
        client.options(
            "/images/",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        ),
    ]

    assert [answer.headers.get("x-content-type-options") for answer in answers] == [
        "nosniff"
    ] * len(answers)
    assert answers[5].status_code == 413


def test_an_image_with_a_page_appended_is_served_as_an_image(client: TestClient) -> None:
    data = encode(drawing(seed=5), "PNG") + b"<html><script>alert(1)</script></html>"

    added = client.post("/images/", files={"file": ("page.html", data, "text/html")})

    assert added.status_code == 201
    served = client.get(f"/static/{added.json()['image']['id']}")
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"


def test_an_invalid_field_of_a_megabyte_is_echoed_cut_short(client: TestClient) -> None:
    answer = client.post("/search-by-text", json={"text": "a brand", "top_k": "9" * 900_000})

    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "top_k"]
    assert error["input"].startswith("999") and len(error["input"]) <= 81
    assert len(answer.content) < 2_000


FORGED = "2026-01-01 00:00:00,000 WARNING app.collection: Deleted the whole collection"


def test_control_characters_in_a_request_path_cannot_forge_a_log_line(
    start_server: Callable[..., Server],
) -> None:
    server = start_server({"LOG_LEVEL": "INFO"})

    answer = httpx.get(f"{server.url}/x%0A{FORGED.replace(' ', '%20')}%0D%1B[31m")
    time.sleep(0.5)  # the reader's last lines

    assert answer.status_code == 404
    assert not [line for line in server.log if line.startswith("2026-01-01")]
    (logged,) = [line for line in server.log if "GET /x" in line]
    assert "/x\\n2026-01-01" in logged and "\\r\\x1b[31m 404" in logged


@pytest.mark.parametrize(
    "name", ["page.html", "x.svg", "sub/page.html", "sub/imagen1.jpg", "notes.txt"]
)
def test_static_serves_the_collections_raster_images_only(
    client: TestClient, images_dir: Path, name: str
) -> None:
    (images_dir / "sub").mkdir()
    (images_dir / name).write_text("<svg onload='alert(1)'/>")

    answer = client.get(f"/static/{name}")

    assert answer.status_code == 404
    assert (
        "html" not in answer.headers["content-type"] and "svg" not in answer.headers["content-type"]
    )
    assert client.get("/static/imagen1.jpg").headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/search-by-text", '{"text": "x", "min_similarity": NaN}'),
        ("POST", "/search-by-text", '{"text": "x", "top_k": Infinity}'),
        ("POST", "/search-by-text", '{"text": "x", "min_similarity": 1e400}'),
        ("POST", "/search-by-text", '{"text": "x", "top_k": -Infinity}'),
        ("PATCH", "/images/imagen1.jpg", '{"label": NaN}'),
    ],
)
def test_a_number_json_cannot_hold_is_refused_with_422_not_500(
    client: TestClient, method: str, path: str, body: str
) -> None:
    answer = client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_a_whole_number_written_with_a_decimal_point_is_a_whole_number(client: TestClient) -> None:
    answer = client.post("/search-by-text", json={"text": "a ring", "top_k": 5.0})
    refused = client.post("/search-by-text", json={"text": "a ring", "top_k": 5.5})
    flag = client.post("/search-by-text", json={"text": "a ring", "top_k": True})

    assert answer.status_code == 200 and len(answer.json()["results"]) == 5
    assert refused.status_code == flag.status_code == 422


def test_a_page_on_a_rebound_host_name_can_neither_read_nor_change_the_collection(
    client: TestClient, images_dir: Path
) -> None:
    rebound = {
        "Host": "evil.example:8000",
        "Origin": "http://evil.example:8000",
        "Accept-Language": "es",
    }
    upload = {"file": ("n.png", encode(drawing(seed=62), "PNG"), "image/png")}

    answers = [
        client.delete("/images/", params={"confirm": "true"}, headers=rebound),
        client.post("/images/", files=upload, headers=rebound),
        client.get("/images/", headers=rebound),
        client.get("/static/imagen1.jpg", headers=rebound),
    ]

    assert [answer.status_code for answer in answers] == [400] * 4
    assert "'evil.example'" in answers[0].json()["detail"]
    assert "ALLOWED_HOSTS" in answers[0].json()["detail"]
    assert answers[0].json()["detail"].startswith("Este servicio no responde")
    assert client.get("/images/").json()["total"] == 8
    assert len([path for path in images_dir.iterdir() if path.suffix == ".jpg"]) == 8


def test_the_loopback_names_are_the_service_by_default_and_no_other(
    start_server: Callable[..., Server],
) -> None:
    server = start_server({})

    def status(host: str) -> int:
        return httpx.get(f"{server.url}/health", headers={"Host": host}).status_code

    assert [status(f"{name}:{server.port}") for name in ("127.0.0.1", "localhost", "[::1]")] == [
        200
    ] * 3
    assert [status(name) for name in ("evil.example", "localhost.evil.example", "")] == [400] * 3


def test_public_base_urls_name_and_listed_names_are_the_service(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(
        public_base_url="https://marcas.example.org/servicio",
        allowed_hosts="testserver, *.registro.example",
    )

    def status(host: str) -> int:
        return client.get("/images/", headers={"Host": host}).status_code

    assert status("marcas.example.org") == 200
    assert status("MARCAS.example.org:443") == 200
    assert status("oficina.registro.example:8000") == 200
    assert status("registro.example") == 400
    assert status("localhost") == 400  # listing names replaces the default ones
