"""Registry-size store benchmark: a verified search's store call (the candidates and
their stroke masks) and a start, at several registry sizes, in one run.

    .venv/bin/python -m bench.registry_store_bench [--sizes 10000 100000] [--factories Flat]

The collection is registry-like rather than uniform: brands come in families of
near-copies (a centre and ``FAMILY - 1`` copies at cosine about 0.9, as a registry holds
re-registrations and brands with an addition), every fifth has a core, and every image
has a stroke mask of the service's size (``STROKES_DIMENSION`` floats). Vectors are
random within that structure, so the figures are costs, not rankings; queries are
perturbed members, whose family the first hit should belong to.

For each size, on the embedded store (``Flat`` and ``HNSW32``), and Postgres (exact, in
``pgserver``) at ``--postgres-sizes``:

- one verified search as the service makes it (a drawing and its core, upright: 2 rows;
  ``turns=true``: 16), ``Store.search`` with ``Fetch`` of the first ``RERANK_CANDIDATES``
  masks: p50 and p95; and the masks fetched as before this change (every mask of the
  key read, then filtered: ``before``), for comparison in the same run;
- the first hit in the query's family (recall of a re-drawn brand);
- a start: the store opened with its saved index (loaded) and without (built), RSS
  growth and the catalog's size on disk.
"""

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pgserver.postgres_server import get_server

from app.imaging.shape import SHAPE_DIMENSION
from app.imaging.verification import STROKES_DIMENSION
from app.storage.embedded.saved_index import SAVED_FOLDER
from app.storage.embedded.store import EmbeddedStore
from app.storage.postgres.store import PostgresStore
from app.storage.store import Store
from app.storage.types import (
    EmbeddingKey,
    Fetch,
    ImageRecord,
    VectorQuery,
    VectorSpace,
    best_per_image,
)

CONCEPT_DIMENSION = 512
FAMILY = 5
NOISE = 0.33  # a copy's perturbation: cosine about 0.9 to its centre
CANDIDATES = 8
TOP_K = 10
SEARCHES = 40
CHUNK = 5_000
CONCEPT = EmbeddingKey("random-vit-b-32", "bench", CONCEPT_DIMENSION)
SHAPE = EmbeddingKey("shape-v4", "bench", SHAPE_DIMENSION)
CORE = EmbeddingKey("core-v3-shape-v4", "bench", SHAPE_DIMENSION)
MASK = EmbeddingKey("strokes-v2-core-v3", "bench", STROKES_DIMENSION)
SPACE = VectorSpace(CONCEPT, SHAPE, CORE)


