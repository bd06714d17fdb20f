"""Registry-scale benchmark, end to end through the HTTP service: a registry of N
registry-like brands, searched as a clerk searches it, at several N in one run.

    .venv/bin/python -m bench.registry_scale --real-scans ../shared/real_scans \\
        [--sizes 2000 20000 100000]

The registry (``bench/registry_scans.py``): the 20 real scans, each also registered with
an addition, and glyph brands and chimeras up to N; beyond ``make_registry``'s first
200 distractors, pages are drawn at 400 or 800 pixels and kept as JPEG, so that
100,000 pages fit on a disk. Every page goes through the service's own pipeline
(decoding, grid removal, framing, the shape descriptors, the core and the stroke masks:
``app.encoder.drawing_vectors``) in worker processes; its concept vector is a random
unit vector stored under the model's key (the random-weight ViT-B/32's), because running
the model on 100,000 pages takes hours on 2 cores and its random weights rank nothing:
a search still runs the model on its query and the index holds vectors of the real
width, so every cost measured is the service's, and the rankings (``mode=shape``) do
not depend on CLIP. Each N is built once into ``bench/.cache/registry-N-vK/`` (images,
the embedded store's catalog, labelled ``Reg. n``, and the queries) and reused; a larger
N grows from the largest smaller one built (its first pages are the same), and a
stopped build goes on where it stopped.

At each N, with the service under uvicorn (default settings, embedded store):

- one search's p50 and p95 (default mode; ``mode=shape``; ``turns=true``), the
  throughput of 8 clients, ``/images/{id}/similar`` and ``compare`` p50;
- a restart with nothing changed (to ``/health`` ready), the server's RSS, the disk;
- the real brands' re-drawings and additions in ``mode=shape``: top-1, top-3 and the
  first stage's recall at ``RERANK_CANDIDATES`` (the answer among the verified top 8:
  verification reorders the first stage's candidates, it adds none).
"""

import argparse
import os
import pickle
import shutil
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from app.config import load_settings
from app.embedding.image import ImageTower
from app.encoder import drawing_vectors, strokes_key, vector_space
from app.imaging.decoding import decode_image
from app.imaging.preprocessing import prepare_with_core
from app.service import preprocessing_options, tower_options
from app.storage.embedded.store import EmbeddedStore
from app.storage.image_folder import sha256_hex
from app.storage.types import ImageRecord
from bench.brand_scans import PAPER_STYLES, Redraw, ink_on_paper
from bench.registry_scans import (
    MAX_GRID_WIDTH_FRACTION,
    Query,
    chimera,
    glyph_brand,
    load_masks,
    make_registry,
    placed,
    redraw_mask,
)
from bench.service_bench import (
    CACHE,
    concurrent_load,
    full_size_checkpoint,
    percentile,
    running_server,
)

BUILD_VERSION = 1
# make_registry's own distractors (full-size pages, drawn in one process); the rest are
# small pages, drawn in parallel.
REGISTRY_DISTRACTORS = 200
SMALL_SIDES = (400, 800)
SAVE_CHUNK = 2_000
CANDIDATES = 8
SEARCHES = 30


def small_page(number: int) -> bytes:
    """Distractor ``number``: a glyph brand or (one in ten) a chimera of two real brands,
    re-drawn on new squared paper at 400 or 800 pixels, as a JPEG."""
    rng = np.random.default_rng([number, 37])
    if number % 10 == 0:
        masks = list(load_masks().values())
        first, second = rng.choice(len(masks), 2, replace=False)
        drawing = chimera(masks[first], masks[second])
    else:
        drawing = glyph_brand(number)
    drawn = redraw_mask(drawing, rng)
    side = int(rng.choice(SMALL_SIDES))
    page, _ = placed(drawn, side, rng.uniform(0.4, 0.85), rng)
    pen = max(2, round(side * 0.012))
    redraw = Redraw(seed=number, side=side, paper=str(rng.choice(PAPER_STYLES)))
    image = ink_on_paper(page, redraw, rng, pen, MAX_GRID_WIDTH_FRACTION * side)
    return cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )[1].tobytes()


def _pipeline(path: Path) -> tuple[str, dict[str, list[float]]]:
    """A registered page through the service's preprocessing: (id, vectors by key)."""
    settings = load_settings(model_name="unused")
    options = preprocessing_options(settings)
    framed, core = prepare_with_core(
        decode_image(path.read_bytes(), settings.max_image_pixels, 2 * options.working_side),
        options,
    )
    space = _SPACE[0]
    vectors = drawing_vectors(framed, core, space, strokes_key(options))
    return path.name, {
        f"{key.model}|{key.preprocessing}": value.tolist() for key, value in vectors.items()
    }


_SPACE: list = []  # type: ignore[type-arg]  # set in each worker


