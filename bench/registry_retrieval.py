"""Is the right brand first on real paper, at registry scale? The retrieval benchmark's
``--real-scans`` part (``bench/retrieval.py``), on ``bench/registry_scans.py``'s registry.

In one run: the service under uvicorn (random-weight ViT-B/32, ``mode=shape``: the shape
ranking does not depend on CLIP) with the verification stage (``RERANK_CANDIDATES``) and
without it (``RERANK_CANDIDATES=0``, the first stage alone, on the same stored vectors);
the original authors' hybrid baseline on the same files; the first stage's recall at
``RERANK_CANDIDATES``, on this registry through the service and, computed in-process with
the same preprocessing and shape descriptors (each image's shape and its core's; exact
inner product, as the service's ``Flat`` index), at ``--scale-size`` images.
"""

import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray

from app.evaluation import RankedQuery
from bench.original_hybrid import baseline_rankings
from bench.registry_scans import (
    Query,
    chimera,
    glyph_brand,
    held_out_queries,
    load_masks,
    make_registry,
    on_page,
    query_shapes,
    redraw_mask,
)
from bench.service_bench import REPO, full_size_checkpoint, running_server

# The upright sets whose answer is the query's own brand: the first stage's recall at
# scale is theirs (every set's but the related one's is printed at the registry's size).
UPRIGHT_OWN_BRAND_KINDS = ("redrawn", "addition", "converse")


def _row(label: str, ranked: list[RankedQuery], size: int) -> str:
    ranks = np.array([query.rank for query in ranked])
    shares = " | ".join(f"{np.mean(ranks <= top):.3f}" for top in (1, 3, 5, 10))
    return f"| {label} | {len(ranks)} | {shares} | {np.mean((ranks - 1) / size):.4f} |"


def _rankings(
    client: httpx.Client, queries: Iterable[Query], size: int, turns: bool
) -> list[RankedQuery]:
    params = {"top_k": size, "min_similarity": -1, "mode": "shape", "turns": str(turns).lower()}
    ranked = []
    for query in queries:
        response = client.post(
            "/search-similar-images/", params=params, files={"file": ("q.png", query.data)}
        )
        response.raise_for_status()
        results = response.json()["results"]
        ranking = [
            (result["id"], result["similarity"])
            for result in results
            if result["id"] not in query.own
        ]
        ranked.append(RankedQuery(ranking, frozenset({query.answer})))
    return ranked


def _rows_of(data: bytes) -> list[NDArray[np.float32]]:
    """The rows the service stores for an image: its shape, and its core's when it has
    one (``app.storage.types.VectorSpace``)."""
    return query_shapes(data)


def _distractor_rows(number: int) -> list[NDArray[np.float32]]:
    rng = np.random.default_rng([number, 31])
    masks = list(load_masks().values())
    if number % 10 == 0:
        first, second = rng.choice(len(masks), 2, replace=False)
        drawing = chimera(masks[first], masks[second])
    else:
        drawing = glyph_brand(number)
    return _rows_of(on_page(redraw_mask(drawing, rng), rng))


def _registered(images: Path) -> list[Path]:
    """The registry's image files, without the hidden ones the service keeps beside them
    (its collection marker)."""
    return sorted(path for path in images.iterdir() if not path.name.startswith("."))


def recall_at_scale(
    images: Path, queries: list[Query], size: int, candidates: int
) -> tuple[float, int]:
    """The first stage's recall at ``candidates`` among ``size`` images (this registry's
    and new distractors), for the upright queries; and the count of images."""
    files = _registered(images)
    upright = [query for query in queries if query.kind in UPRIGHT_OWN_BRAND_KINDS]
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        stored = list(pool.map(_rows_of, [path.read_bytes() for path in files], chunksize=16))
        stored += pool.map(_distractor_rows, range(10**6, 10**6 + size - len(files)), chunksize=16)
        asked = list(pool.map(query_shapes, [query.data for query in upright], chunksize=8))
    matrix = np.stack([row for rows in stored for row in rows])
    owner = np.array([number for number, rows in enumerate(stored) for _ in rows])
    names = [path.name for path in files]
    found = 0
    for query, rows in zip(upright, asked, strict=True):
        # Each image at its best row, as the service's search merges its rows.
        scores = np.full(len(stored), -np.inf)
        np.maximum.at(scores, owner, (matrix @ np.stack(rows).T).max(axis=1))
        order = np.argsort(-scores)[:candidates]
        found += any(index < len(names) and names[index] == query.answer for index in order)
    return found / max(1, len(upright)), len(stored)


def run(
    scans: Path,
    distractors: int,
    candidates: int,
    scale_size: int,
    model: str | None,
    checkout: Path = REPO,
    held_out_seed: int | None = None,
) -> None:
    """Print the tables; the service runs from ``checkout`` (another version's, to
    compare; one without a verification stage answers the same in both rows); with
    ``held_out_seed``, also for queries drawn with that seed (``held_out_queries``)."""
    with tempfile.TemporaryDirectory() as work:
        images = Path(work) / "images"
        images.mkdir()
        queries = make_registry(scans, images, distractors)
        if held_out_seed is not None:
            queries += held_out_queries(scans, held_out_seed)
        kinds = list(dict.fromkeys(query.kind for query in queries))
        size = len(list(images.iterdir()))
        environment = {
            **os.environ,
            "MODEL_NAME": model or str(full_size_checkpoint()),
            "IMAGES_DIR": str(images),
            "INDEX_DIR": str(Path(work) / "index"),
            "MAX_TOP_K": str(size),
            "LOG_LEVEL": "WARNING",
            "SEARCH_MODE": "shape",
        }
        lines = [
            f"{size} images ({distractors} distractors); mode=shape; "
            f"RERANK_CANDIDATES={candidates}",
            "",
            "| set | queries | top-1 | top-3 | top-5 | top-10 | NAR |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        first_stage_recall = {}
        for verified in (True, False):
            environment["RERANK_CANDIDATES"] = str(candidates if verified else 0)
            label = "verified" if verified else "first stage only"
            with (
                running_server(environment, checkout) as server,
                httpx.Client(base_url=server.url, timeout=120) as client,
            ):
                for kind in kinds:
                    chosen = [query for query in queries if query.kind == kind]
                    turns = kind.startswith("turned")
                    ranked = _rankings(client, chosen, size, turns)
                    lines.append(_row(f"{kind}, {label}", ranked, size))
                    print(lines[-1], flush=True)  # as it comes: the whole run takes long
                    if not verified:
                        first_stage_recall[kind] = float(
                            np.mean([query.rank <= candidates for query in ranked])
                        )
        collection = {path.name: path.read_bytes() for path in _registered(images)}
        for kind in ("redrawn", "addition"):
            chosen = [query for query in queries if query.kind == kind]
            baseline = baseline_rankings(
                collection, [(query.data, query.answer) for query in chosen]
            )
            lines.append(_row(f"{kind}, original hybrid (density + dhash)", baseline, size))
        recall, scaled = (
            recall_at_scale(images, queries, scale_size, candidates)
            if scale_size > size
            else (float("nan"), 0)
        )
    lines += ["", f"| first stage's recall at {candidates} | {size} images | {scaled} images |"]
    lines.append("| --- | --- | --- |")
    for kind in (kind for kind in kinds if not kind.startswith("related")):
        lines.append(f"| {kind} | {first_stage_recall[kind]:.3f} | |")
    lines.append(f"| upright queries, in-process | | {recall:.3f} |")
    print("\n".join(lines))
