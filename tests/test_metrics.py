"""GET /metrics in Prometheus format: requests by route and status, latency per route,
the model's batches, search admission, the index and decode refusals move as the service
works."""

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EXAMPLE_IMAGES, drawing, encode

SEARCH = "/search-similar-images/"


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_batches_refusals_and_the_index(client: TestClient) -> None:
    before = samples(client)
    query = (EXAMPLE_IMAGES / "imagen2.jpg").read_bytes()

    for _ in range(3):
        assert client.post(SEARCH, files={"file": ("q.jpg", query)}).status_code == 200
    assert client.post(SEARCH, files={"file": ("q.jpg", b"not an image")}).status_code == 415
    added = client.post("/images/", files={"file": ("n.png", encode(drawing(seed=6), "PNG"))})
    after = samples(client)

    assert added.status_code == 201
    search = {"handler": SEARCH, "method": "POST"}
    grew = value(after, "http_requests_total", status="2xx", **search) - value(
        before, "http_requests_total", status="2xx", **search
    )
    assert grew == 3
    assert (
        value(after, "http_requests_total", status="4xx", **search)
        - value(before, "http_requests_total", status="4xx", **search)
        == 1
    )
    assert (
        value(after, "http_request_duration_seconds_count", **search)
        - value(before, "http_request_duration_seconds_count", **search)
        == 4
    )
    assert (
        value(after, "image_search_model_batch_images_sum")
        - value(before, "image_search_model_batch_images_sum")
        == 4
    )
    assert value(after, "image_search_model_batch_seconds_count") > value(
        before, "image_search_model_batch_seconds_count"
    )
    assert (
        value(after, "image_search_decode_refusals_total", reason="unsupported_format")
        - value(before, "image_search_decode_refusals_total", reason="unsupported_format")
        == 1
    )
    assert value(after, "image_search_images_indexed") == 9
    assert value(after, "image_search_indexing_total") == 8
    assert value(after, "image_search_indexing_done") == 8
    assert value(after, "image_search_searches_in_progress") == 0
    assert ("image_search_searches_refused_total", frozenset()) in after


def test_metrics_are_left_out_of_the_api_documentation(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
