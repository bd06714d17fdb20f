"""Shape-aware ranking as a client sees it: modes, turns, similar-to-an-image, stored
shape vectors, and the evaluation command."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import encoder as encoder_module
from app.config import Settings
from app.errors import ConfigError
from app.imaging import shape
from bench.brand_scans import Redraw, draw_scan, make_brand, redraw_like_another_hand
from tests.conftest import BOTH_STORES, encode
from tests.servers import run_command
from tests.test_persistence import EmbedCounter

pytestmark = BOTH_STORES

SEARCH = "/search-similar-images/"
BRANDS = 10


def scan_bytes(brand: int, redraw: Redraw) -> bytes:
    from PIL import Image

    return encode(Image.fromarray(draw_scan(make_brand(brand), redraw)), "PNG")


@pytest.fixture
def brands_dir(tmp_path: Path) -> Path:
    """Ten registered brands, each scanned once."""
    folder = tmp_path / "brands"
    folder.mkdir()
    for brand in range(BRANDS):
        (folder / f"brand{brand}.png").write_bytes(
            scan_bytes(brand, Redraw(seed=brand, paper="light_grey", fill=0.6))
        )
    return folder


@pytest.fixture
def brands(make_client: Callable[..., TestClient], brands_dir: Path) -> TestClient:
    return make_client(images_dir=brands_dir, similarity_threshold=-1, top_k=BRANDS)


def redrawn(brand: int, seed: int, **changes: object) -> bytes:
    rng = np.random.default_rng(seed)
    return scan_bytes(brand, redraw_like_another_hand(seed, rng, **changes))


def search(client: TestClient, data: bytes, **params: object) -> list[dict[str, object]]:
    response = client.post(SEARCH, params=params, files={"file": ("q.png", data, "image/png")})
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


def test_a_redrawn_brand_ranks_its_original_first_in_shape_mode(brands: TestClient) -> None:
    for brand, seed in ((2, 101), (5, 102), (7, 103)):
        results = search(
            brands, redrawn(brand, seed, paper="dark_broken", border=True), mode="shape"
        )

        assert results[0]["id"] == f"brand{brand}.png"
        assert results[0]["turn"] is None


def test_each_mode_ranks_by_its_own_score_and_reports_both_components(
    make_client: Callable[..., TestClient], brands_dir: Path
) -> None:
    # Without the verification stage, which re-orders its candidates by overlap.
    client = make_client(
        images_dir=brands_dir,
        similarity_threshold=-1,
        top_k=BRANDS,
        hybrid_concept_weight=0.25,
        rerank_candidates=0,
    )
    data = redrawn(4, 7)

    for mode in ("concept", "shape", "hybrid"):
        results = search(client, data, mode=mode)
        scores = [float(result["similarity"]) for result in results]  # type: ignore[arg-type]
        assert scores == sorted(scores, reverse=True)
        for result in results:
            concept, shape = float(result["concept_similarity"]), float(result["shape_similarity"])  # type: ignore[arg-type]
            expected = {"concept": concept, "shape": shape, "hybrid": 0.25 * concept + 0.75 * shape}
            assert result["similarity"] == pytest.approx(expected[mode], abs=1e-5)


def test_the_default_mode_comes_from_search_mode(
    make_client: Callable[..., TestClient], brands_dir: Path
) -> None:
    # The first stage alone: a verified result's similarity is its overlap.
    client = make_client(
        images_dir=brands_dir, similarity_threshold=-1, search_mode="shape", rerank_candidates=0
    )

    result = search(client, redrawn(1, 3))[0]

    assert result["similarity"] == pytest.approx(result["shape_similarity"], abs=1e-5)


@pytest.mark.parametrize(("turn", "seed"), [("rot90", 11), ("rot180", 12), ("mirror", 13)])
def test_a_turned_brand_is_found_with_turns_and_reports_the_turn(
    brands: TestClient, turn: str, seed: int
) -> None:
    data = redrawn(6, seed, turn=turn, paper="blue")

    found = search(brands, data, mode="shape", turns="true")

    assert found[0]["id"] == "brand6.png"
    # The query was turned by `turn`; turning it back is the inverse turn.
    inverse = {"rot90": "rot270", "rot180": "rot180", "mirror": "mirror"}[turn]
    assert found[0]["turn"] == inverse


def test_similar_to_a_collection_image_never_lists_itself(brands: TestClient) -> None:
    response = brands.get("/images/brand3.png/similar", params={"top_k": 4, "mode": "shape"})

    assert response.status_code == 200
    ids = [result["id"] for result in response.json()["results"]]
    assert len(ids) == 4
    assert "brand3.png" not in ids


def test_similar_to_a_copy_finds_the_copy_first(brands: TestClient, brands_dir: Path) -> None:
    added = brands.post(
        "/images/", files={"file": ("copy.png", redrawn(8, 21, paper="none"), "image/png")}
    ).json()["image"]["id"]

    results = brands.get(f"/images/{added}/similar", params={"mode": "shape"}).json()["results"]

    assert results[0]["id"] == "brand8.png"


def test_similar_to_an_unknown_image_answers_404(brands: TestClient) -> None:
    response = brands.get("/images/nothing.png/similar")

    assert response.status_code == 404
    assert "nothing.png" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"mode": "colour"}, {"turns": "sideways"}, {"mode": ""}])
def test_invalid_mode_or_turns_answers_422(brands: TestClient, params: dict[str, str]) -> None:
    search_response = brands.post(
        SEARCH, params=params, files={"file": ("q.png", redrawn(1, 1), "image/png")}
    )
    similar_response = brands.get("/images/brand1.png/similar", params=params)

    assert search_response.status_code == 422
    assert similar_response.status_code == 422


@pytest.mark.parametrize(
    ("setting", "value"),
    [("hybrid_concept_weight", 1.5), ("hybrid_concept_weight", -0.1), ("search_mode", "colour")],
)
def test_invalid_ranking_settings_stop_start_up_naming_the_setting(
    make_settings: Callable[..., Settings], setting: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=setting.upper()):
        make_settings(**{setting: value})


@pytest.mark.parametrize("version", ["SHAPE_VERSION", "CORE_VERSION"])
def test_shape_vectors_are_stored_and_a_new_shape_or_core_version_recomputes_them_without_the_model(
    make_client: Callable[..., TestClient],
    brands_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    version: str,
) -> None:
    embeds = EmbedCounter(monkeypatch)
    shapes: list[int] = []
    real_shape = shape.shape_descriptor

    def counting_shape(framed: np.ndarray) -> np.ndarray:
        shapes.append(1)
        return real_shape(framed)

    monkeypatch.setattr(encoder_module, "shape_descriptor", counting_shape)
    first = make_client(images_dir=brands_dir)
    # One shape per brand, and one per brand drawn with a core (the brand beside an addition).
    indexed = len(shapes)
    assert embeds.images == BRANDS and indexed >= BRANDS
    before = search(first, redrawn(3, 5), mode="shape", min_similarity=-1)
    first.__exit__(None, None, None)

    embeds.images, shapes[:] = 0, []
    make_client(images_dir=brands_dir).__exit__(None, None, None)
    assert (embeds.images, len(shapes)) == (0, 0)  # both reused

    monkeypatch.setattr(encoder_module, version, 999)
    client = make_client(images_dir=brands_dir)
    assert embeds.images == 0  # the CLIP vectors are unchanged: no model call
    assert len(shapes) == indexed  # every shape recomputed
    after = search(client, redrawn(3, 5), mode="shape", min_similarity=-1)
    assert [r["id"] for r in after] == [r["id"] for r in before]


def run_evaluate(
    settings: Settings, queries: Path, labels: Path
) -> subprocess.CompletedProcess[str]:
    """``python -m app.cli.evaluate`` in a process of its own, configured like ``settings``."""
    environment = {
        "MODEL_NAME": settings.model_name,
        "DEVICE": "cpu",
        "IMAGES_DIR": str(settings.images_dir),
        "INDEX_DIR": str(settings.index_dir),
        "ONNX_CACHE_DIR": str(settings.onnx_dir),
        "PATH": "/usr/bin:/bin",
    }
    return run_command(
        [sys.executable, "-m", "app.cli.evaluate", str(queries), str(labels)],
        environment,
        timeout_s=300,
    )


def test_the_evaluation_command_prints_metrics_per_mode_and_thresholds(
    make_settings: Callable[..., Settings], brands_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(images_dir=brands_dir)
    queries = tmp_path / "queries"
    queries.mkdir()
    lines = ["query,expected"]
    for brand in (0, 4, 9):
        (queries / f"q{brand}.png").write_bytes(redrawn(brand, 40 + brand))
        lines.append(f"q{brand}.png,brand{brand}.png")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    done = run_evaluate(settings, queries, tmp_path / "labels.csv")

    assert done.returncode == 0, done.stderr
    assert "3 queries, 10 images in the collection" in done.stdout
    shape_row = next(line for line in done.stdout.splitlines() if line.startswith("| shape |"))
    assert shape_row.split("|")[3].strip() == "1.000"  # top-1 of the shape mode
    for label in ("| concept |", "| hybrid (w=0.3) |", "| 0.9 |"):
        assert label in done.stdout


def test_the_evaluation_command_refuses_labels_naming_unknown_images(
    make_settings: Callable[..., Settings], brands_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(images_dir=brands_dir)
    (tmp_path / "q.png").write_bytes(redrawn(1, 1))
    (tmp_path / "labels.csv").write_text("query,expected\nq.png,missing.png\n")
    done = run_evaluate(settings, tmp_path, tmp_path / "labels.csv")

    assert done.returncode == 2
    assert "missing.png" in done.stderr
