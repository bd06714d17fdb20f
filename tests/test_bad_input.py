"""Bad uploads get a clear 4xx JSON answer, never a crash; every accepted format works."""

import io
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES, drawing, encode

pytestmark = BOTH_STORES

SEARCH = "/search-similar-images/"


def search_with(
    client: TestClient, data: bytes, name: str = "upload.png", content_type: str = "image/png"
):  # type: ignore[no-untyped-def]
    return client.post(SEARCH, files={"file": (name, data, content_type)})


def test_search_with_text_instead_of_an_image_returns_415(client: TestClient) -> None:
    response = search_with(client, b"hello, I am not a picture", "photo.jpg", "image/jpeg")

    assert response.status_code == 415
    assert "not an image" in response.json()["detail"]


def test_search_with_an_empty_file_returns_400(client: TestClient) -> None:
    response = search_with(client, b"")

    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


def test_search_with_truncated_jpeg_returns_400(client: TestClient) -> None:
    data = (EXAMPLE_IMAGES / "imagen1.jpg").read_bytes()

    response = search_with(client, data[: len(data) // 2], "half.jpg", "image/jpeg")

    assert response.status_code == 400
    assert "corrupt or truncated" in response.json()["detail"]


def test_search_with_corrupt_png_returns_400(client: TestClient) -> None:
    data = bytearray(encode(drawing(), "PNG"))
    data[60:90] = b"\x00" * 30  # inside the compressed pixel data

    response = search_with(client, bytes(data))

    assert response.status_code == 400
    assert response.json()["detail"]


def test_search_with_an_unsupported_image_format_returns_415(client: TestClient) -> None:
    response = search_with(client, encode(drawing(64), "ICO"), "icon.ico", "image/x-icon")

    assert response.status_code == 415
    assert "ICO" in response.json()["detail"]


def test_format_is_decided_by_the_bytes_not_the_declared_type(client: TestClient) -> None:
    png_named_as_text = encode(drawing(), "PNG")

    response = search_with(client, png_named_as_text, "notes.txt", "text/plain")

    assert response.status_code == 200


def test_upload_over_the_size_limit_returns_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_mb=0.5)

    response = search_with(client, b"\xff" * (2 * 1024 * 1024))

    assert response.status_code == 413
    assert "MAX_UPLOAD_MB" in response.json()["detail"]


def test_chunked_upload_over_the_limit_is_cut_off_with_413(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_upload_mb=0.5)
    sent: list[int] = []
    boundary = "limit-test"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        for _ in range(64):  # 16 MB in all, without a Content-Length
            sent.append(1)
            yield b"\x00" * (256 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        SEARCH,
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert response.status_code == 413
    assert "MAX_UPLOAD_MB" in response.json()["detail"]


def test_upload_just_under_the_limit_is_accepted(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_mb=1)
    noise = np.random.default_rng(0).integers(0, 255, (500, 600, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    assert 0.8 * 1024 * 1024 < len(data) < 1024 * 1024

    assert search_with(client, data).status_code == 200


def test_decompression_bomb_is_refused_with_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_image_pixels=4_000_000)
    bomb = encode(Image.new("1", (4000, 4000)), "PNG")  # a few kB, 16 million pixels
    assert len(bomb) < 100_000

    response = search_with(client, bomb)

    assert response.status_code == 413
    assert "MAX_IMAGE_PIXELS" in response.json()["detail"]


def test_an_image_needing_more_memory_than_decoding_may_use_is_refused_with_413(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(decode_memory_mb=64)
    webp = encode(Image.new("RGB", (2100, 2100), "white"), "WEBP", lossless=True)  # 67 MB

    response = search_with(client, webp, "query.webp")

    assert response.status_code == 413
    assert "DECODE_MEMORY_MB" in response.json()["detail"]
    assert search_with(client, encode(drawing(), "WEBP"), "query.webp").status_code == 200


def test_pillow_sized_bomb_is_refused_with_413(client: TestClient) -> None:
    # Over twice Pillow's own limit: Pillow refuses it while reading the header.
    bomb = encode(Image.new("1", (15000, 15000)), "PNG")

    response = search_with(client, bomb)

    assert response.status_code == 413


@pytest.mark.parametrize(
    ("image_format", "mode"),
    [
        ("PNG", "RGB"),
        ("JPEG", "RGB"),
        ("GIF", "P"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "L"),
        ("PNG", "I;16"),
        ("TIFF", "CMYK"),
        ("JPEG", "CMYK"),
        ("PNG", "P"),
        ("WEBP", "RGBA"),
        ("PNG", "1"),
    ],
)
def test_search_accepts_every_supported_format_and_mode(
    client: TestClient, image_format: str, mode: str
) -> None:
    image = drawing().convert(mode)

    response = search_with(client, encode(image, image_format), f"query.{image_format.lower()}")

    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) >= 1


def test_animated_gif_is_searched_by_its_first_frame(client: TestClient) -> None:
    query = (EXAMPLE_IMAGES / "imagen2.jpg").read_bytes()
    first = Image.open(io.BytesIO(query)).convert("RGB")
    buffer = io.BytesIO()
    first.save(buffer, format="GIF", save_all=True, append_images=[drawing(first.width, seed=9)])

    results = search_with(client, buffer.getvalue(), "anim.gif", "image/gif").json()["results"]

    assert results[0]["id"] == "imagen2.jpg"