def _write_small(arguments: tuple[Path, int]) -> None:
    folder, number = arguments
    (folder / f"other{number:06d}.jpg").write_bytes(small_page(number))


def _smaller(size: int) -> Path | None:
    """The largest registry already built with fewer images than ``size``: its pages and
    rows are the first ones of ``size``'s (pages are drawn by number)."""
    built = [
        (int(folder.name.split("-")[1]), folder)
        for folder in CACHE.glob(f"registry-*-v{BUILD_VERSION}")
        if (folder / "queries.pickle").is_file()
    ]
    smaller = [(count, folder) for count, folder in built if count < size]
    return max(smaller)[1] if smaller else None


def build(scans: Path, size: int, checkpoint: Path) -> tuple[Path, list[Query]]:
    """The cached registry of ``size`` images: its folder and its queries. It grows from
    the largest smaller one (its pages hard-linked, its catalog copied), and a build that
    was stopped goes on where it stopped: only missing pages are drawn, and only pages
    the catalog lacks are preprocessed."""
    root = CACHE / f"registry-{size}-v{BUILD_VERSION}"
    images, index, done = root / "images", root / "index", root / "queries.pickle"
    if done.is_file():
        return root, _queries(done)
    started = time.perf_counter()
    smaller = _smaller(size)
    if smaller is not None and not index.exists():
        shutil.copytree(smaller / "images", images, copy_function=_link, dirs_exist_ok=True)
        shutil.copytree(smaller / "index", index)
        registry = _queries(smaller / "queries.pickle")
    else:
        images.mkdir(parents=True, exist_ok=True)
        registry = make_registry(scans, images, min(REGISTRY_DISTRACTORS, size - 40))
    drawn = len(registry_files(images))
    missing = [
        (images, number)
        for number in range(10**6, 10**6 + size - drawn + _small_pages(images))
        if not (images / f"other{number:06d}.jpg").is_file()
    ]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(_write_small, missing, chunksize=64))
    print(f"  drew {len(missing):,} pages in {time.perf_counter() - started:.0f} s", flush=True)
    _preprocess(images, index, checkpoint, size)
    with done.open("wb") as cached:
        pickle.dump(registry, cached)
    return root, registry


def _link(source: str, target: str) -> None:
    """A smaller registry's page, unless this one has drawn it already."""
    if not Path(target).exists():
        os.link(source, target)


def _queries(path: Path) -> list[Query]:
    with path.open("rb") as cached:
        queries: list[Query] = pickle.load(cached)  # this benchmark's own cache
    return queries


def registry_files(images: Path) -> list[Path]:
    return sorted(path for path in images.iterdir() if not path.name.startswith("."))


def _small_pages(images: Path) -> int:
    return sum(1 for path in images.glob("other*.jpg"))


def _preprocess(images: Path, index: Path, checkpoint: Path, size: int) -> None:
    """Every page the catalog lacks, through the service's pipeline, saved with a random
    concept vector (see the module's docstring) and the label ``Reg. n``."""
    settings = load_settings(model_name=str(checkpoint), inference="torch")
    tower = ImageTower.load(settings.model_name, tower_options(settings))
    options = preprocessing_options(settings)
    space = vector_space(tower, options)
    keys = {
        f"{key.model}|{key.preprocessing}": key
        for key in filter(None, (space.shape, space.core, strokes_key(options)))
    }
    store = EmbeddedStore(index, space)
    known = store.records()
    files = [path for path in registry_files(images) if path.name not in known]
    rng = np.random.default_rng([size, len(known)])
    created = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    with ProcessPoolExecutor(
        os.cpu_count() or 1, initializer=_SPACE.append, initargs=(space,)
    ) as pool:
        batch = []
        for number, (image_id, drawn) in enumerate(
            pool.map(_pipeline, files, chunksize=32), start=len(known)
        ):
            path = images / image_id
            stat = path.stat()
            concept = rng.standard_normal(space.concept.dimension).astype(np.float32)
            vectors = {keys[name]: np.asarray(value, np.float32) for name, value in drawn.items()}
            vectors[space.concept] = concept / np.linalg.norm(concept)
            record = ImageRecord(
                image_id,
                sha256_hex(path.read_bytes()),
                stat.st_size,
                stat.st_mtime_ns,
                None,
                created,
                f"Reg. {number}",
            )
            batch.append((record, vectors))
            if len(batch) == SAVE_CHUNK:
                store.save(batch)
                batch = []
        store.save(batch)
    store.close()
    print(
        f"  preprocessed {len(files):,} pages in {time.perf_counter() - started:.0f} s", flush=True
    )


