"""Searches running alongside adds and deletes never fail and never see half an update."""

import threading
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES, drawing, encode

pytestmark = BOTH_STORES

SEARCH = "/search-similar-images/"
ORIGINALS = [f"imagen{number}.jpg" for number in range(1, 9)]


def ranked_in_order(results: list[dict[str, object]]) -> bool:
    """Verified results first, by overlap; then the others, by the first stage's score."""
    verified = [r["overlap"] for r in results if r["overlap"] is not None]
    rest = [r["similarity"] for r in results[len(verified) :]]
    return (
        all(r["overlap"] is not None for r in results[: len(verified)])
        and verified == sorted(verified, reverse=True)  # type: ignore[type-var]
        and rest == sorted(rest, reverse=True)  # type: ignore[type-var]
    )


def test_concurrent_searches_while_adding_and_deleting_all_succeed_consistently(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    queries = {name: (EXAMPLE_IMAGES / name).read_bytes() for name in ORIGINALS}
    added: list[str] = []
    kept: list[str] = []
    problems: list[str] = []
    memberships: list[set[str]] = []

    def writer() -> None:
        for seed in range(8):
            data = encode(drawing(seed=100 + seed), "PNG")
            response = client.post("/images/", files={"file": ("new.png", data, "image/png")})
            if response.status_code != 201:
                problems.append(f"add answered {response.status_code}")
                return
            image_id = response.json()["image"]["id"]
            added.append(image_id)
            if seed % 2:
                kept.append(image_id)
            elif client.delete(f"/images/{image_id}").status_code != 200:
                problems.append(f"delete of {image_id} failed")

    def searcher(offset: int) -> None:
        for round_number in range(12):
            name = ORIGINALS[(offset + round_number) % len(ORIGINALS)]
            response = client.post(
                SEARCH,
                files={"file": (name, queries[name], "image/jpeg")},
                params={"top_k": 100, "min_similarity": -1},
            )
            if response.status_code != 200:
                problems.append(f"search answered {response.status_code}")
                continue
            results = response.json()["results"]
            ids = [result["id"] for result in results]
            if ids[0] != name or len(set(ids)) != len(ids) or not ranked_in_order(results):
                problems.append(f"inconsistent results for {name}: {ids}")
            if not 8 <= len(ids) <= 16:
                problems.append(f"unexpected membership for {name}: {ids}")
            memberships.append(set(ids))  # checked once every add has answered

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=searcher, args=(offset,)) for offset in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert problems == []
    assert len(added) == 8
    assert all(ids <= set(ORIGINALS) | set(added) for ids in memberships)
    final = client.post(
        SEARCH,
        files={"file": ("q.jpg", queries["imagen1.jpg"], "image/jpeg")},
        params={"top_k": 100, "min_similarity": -1},
    ).json()["results"]
    assert {result["id"] for result in final} == set(ORIGINALS) | set(kept)
