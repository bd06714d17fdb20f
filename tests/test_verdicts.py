"""The verdict a clerk acts on, through the API: the same brand, the brand plus an
addition either way, or different, on small synthetic pairs verified for real (copies of
the registered drawings on other paper: the thresholds' calibration on re-drawn real
brands is the benchmark's, bench/verdicts.py); and every endpoint's results ordered by
the similarity they show."""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.brand_scans import Redraw, Stroke, make_brand
from tests.conftest import BOTH_STORES, drawing, encode
from tests.test_verification import (
    WITH_ANGLE,
    WITH_BAR,
    plus_a_bar,
    png,
    redrawn,
    search,
    write_registry,
)

VERDICTS = {"same", "contains", "contained", "similar", "different"}


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return write_registry(tmp_path / "registry")


def copy(strokes: list[Stroke], seed: int) -> bytes:
    """The drawing as the registry fixture drew it (``seed``), scanned on white paper."""
    return png(strokes, Redraw(seed=seed, paper="none"))


def verdicts(results: list[dict[str, object]]) -> dict[str, object]:
    return {str(result["id"]): result["verdict"] for result in results}


@BOTH_STORES
def test_a_copy_is_the_same_brand_and_its_sibling_with_another_inner_mark_is_not(
    make_client: Callable[..., TestClient], registry: Path
) -> None:
    client = make_client(images_dir=registry, similarity_threshold=-1)

    results = search(client, copy(WITH_BAR, 1), mode="shape")

    found = verdicts(results)
    assert results[0]["id"] == "with_bar.png" and found["with_bar.png"] == "same"
    # The same ring with an angle where the bar was: only the inner mark differs.
    assert found["with_angle.png"] != "same"
    assert set(found.values()) <= VERDICTS | {None}


@BOTH_STORES
def test_a_brand_plus_a_bar_contains_the_registered_brand_and_the_converse_is_contained(
    make_client: Callable[..., TestClient], registry: Path
) -> None:
    client = make_client(images_dir=registry, similarity_threshold=-1)

    plus = verdicts(search(client, copy(plus_a_bar(make_brand(3)), 13)))
    alone = verdicts(search(client, copy(make_brand(0), 10), mode="shape"))

    assert plus["brand3.png"] == "contains"
    assert alone["brand0.png"] == "same"
    assert alone["brand0_plus_circle.png"] == "contained"


@BOTH_STORES
def test_a_brand_like_no_registered_one_has_no_conflict_and_conflicts_come_first(
    make_client: Callable[..., TestClient], registry: Path
) -> None:
    client = make_client(images_dir=registry, similarity_threshold=-1)

    unrelated = search(client, copy(make_brand(40), 9), mode="shape")
    mixed = search(client, copy(make_brand(0), 10), mode="shape")

    assert unrelated and all(r["verdict"] in ("different", None) for r in unrelated)
    conflicts = [r["verdict"] not in ("different", None) for r in mixed]
    assert conflicts[:2] == [True, True] and conflicts == sorted(conflicts, reverse=True)


def test_results_past_the_verified_candidates_say_they_were_not_verified(
    make_client: Callable[..., TestClient], registry: Path
) -> None:
    client = make_client(images_dir=registry, similarity_threshold=-1, rerank_candidates=2)

    results = search(client, redrawn(WITH_ANGLE, 5), mode="shape", top_k=6)
    concept = search(client, redrawn(WITH_ANGLE, 5), mode="concept")

    assert [r["verdict"] is not None for r in results] == [True, True, False, False, False, False]
    assert all(r["verdict"] is None and r["overlap"] is None for r in concept)


def test_compare_answers_the_verdict_of_the_pair(
    make_client: Callable[..., TestClient], registry: Path
) -> None:
    client = make_client(images_dir=registry)
    upload = {"file": ("q.png", copy(plus_a_bar(make_brand(3)), 13), "image/png")}

    scores = client.post("/images/brand3.png/compare", files=upload).json()
    pair = client.get("/images/brand0.png/compare/brand0_plus_circle.png").json()

    assert scores["verdict"] == "contains" and scores["core_match"] > 0.9
    assert pair["verdict"] == "contains"  # brand0 with a circle holds brand0


def descending(results: list[dict[str, object]]) -> bool:
    scores = [float(result["similarity"]) for result in results]  # type: ignore[arg-type]
    return scores == sorted(scores, reverse=True)


@BOTH_STORES
@pytest.mark.parametrize("mode", ["hybrid", "shape", "concept"])
def test_every_search_lists_its_results_by_the_similarity_it_shows(
    make_client: Callable[..., TestClient], registry: Path, mode: str
) -> None:
    client = make_client(images_dir=registry, similarity_threshold=-1, text_search=True)
    query = redrawn(plus_a_bar(make_brand(3)), 7, paper="none")

    for turns in ("false", "true"):
        results = search(client, query, mode=mode, turns=turns, top_k=12)
        assert len(results) == 11 and descending(results), (mode, turns)  # every image
    similar = client.get("/images/brand0.png/similar", params={"mode": mode, "top_k": 12})
    added = client.post(
        "/images/",
        params={"mode": mode},
        files={"file": ("new.png", encode(drawing(seed=5), "PNG"), "image/png")},
    )
    text = client.post("/search-by-text", json={"text": "a ring", "top_k": 12})

    assert descending(similar.json()["results"])
    assert added.status_code == 201 and descending(added.json()["similar"])
    assert text.status_code == 200 and descending(text.json()["results"])


def test_min_similarity_hides_what_the_listed_similarity_puts_below_it(
    make_client: Callable[..., TestClient], registry: Path
) -> None:
    client = make_client(images_dir=registry)
    query = copy(make_brand(0), 10)

    everything = search(client, query, mode="shape", min_similarity=-1)
    kept = search(client, query, mode="shape", min_similarity=0.9)

    assert kept == [r for r in everything if float(r["similarity"]) >= 0.9]  # type: ignore[arg-type]
    assert {r["id"] for r in kept[:2]} == {"brand0.png", "brand0_plus_circle.png"}
