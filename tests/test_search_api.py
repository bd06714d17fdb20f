"""The search contract as a client sees it: status codes, ranking, bodies, URLs."""

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.imaging import grid_removal
from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES

pytestmark = BOTH_STORES

SEARCH = "/search-similar-images/"


def upload(path: Path) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (path.name, path.read_bytes(), "image/jpeg")}


def test_search_answers_with_the_original_contract_plus_an_absolute_url(client: TestClient) -> None:
    response = client.post(SEARCH, files=upload(EXAMPLE_IMAGES / "imagen3.jpg"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results"}
    first = body["results"][0]
    assert set(first) == {
        "id",
        "similarity",
        "distance",
        "concept_similarity",
        "registered_covered",
        "query_covered",
        "overlap",
        "core_match",
        "verdict",
        "shape_similarity",
        "turn",
        "path",
        "url",
        "original_filename",
        "label",
        "name",
    }
    assert first["id"] == "imagen3.jpg"
    assert first["path"].endswith("/images/imagen3.jpg")
    assert first["url"] == "http://testserver/static/imagen3.jpg"


def test_default_folder_paths_look_like_the_original(
    make_client: Callable[..., TestClient], images_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(images_dir.parent)
    client = make_client(images_dir=Path("./images"))

    result = client.post(SEARCH, files=upload(EXAMPLE_IMAGES / "imagen2.jpg")).json()["results"][0]

    assert result["path"] == "./images/imagen2.jpg"


def test_the_same_image_comes_back_first_with_similarity_one(client: TestClient) -> None:
    for number in (1, 5, 8):
        results = client.post(SEARCH, files=upload(EXAMPLE_IMAGES / f"imagen{number}.jpg")).json()

        assert results["results"][0]["id"] == f"imagen{number}.jpg"
        assert results["results"][0]["similarity"] >= 0.999


def test_results_are_sorted_best_first_and_respect_top_k(client: TestClient) -> None:
    response = client.post(
        SEARCH,
        params={"top_k": 3, "min_similarity": -1},
        files=upload(EXAMPLE_IMAGES / "imagen1.jpg"),
    )

    similarities = [result["similarity"] for result in response.json()["results"]]
    assert len(similarities) == 3
    assert similarities == sorted(similarities, reverse=True)


def test_default_top_k_comes_from_settings(make_client: Callable[..., TestClient]) -> None:
    client = make_client(top_k=2, similarity_threshold=-1)

    results = client.post(SEARCH, files=upload(EXAMPLE_IMAGES / "imagen1.jpg")).json()["results"]

    assert len(results) == 2


def test_top_k_above_the_maximum_is_capped(make_client: Callable[..., TestClient]) -> None:
    client = make_client(top_k=3, max_top_k=4)

    response = client.post(
        SEARCH,
        params={"top_k": 50, "min_similarity": -1},
        files=upload(EXAMPLE_IMAGES / "imagen1.jpg"),
    )

    assert response.status_code == 200
    assert len(response.json()["results"]) == 4


def test_min_similarity_leaves_out_weaker_results(client: TestClient) -> None:
    everything = client.post(
        SEARCH,
        params={"top_k": 8, "min_similarity": -1},
        files=upload(EXAMPLE_IMAGES / "imagen1.jpg"),
    ).json()["results"]
    cut = (everything[1]["similarity"] + everything[2]["similarity"]) / 2

    kept = client.post(
        SEARCH,
        params={"top_k": 8, "min_similarity": cut},
        files=upload(EXAMPLE_IMAGES / "imagen1.jpg"),
    ).json()["results"]

    assert [result["id"] for result in kept] == [result["id"] for result in everything[:2]]
    assert all(result["similarity"] >= cut for result in kept)


@pytest.mark.parametrize(
    "params",
    [
        {"top_k": 0},
        {"top_k": -3},
        {"top_k": "many"},
        {"min_similarity": 1.5},
        {"min_similarity": -2},
        {"min_similarity": "nan"},
        {"min_similarity": "high"},
    ],
)
def test_search_with_invalid_parameters_returns_422(
    client: TestClient, params: dict[str, str | int | float]
) -> None:
    response = client.post(SEARCH, params=params, files=upload(EXAMPLE_IMAGES / "imagen1.jpg"))

    assert response.status_code == 422
    assert "detail" in response.json()


def test_search_without_a_file_field_returns_422(client: TestClient) -> None:
    response = client.post(SEARCH, files={"image": ("a.jpg", b"123", "image/jpeg")})

    assert response.status_code == 422


def test_urls_use_public_base_url_when_set(make_client: Callable[..., TestClient]) -> None:
    client = make_client(public_base_url="https://brands.example.org/api/")

    result = client.post(SEARCH, files=upload(EXAMPLE_IMAGES / "imagen1.jpg")).json()["results"][0]

    assert result["url"] == "https://brands.example.org/api/static/imagen1.jpg"


def test_grid_removal_runs_on_indexed_and_query_images(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_shapes: list[tuple[int, ...]] = []
    real_cleaned = grid_removal.cleaned

    def recording_cleaned(image, params):  # type: ignore[no-untyped-def]
        seen_shapes.append(image.shape)
        return real_cleaned(image, params)

    monkeypatch.setattr(grid_removal, "cleaned", recording_cleaned)
    client = make_client()
    assert len(seen_shapes) == 8  # every indexed image

    client.post(SEARCH, files=upload(EXAMPLE_IMAGES / "imagen1.jpg"))

    assert len(seen_shapes) == 9  # and the query


def test_grid_removal_can_be_switched_off(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(grid_removal, "cleaned", lambda image, params: calls.append(1))
    client = make_client(grid_removal=False)

    response = client.post(SEARCH, files=upload(EXAMPLE_IMAGES / "imagen1.jpg"))

    assert response.status_code == 200
    assert calls == []


def test_health_reports_model_inference_dimension_text_search_and_image_count(
    client: TestClient, tiny_model_dir: Path
) -> None:
    body = client.get("/health").json()

    assert body == {
        "status": "ok",
        "problem": None,
        "model": str(tiny_model_dir),
        "inference": "onnx",
        "embedding_dimension": 24,
        "text_search": True,
        "indexed_images": 8,
        "indexing": {"running": False, "done": 8, "total": 8, "seconds_left": None},
        "search_defaults": {
            "top_k": 10,
            "max_top_k": 100,
            "min_similarity": 0.5,
            "mode": "hybrid",
        },
    }


def test_health_gives_the_search_defaults_a_client_starts_its_controls_at(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(top_k=7, max_top_k=40, similarity_threshold=0.3, search_mode="shape")

    defaults = client.get("/health").json()["search_defaults"]

    assert defaults == {"top_k": 7, "max_top_k": 40, "min_similarity": 0.3, "mode": "shape"}


def test_static_serves_collection_images(client: TestClient) -> None:
    response = client.get("/static/imagen4.jpg")

    assert response.status_code == 200
    assert response.content == (EXAMPLE_IMAGES / "imagen4.jpg").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/..%2Fsecret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2Fetc%2Fpasswd",
    ],
)
def test_static_refuses_paths_outside_the_folder(
    client: TestClient, images_dir: Path, path: str
) -> None:
    (images_dir.parent / "secret.txt").write_text("top secret")

    response = client.get(path)

    assert response.status_code == 404
    assert b"top secret" not in response.content


def test_openapi_documents_every_answer_of_search(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    answers = spec["paths"][SEARCH]["post"]["responses"]
    assert {"200", "400", "413", "415", "422"} <= set(answers)
    schema = spec["components"]["schemas"]["SearchResponse"]
    assert schema["examples"][0]["results"][0]["id"] == "imagen1.jpg"


def test_cors_preflight_from_an_allowed_origin_succeeds(client: TestClient) -> None:
    response = client.options(
        SEARCH,
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_cors_preflight_from_another_origin_gets_no_cors_headers(client: TestClient) -> None:
    response = client.options(
        SEARCH,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert "access-control-allow-origin" not in response.headers


def test_cors_origin_regex_admits_matching_origins(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origin_regex=r"https://.*\.brands\.example")

    response = client.post(
        SEARCH,
        headers={"Origin": "https://preview-12.brands.example"},
        files=upload(EXAMPLE_IMAGES / "imagen1.jpg"),
    )

    assert response.headers["access-control-allow-origin"] == "https://preview-12.brands.example"


def test_cors_origins_setting_accepts_a_comma_separated_list(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(cors_origins="http://a.example, https://b.example")

    response = client.get("/health", headers={"Origin": "https://b.example"})

    assert response.headers["access-control-allow-origin"] == "https://b.example"


def test_preprocess_returns_the_png_the_embedder_sees(client: TestClient) -> None:
    data = (EXAMPLE_IMAGES / "imagen7.jpg").read_bytes()

    response = client.post("/preprocess", files={"file": ("q.jpg", data, "image/jpeg")})

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    seen = Image.open(io.BytesIO(response.content))
    assert seen.format == "PNG"
    assert seen.size == (224, 224)
    grey = np.asarray(seen.convert("L"))
    # Plain white paper with dark ink: the grid's mid-grey lines are gone.
    assert ((grey > 100) & (grey < 230)).mean() < 0.03
    assert (grey < 100).mean() > 0.02


def test_preprocess_refuses_what_search_refuses(client: TestClient) -> None:
    response = client.post("/preprocess", files={"file": ("q.txt", b"no image", "text/plain")})

    assert response.status_code == 415