def _timed_ms(send: Callable[..., httpx.Response], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    response = send(*args, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def _search(client: httpx.Client, data: bytes, **params: str) -> httpx.Response:
    return client.post("/search-similar-images/", params=params, files={"file": ("q.png", data)})


def _ranks(client: httpx.Client, queries: list[Query]) -> list[int]:
    """Each query's answer's rank in ``mode=shape`` (11: not in the first 10)."""
    ranks = []
    for query in queries:
        results = _search(client, query.data, mode="shape", top_k="10").json()["results"]
        ids = [result["id"] for result in results]
        ranks.append(ids.index(query.answer) + 1 if query.answer in ids else 11)
    return ranks


def served_environment(root: Path, checkpoint: Path) -> dict[str, str]:
    """The service's settings on a cached registry (default settings otherwise)."""
    return {
        **os.environ,
        "MODEL_NAME": str(checkpoint),
        "DEVICE": "cpu",
        "IMAGES_DIR": str(root / "images"),
        "INDEX_DIR": str(root / "index"),
        "ONNX_CACHE_DIR": str(CACHE / "onnx"),
        "LOG_LEVEL": "WARNING",
    }


def measure(root: Path, queries: list[Query], checkpoint: Path) -> dict[str, float]:
    """The figures of one registry (see the module's docstring)."""
    environment = served_environment(root, checkpoint)
    figures: dict[str, float] = {}
    with running_server(environment) as first:
        figures["first_start_s"] = first.ready_after_s
    redrawn = [query for query in queries if query.kind == "redrawn"]
    asked = [query.data for query in redrawn][:SEARCHES]
    real = sorted({query.answer for query in redrawn})
    with (
        running_server(environment) as server,
        httpx.Client(base_url=server.url, timeout=300) as client,
    ):
        figures["restart_s"] = server.ready_after_s
        _search(client, asked[0])  # warm-up
        for name, params in (
            ("default", {}),
            ("shape", {"mode": "shape"}),
            ("turns", {"turns": "true"}),
        ):
            times = [_timed_ms(_search, client, data, **params) for data in asked]
            figures[f"{name}_p50_ms"] = statistics.median(times)
            figures[f"{name}_p95_ms"] = percentile(times, 0.95)
        similar = [_timed_ms(client.get, f"/images/{image}/similar") for image in real]
        compare = [
            _timed_ms(client.get, f"/images/{image}/compare/{image.rsplit('.', 1)[0]}_plus.png")
            for image in real
        ]
        figures["similar_p50_ms"] = statistics.median(similar)
        figures["compare_p50_ms"] = statistics.median(compare)
        rps, p95, _ = concurrent_load(server.url, asked)
        figures["clients_rps"], figures["clients_p95_ms"] = rps, p95
        for kind in ("redrawn", "addition"):
            ranks = np.array(_ranks(client, [query for query in queries if query.kind == kind]))
            figures[f"{kind}_top1"] = float(np.mean(ranks <= 1))
            figures[f"{kind}_top3"] = float(np.mean(ranks <= 3))
            figures[f"{kind}_recall_at_{CANDIDATES}"] = float(np.mean(ranks <= CANDIDATES))
        figures["rss_mb"] = server.rss_mb()
    figures["disk_mb"] = (
        sum(path.stat().st_size for path in root.rglob("*") if path.is_file()) / 1e6
    )
    return figures


ROWS = (
    ("search p50 / p95, default (ms)", "default_p50_ms", "default_p95_ms"),
    ("search p50 / p95, mode=shape (ms)", "shape_p50_ms", "shape_p95_ms"),
    ("search p50 / p95, turns=true (ms)", "turns_p50_ms", "turns_p95_ms"),
    ("8 clients: searches/s, p95 (ms)", "clients_rps", "clients_p95_ms"),
    ("/similar p50, compare p50 (ms)", "similar_p50_ms", "compare_p50_ms"),
    ("first start, restart (s)", "first_start_s", "restart_s"),
    ("RSS, disk (MB)", "rss_mb", "disk_mb"),
    ("re-drawn: top-1, top-3", "redrawn_top1", "redrawn_top3"),
    ("addition: top-1, top-3", "addition_top1", "addition_top3"),
    (
        f"first stage's recall at {CANDIDATES}: re-drawn, addition",
        f"redrawn_recall_at_{CANDIDATES}",
        f"addition_recall_at_{CANDIDATES}",
    ),
)


def _shown(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-scans", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    parser.add_argument(
        "--build-only", action="store_true", help="build (or find) the registries, measure nothing"
    )
    args = parser.parse_args()
    checkpoint = full_size_checkpoint()
    results = {}
    for size in args.sizes:
        root, queries = build(args.real_scans, size, checkpoint)
        if args.build_only:
            continue
        results[size] = measure(root, queries, checkpoint)
        print(f"  measured {size:,}: {results[size]}", flush=True)
    if not results:
        return
    print("| measured | " + " | ".join(f"{size:,} images" for size in results) + " |")
    print("| --- |" + " --- |" * len(results))
    for label, first, second in ROWS:
        cells = [
            f"{_shown(figures[first])} / {_shown(figures[second])}" for figures in results.values()
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
