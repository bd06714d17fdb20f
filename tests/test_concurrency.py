"""Blocking work never runs on the event loop: /health answers while a search is stuck in
the model."""

import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.embedding.image import ImageTower
from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES

pytestmark = BOTH_STORES


def test_health_answers_while_a_search_is_running(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    entered, release = threading.Event(), threading.Event()
    real_embed = ImageTower.embed

    def held_embed(self, inputs):  # type: ignore[no-untyped-def]
        entered.set()
        assert release.wait(30)
        return real_embed(self, inputs)

    monkeypatch.setattr(ImageTower, "embed", held_embed)
    search_status: list[int] = []
    data = (EXAMPLE_IMAGES / "imagen1.jpg").read_bytes()
    searcher = threading.Thread(
        target=lambda: search_status.append(
            client.post(
                "/search-similar-images/", files={"file": ("q.jpg", data, "image/jpeg")}
            ).status_code
        )
    )
    searcher.start()
    try:
        assert entered.wait(30), "the search never reached the model"
        health_status: list[int] = []
        checker = threading.Thread(
            target=lambda: health_status.append(client.get("/health").status_code)
        )
        checker.start()
        checker.join(10)

        assert health_status == [200], "/health was blocked by the running search"
    finally:
        release.set()
        searcher.join(30)
    assert search_status == [200]
