"""Is the right brand first? Ranking measured end to end through the real service.

    .venv/bin/python -m bench.retrieval [--brands 100] [--redrawn 3] [--turned 1]

Draws a collection of brands on squared paper (``bench/brand_scans.py``), and for each
brand re-drawn queries with known answers: strokes re-traced with a smooth random warp, a
new pen width (0.6x to 1.5x), up to 5 degrees of rotation and some shear, placed anywhere
on a new page at 40-85% of its side, on new squared paper (dark broken lines, light grey,
blue, none), half of them with a page border line and corner dashes, with noise, blur,
uneven light and JPEG; plus turned re-drawings (one of the 7 other turns of a square).

It starts the service under uvicorn on that collection (the full-size ViT-B/32 CLIP with
random weights of ``bench/service_bench.py``, or ``--model``), sends every query through
``POST /search-similar-images/`` in every mode, and prints top-1, top-5, MRR and NAR
(``app.evaluation``), the median search time per mode, and the baseline: the original
authors' hybrid descriptor (an 8x8 dark-pixel density map and a 64-bit difference hash of
the raw page, weights 0.4 and 0.3; their CLIP part, weight 0.3, is left out since the
weights here are random) ranked on the same files.

With random CLIP weights the concept and hybrid figures say nothing about the real
model; the shape figures do not depend on CLIP at all.
"""

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
from numpy.typing import NDArray

from app.config import Settings
from app.evaluation import RankedQuery, metrics_table, ranking_metrics
from bench.brand_scans import TURNS, draw_scan, make_brand, redraw_like_another_hand
from bench.original_hybrid import baseline_rankings
from bench.registry_retrieval import run as run_real_scans
from bench.registry_scans import freeze_masks
from bench.service_bench import REPO, full_size_checkpoint, running_server

MODES = ("concept", "shape", "hybrid")


@dataclass(frozen=True)
class Query:
    data: bytes
    brand: int
    turned: bool


def jpeg(image: NDArray[np.uint8]) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def make_data(folder: Path, brands: int, redrawn: int, turned: int) -> list[Query]:
    """Write the collection into ``folder``; return the queries."""
    rng = np.random.default_rng(2026)
    queries = []
    for brand in range(brands):
        strokes = make_brand(brand)
        registered = redraw_like_another_hand(brand, rng)
        (folder / f"brand{brand:04d}.jpg").write_bytes(jpeg(draw_scan(strokes, registered)))
        for number in range(redrawn + turned):
            turn = str(rng.choice(TURNS[1:])) if number >= redrawn else "upright"
            redraw = redraw_like_another_hand(10**6 + brand * 100 + number, rng, turn=turn)
            queries.append(Query(jpeg(draw_scan(strokes, redraw)), brand, turn != "upright"))
    return queries


def answers(queries: list[Query]) -> list[tuple[bytes, str]]:
    return [(query.data, f"brand{query.brand:04d}.jpg") for query in queries]


def service_rankings(
    client: httpx.Client, queries: list[Query], size: int, mode: str, turns: bool
) -> tuple[list[RankedQuery], list[float]]:
    ranked, times = [], []
    params = {"top_k": size, "min_similarity": -1, "mode": mode, "turns": str(turns).lower()}
    for query in queries:
        started = time.perf_counter()
        response = client.post(
            "/search-similar-images/",
            params=params,
            files={"file": ("q.jpg", query.data, "image/jpeg")},
        )
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        ranking = [(r["id"], r["similarity"]) for r in response.json()["results"]]
        ranked.append(RankedQuery(ranking, frozenset({f"brand{query.brand:04d}.jpg"})))
    return ranked, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brands", type=int, default=100)
    parser.add_argument("--redrawn", type=int, default=3, help="upright queries per brand")
    parser.add_argument("--turned", type=int, default=1, help="turned queries per brand")
    parser.add_argument("--model", help="MODEL_NAME (default: random-weight ViT-B/32)")
    parser.add_argument(
        "--real-scans",
        type=Path,
        help="the real scans' folder: run the registry-scale benchmark on them instead",
    )
    parser.add_argument("--distractors", type=int, default=2000)
    parser.add_argument("--rerank-candidates", type=int, default=Settings().rerank_candidates)
    parser.add_argument(
        "--scale-size", type=int, default=10_000, help="0: no first-stage recall at scale"
    )
    parser.add_argument(
        "--server-checkout",
        type=Path,
        default=REPO,
        help="run the service of another checkout (a git worktree of the commit before)",
    )
    parser.add_argument(
        "--held-out-seed",
        type=int,
        help="also ask queries drawn with this seed (constants were not chosen on them)",
    )
    parser.add_argument(
        "--freeze-masks",
        action="store_true",
        help="write the real scans' clean stroke masks under bench/data/real_brands/ first",
    )
    args = parser.parse_args()
    if args.real_scans:
        if args.freeze_masks:
            freeze_masks(args.real_scans)
        run_real_scans(
            args.real_scans,
            args.distractors,
            args.rerank_candidates,
            args.scale_size,
            args.model,
            args.server_checkout,
            args.held_out_seed,
        )
        return

    with tempfile.TemporaryDirectory() as work:
        images = Path(work) / "images"
        images.mkdir()
        queries = make_data(images, args.brands, args.redrawn, args.turned)
        upright = [query for query in queries if not query.turned]
        turned = [query for query in queries if query.turned]
        collection = {path.name: path.read_bytes() for path in sorted(images.iterdir())}
        environment = {
            **os.environ,
            "MODEL_NAME": args.model or str(full_size_checkpoint()),
            "IMAGES_DIR": str(images),
            "INDEX_DIR": str(Path(work) / "index"),
            "MAX_TOP_K": str(args.brands),
            "LOG_LEVEL": "WARNING",
        }
        rows, times = {}, {}
        with (
            running_server(environment) as server,
            httpx.Client(base_url=server.url, timeout=60) as client,
        ):
            for mode in MODES:
                ranked, times[mode] = service_rankings(client, upright, args.brands, mode, False)
                rows[f"re-drawn, mode={mode}"] = ranking_metrics(ranked, args.brands)
            if turned:
                for mode in MODES:
                    ranked, times[f"{mode}, turns"] = service_rankings(
                        client, turned, args.brands, mode, True
                    )
                    rows[f"turned, mode={mode}, turns=true"] = ranking_metrics(ranked, args.brands)
                ranked, _ = service_rankings(client, turned, args.brands, "shape", False)
                rows["turned, mode=shape, turns=false"] = ranking_metrics(ranked, args.brands)
        rows["re-drawn, original hybrid (density + dhash, raw page)"] = ranking_metrics(
            baseline_rankings(collection, answers(upright)), args.brands
        )
        if turned:
            rows["turned, original hybrid"] = ranking_metrics(
                baseline_rankings(collection, answers(turned)), args.brands
            )

    print(f"{args.brands} brands; {len(upright)} re-drawn and {len(turned)} turned queries")
    print(metrics_table(rows))
    print()
    print("| search | median ms |")
    print("| --- | --- |")
    for label, values in times.items():
        print(f"| mode={label} | {statistics.median(values):.0f} |")


if __name__ == "__main__":
    main()
