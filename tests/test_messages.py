"""The service's messages to people answer in Spanish when the request's Accept-Language
prefers it and in English otherwise, from one catalogue per language: every 400, 401,
403, 409, 413, 415, 422 and 503 a clerk can meet, and the message of deletes. Ids,
numbers and setting names stay the same in both."""

import string
import threading
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.embedding.image import ImageTower
from app.messages import en, es
from app.messages.catalogue import negotiate
from tests.conftest import EXAMPLE_IMAGES, drawing, encode

SPANISH = {"Accept-Language": "es-AR,es;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}
REMOTE = ("203.0.113.7", 40000)
KEY = "s3cret-key-for-tests"
SEARCH = "/search-similar-images/"


def image_part(data: bytes, name: str = "marca.png") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "application/octet-stream")}


def sample(name: str = "imagen1.jpg") -> bytes:
    return (EXAMPLE_IMAGES / name).read_bytes()


def placeholders(template: str | dict[str, str]) -> set[str]:
    """The values a template names (every plural form's, for a counted one)."""
    forms = [template] if isinstance(template, str) else list(template.values())
    return {name for form in forms for _, name, _, _ in string.Formatter().parse(form) if name}


def test_both_catalogues_hold_the_same_messages_with_the_same_values() -> None:
    assert en.MESSAGES.keys() == es.MESSAGES.keys()
    for key, template in en.MESSAGES.items():
        assert placeholders(es.MESSAGES[key]) == placeholders(template), key
        assert es.MESSAGES[key] != template or key == "name_and_id", key
        if not isinstance(template, str):  # counted: both languages' forms, one and other
            assert template.keys() == es.MESSAGES[key].keys() == {"one", "other"}, key  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("es", "es"),
        ("es-AR,es;q=0.9,en;q=0.8", "es"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),
        ("fr-FR, fr;q=0.9, es;q=0.5", "es"),
        ("fr", "en"),
        ("es;q=0, en", "en"),
        ("en;q=0.3, ES;q=0.7", "es"),
        ("es;q=oops, en", "en"),
        ("*", "en"),
    ],
)
def test_accept_language_picks_the_language_it_prefers(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_upload_refusals_answer_in_the_language_asked_for(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_upload_mb=0.05, max_image_pixels=40_000)
    big = encode(drawing(size=250), "PNG")  # 62,500 pixels
    cases = [
        (image_part(b""), 400, "El archivo subido está vacío.", "The uploaded file is empty."),
        (image_part(b"not an image" * 9), 415, "no es una imagen", "is not an image"),
        (image_part(big), 413, "supera el límite de 40000 píxeles", "over the limit of 40000"),
        (image_part(b"\0" * 60_000), 413, "supera el límite de 0.05 MB", "larger than the limit"),
    ]
    for files, status, spanish, english in cases:
        for headers, expected in ((SPANISH, spanish), (ENGLISH, english), ({}, english)):
            response = client.post(SEARCH, files=files, headers=headers)
            assert response.status_code == status
            assert expected in response.json()["detail"]

    missing = client.post(SEARCH, data={"x": "1"}, headers=SPANISH)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["msg"] == "Falta este campo"
    assert missing.json()["detail"][0]["type"] == "missing"  # machine-readable, unchanged
    too_many = client.post(SEARCH, params={"top_k": 0}, files=image_part(sample()), headers=SPANISH)
    assert too_many.json()["detail"][0]["msg"] == "Debe ser mayor o igual que 1"
    in_english = client.post(SEARCH, params={"top_k": 0}, files=image_part(sample()))
    assert in_english.json()["detail"][0]["msg"] == "Input should be greater than or equal to 1"


def test_a_duplicate_and_deletes_name_the_image_in_the_language_asked_for(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    data = encode(drawing(seed=21), "PNG")
    added = client.post("/images/", files=image_part(data), data={"label": "Reg. 5 - Peña"})
    image_id = added.json()["image"]["id"]

    spanish = client.post("/images/", files=image_part(data), headers=SPANISH)
    english = client.post("/images/", files=image_part(data))
    same_bytes = client.post("/images/", files=image_part(sample()), headers=SPANISH)

    assert spanish.status_code == english.status_code == same_bytes.status_code == 409
    assert spanish.json()["detail"] == (
        f"El registro ya tiene esta marca: Reg. 5 - Peña (id {image_id})."
    )
    assert english.json()["detail"] == (
        f"The collection already holds this image: Reg. 5 - Peña (id {image_id})."
    )
    assert same_bytes.json()["detail"] == "El registro ya tiene esta marca: imagen1.jpg."

    deleted = client.delete(f"/images/{image_id}", headers=SPANISH).json()["message"]
    assert deleted == f"Se borró Reg. 5 - Peña (id {image_id})."
    assert client.delete("/images/imagen2.jpg").json()["message"] == "Deleted imagen2.jpg."
    refused = client.delete("/images/", headers=SPANISH)
    assert refused.status_code == 400
    assert "hace falta confirm=true" in refused.json()["detail"]
    everything = client.delete("/images/", params={"confirm": "true"}, headers=SPANISH)
    assert everything.json()["message"].startswith("Se borraron las 7 marcas del registro.")
    assert everything.json()["deleted"] == 7


def test_refused_writes_answer_in_the_language_asked_for(
    make_client: Callable[..., TestClient],
) -> None:
    open_service = make_client(client=REMOTE)
    keyed = make_client(client=REMOTE, api_key=KEY)
    local = make_client()
    foreign_page = {**SPANISH, "Origin": "http://evil.example"}

    no_key = open_service.post("/reindex", headers=SPANISH)
    wrong_key = keyed.post("/reindex", headers={**SPANISH, "X-API-Key": "wrong"})
    missing_key = keyed.post("/reindex")
    cross_site = local.post("/reindex", headers=foreign_page)

    assert no_key.status_code == 403
    assert no_key.json()["detail"].startswith(
        "Este cliente (203.0.113.7) está fuera de WRITE_ALLOWED_NETWORKS"
    )
    assert wrong_key.status_code == 401
    assert "clave equivocada" in wrong_key.json()["detail"]
    assert wrong_key.headers["WWW-Authenticate"] == "X-API-Key"
    assert missing_key.status_code == 401
    assert "sent no X-API-Key header" in missing_key.json()["detail"]
    assert cross_site.status_code == 403
    assert cross_site.json()["detail"].startswith(
        "Esta petición viene de una página de http://evil.example"
    )


def test_text_search_refusals_answer_in_the_language_asked_for(client: TestClient) -> None:
    empty = client.post("/search-by-text", json={"text": "  "}, headers=SPANISH)
    long = client.post("/search-by-text", json={"text": "x" * 2000}, headers=SPANISH)
    english = client.post("/search-by-text", json={"text": "  "})

    assert empty.status_code == long.status_code == english.status_code == 422
    assert empty.json()["detail"].startswith("El texto está vacío")
    assert long.json()["detail"].startswith("El texto tiene 2000 caracteres")
    assert english.json()["detail"].startswith("The text is empty")


def test_a_search_while_indexing_answers_503_in_the_language_asked_for(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_embed = ImageTower.embed

    def held_embed(tower: ImageTower, inputs: list[np.ndarray]) -> np.ndarray:
        assert release.wait(30)
        return real_embed(tower, inputs)

    monkeypatch.setattr(ImageTower, "embed", held_embed)
    client = make_client(wait=False)
    try:
        spanish = client.post(SEARCH, files=image_part(sample()), headers=SPANISH)
        english = client.post(SEARCH, files=image_part(sample()))
    finally:
        release.set()

    assert spanish.status_code == english.status_code == 503
    assert spanish.json()["detail"].startswith("Se está indexando el registro (")
    assert english.json()["detail"].startswith("The collection is being indexed (")
    assert "Retry-After" in spanish.headers