def unit(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    normalised: NDArray[np.float32] = rows / np.linalg.norm(rows, axis=-1, keepdims=True)
    return normalised.astype(np.float32)


def family_rows(rng: np.random.Generator, count: int, dimension: int) -> NDArray[np.float32]:
    """``count`` unit rows in families of ``FAMILY`` near-copies, family ``n // FAMILY``."""
    centres = rng.standard_normal((count // FAMILY + 1, dimension)).astype(np.float32)
    centres = np.repeat(unit(centres), FAMILY, axis=0)[:count]
    noise = rng.standard_normal((count, dimension)).astype(np.float32) / np.sqrt(dimension)
    return unit(centres + NOISE * noise)


def fill(store: Store, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        concepts = family_rows(np.random.default_rng(seed + start), size, CONCEPT_DIMENSION)
        shapes = family_rows(np.random.default_rng(seed + start + 1), size, SHAPE_DIMENSION)
        entries = []
        for offset in range(size):
            number = start + offset
            core = shapes[offset][::-1].copy() if number % 5 == 0 else np.zeros(SHAPE_DIMENSION)
            mask = rng.integers(0, 1 << 16, STROKES_DIMENSION).astype(np.float32)
            record = ImageRecord(
                f"brand{number:07d}.png", f"{number:064x}", 1, number, None, created
            )
            vectors = {CONCEPT: concepts[offset], SHAPE: shapes[offset], CORE: core, MASK: mask}
            entries.append((record, vectors))
        store.save(entries)


def queries(count: int, turns: bool) -> list[tuple[int, VectorQuery]]:
    """Perturbed members of random families, with the family they belong to."""
    rng = np.random.default_rng(99)
    asked = []
    for _ in range(SEARCHES):
        member = int(rng.integers(0, count - count % CHUNK or count))
        chunk = member - member % CHUNK
        concepts = family_rows(np.random.default_rng(chunk), CHUNK, CONCEPT_DIMENSION)
        shapes = family_rows(np.random.default_rng(chunk + 1), CHUNK, SHAPE_DIMENSION)
        jitter = rng.standard_normal(SHAPE_DIMENSION).astype(np.float32) * 0.01
        shape = unit(shapes[member - chunk] + jitter)
        rows = (shape, shape[::-1].copy()) * (8 if turns else 1)
        asked.append((member // FAMILY, VectorQuery(concepts[member - chunk], rows, 0.0)))
    return asked


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def masks_as_before(store: EmbeddedStore, sha256s: set[str]) -> int:
    """How the masks were read before: every mask of the key, filtered in Python."""
    with store.catalog._lock:
        rows = store.catalog._db.execute(
            "SELECT sha256, vector FROM embeddings WHERE model = ? AND preprocessing = ?",
            (MASK.model, MASK.preprocessing),
        ).fetchall()
    return sum(sha256 in sha256s for sha256, _ in rows)


def measure(store: Store, count: int, turns: bool, before: bool) -> dict[str, float]:
    times, found, old = [], 0, []
    for family, query in queries(count, turns):
        started = time.perf_counter()
        rows = store.search(query, TOP_K, -1.0, Fetch((MASK,), CANDIDATES))
        times.append((time.perf_counter() - started) * 1000)
        ranked = best_per_image(rows)
        found += int(ranked[0][1].record.id[5:12]) // FAMILY == family
        if before and isinstance(store, EmbeddedStore):
            sha256s = {hit.record.sha256 for _, hit in ranked[:CANDIDATES]}
            started = time.perf_counter()
            store.search(query, TOP_K, -1.0)
            masks_as_before(store, sha256s)
            old.append((time.perf_counter() - started) * 1000)
    result = {
        "p50": statistics.median(times),
        "p95": float(np.percentile(times, 95)),
        "first_hit": found / SEARCHES,
    }
    if old:
        result["before_p50"] = statistics.median(old)
    return result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def embedded(count: int, factory: str, root: Path) -> None:
    index_dir = root / f"{factory}-{count}"
    started = time.perf_counter()
    store = EmbeddedStore(index_dir, SPACE, factory)
    fill(store, count)
    store.checkpoint()
    build_s = time.perf_counter() - started
    for turns in (False, True):
        figures = measure(store, count, turns, before=factory == "Flat")
        print(
            f"| embedded {factory} | {count:,} | {'yes' if turns else 'no'} | "
            f"{figures['p50']:.1f} / {figures['p95']:.1f} | "
            f"{figures.get('before_p50', float('nan')):.1f} | {figures['first_hit']:.2f} |",
            flush=True,
        )
    store.close()
    loaded_s = timed(lambda: EmbeddedStore(index_dir, SPACE, factory).close()) / 1000
    disk = folder_mb(index_dir)
    shutil.rmtree(index_dir / SAVED_FOLDER)  # as every start was before: built again
    built_s = timed(lambda: EmbeddedStore(index_dir, SPACE, factory).close()) / 1000
    print(
        f"| start: {factory}, {count:,} | loaded {loaded_s:.1f} s, built {built_s:.1f} s | "
        f"filled in {build_s:.0f} s | disk {disk:.0f} MB | peak RSS {peak_rss_mb():.0f} MB |",
        flush=True,
    )


def postgres(count: int, root: Path) -> None:
    server = get_server(root / f"postgres-{count}", cleanup_mode="delete")
    try:
        store = PostgresStore(server.get_uri(), SPACE)
        started = time.perf_counter()
        fill(store, count)
        filled_s = time.perf_counter() - started
        for turns in (False, True):
            figures = measure(store, count, turns, before=False)
            print(
                f"| Postgres exact | {count:,} | {'yes' if turns else 'no'} | "
                f"{figures['p50']:.1f} / {figures['p95']:.1f} | | {figures['first_hit']:.2f} |",
                flush=True,
            )
        store.close()
        print(f"| start: Postgres, {count:,} | nothing to load | filled in {filled_s:.0f} s | |")
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--factories", nargs="+", default=["Flat", "HNSW32"])
    parser.add_argument("--postgres-sizes", type=int, nargs="*", default=[10_000])
    args = parser.parse_args()
    print(
        "| store | images | turns | verified search's store call p50 / p95 ms "
        "| before p50 ms | first hit in family |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for count in args.sizes:
            for factory in args.factories:
                embedded(count, factory, Path(folder))
        for count in args.postgres_sizes:
            postgres(count, Path(folder))


if __name__ == "__main__":
    main()
