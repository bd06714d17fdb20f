"""Scale benchmark: each store's vector search at growing collection sizes, and the
service end to end with 1 and 2 uvicorn workers.

    .venv/bin/python -m bench.scale_bench [--sizes 10000 100000] [--postgres-sizes 10000]

1. Vectors only (no model): random unit vectors of the space's width (ViT-B/32's 512
   concept dimensions plus the 432 of the shape descriptor), saved with their records
   through the store interface: the embedded store (SQLite + FAISS ``Flat``, exact; then
   ``HNSW32``, its graph built from the catalog as at a start), Postgres exact, and
   Postgres with an HNSW index (built after the inserts). Each HNSW at the default
   HNSW_EF_SEARCH and at pgvector's largest, its recall@10 against the exact answers.
   Insert rate, one search's p50 and p95, the throughput of 8 threads searching at once,
   and the memory (embedded: this process's growth) or disk (Postgres: the database) the
   collection takes. Postgres runs in ``pgserver`` (PostgreSQL 16, pgvector 0.6) on this
   machine, with default settings except maintenance_work_mem for the HNSW build.
2. The service (random-weight ViT-B/32, the 24 samples, ``bench.service_bench``) under
   ``uvicorn --workers 1`` and ``--workers 2``: 8 clients' searches per second, p95, and
   the resident memory of all its processes.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
from pgserver.postgres_server import PostgresServer, get_server

from app.imaging.shape import SHAPE_DIMENSION
from app.storage.embedded.store import EmbeddedStore
from app.storage.postgres.store import PostgresStore
from app.storage.search_index import HNSW_EF_SEARCH, MAX_EF_SEARCH
from app.storage.store import Store
from app.storage.types import EmbeddingKey, ImageRecord, VectorQuery, Vectors, VectorSpace
from bench.memory_bench import service_environment
from bench.service_bench import CACHE, QUERY_IMAGES, concurrent_load, percentile, running_server

CONCEPT_DIMENSION = 512
SEARCHES = 50
THREADS = 8
TOP_K = 10
INSERT_CHUNK = 10_000
# HNSW_EF_SEARCH values measured on one HNSW index: the default, and pgvector's largest.
EF_SEARCHES = (HNSW_EF_SEARCH, MAX_EF_SEARCH)
HNSW_FACTORY = "HNSW32"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def unit_vectors(rng: np.random.Generator, count: int, dimension: int) -> np.ndarray:
    vectors = rng.standard_normal((count, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


SPACE = VectorSpace(
    EmbeddingKey("bench-clip", "bench", CONCEPT_DIMENSION),
    EmbeddingKey("bench-shape", "bench", SHAPE_DIMENSION),
)


def entries(rng: np.random.Generator, start: int, count: int) -> list[tuple[ImageRecord, Vectors]]:
    concepts = unit_vectors(rng, count, CONCEPT_DIMENSION)
    shapes = unit_vectors(rng, count, SHAPE_DIMENSION)
    created = datetime.now(UTC)
    return [
        (
            ImageRecord(f"{start + n}.png", f"{start + n:064x}", 1, 1, None, created),
            {SPACE.concept: concepts[n], SPACE.shape: shapes[n]},
        )
        for n in range(count)
    ]


def fill(store: Store, size: int) -> float:
    """Save ``size`` random images; return the inserts per second."""
    rng = np.random.default_rng(0)
    inserting = 0.0
    for start in range(0, size, INSERT_CHUNK):
        chunk = entries(rng, start, min(INSERT_CHUNK, size - start))
        started = time.perf_counter()
        store.save(chunk)
        inserting += time.perf_counter() - started
    return size / inserting


Measured = tuple[list[float], float, list[list[str]]]


def as_query(row: np.ndarray) -> VectorQuery:
    """The hybrid-weighted (0.5) query whose one row is ``row``."""
    concept, shape = np.split(2 * row, [SPACE.concept.dimension])
    return VectorQuery(concept, (shape,), 0.5)


def searches(store: Store, queries: np.ndarray) -> Measured:
    """One search's latencies (ms), 8 threads' searches per second, and the ids found."""
    latencies, found = [], []
    vector_queries = [as_query(query) for query in queries]
    for query in vector_queries:
        started = time.perf_counter()
        hits = store.search(query, TOP_K, -1.0)[0]
        latencies.append((time.perf_counter() - started) * 1000)
        found.append([hit.record.id for hit in hits])

    def searcher() -> None:
        for query in vector_queries:
            store.search(query, TOP_K, -1.0)

    threads = [threading.Thread(target=searcher) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, THREADS * SEARCHES / (time.perf_counter() - started), found


def row(
    name: str,
    size: int,
    inserts: str,
    measured: Measured,
    memory: str,
    recall: str = "exact",
) -> None:
    latencies, throughput, _ = measured
    print(
        f"| {name} | {size:,} | {inserts} | {statistics.median(latencies):.1f} / "
        f"{percentile(latencies, 0.95):.1f} | {throughput:.{2 if throughput < 10 else 0}f} "
        f"| {recall} | {memory} |"
    )


def queries_for(size: int) -> np.ndarray:
    """New drawings of registered images: stored vectors (the ``fill`` ones) plus noise
    half their length (cosine about 0.9 to the original), as unit vectors."""
    rng = np.random.default_rng(0)
    stored = np.stack([SPACE.join(v) for _, v in entries(rng, 0, min(size, INSERT_CHUNK))])
    picked = stored[np.random.default_rng(size).choice(len(stored), SEARCHES, replace=False)]
    noisy = picked + 0.5 * unit_vectors(np.random.default_rng(size + 1), SEARCHES, SPACE.dimension)
    queries: np.ndarray = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return queries.astype(np.float32)


def recall_of(approximate: Measured, exact: Measured) -> str:
    """Recall@10 against the exact answers, and how often the first results agree."""
    pairs = list(zip(approximate[2], exact[2], strict=True))
    found = statistics.mean(len(set(a) & set(e)) / TOP_K for a, e in pairs)
    first = statistics.mean(a[:1] == e[:1] for a, e in pairs)
    return f"{found:.3f} (first: {first:.2f})"


def embedded_rows(size: int, hnsw: bool) -> None:
    """FAISS Flat; with ``hnsw``, then HNSW32 over the same catalog at each
    ``EF_SEARCHES``, its graph built as every start builds it."""
    with tempfile.TemporaryDirectory() as scratch:
        before_mb = rss_mb()
        store = EmbeddedStore(Path(scratch), SPACE)
        rate = fill(store, size)
        memory = f"{rss_mb() - before_mb:,.0f} MB in memory"
        queries = queries_for(size)
        exact = searches(store, queries)
        row("embedded (FAISS Flat)", size, f"{rate:,.0f}", exact, memory)
        store.close()
        for ef_search in EF_SEARCHES if hnsw else ():
            started = time.perf_counter()
            store = EmbeddedStore(Path(scratch), SPACE, HNSW_FACTORY, ef_search)
            opened = time.perf_counter() - started
            approximate = searches(store, queries)
            store.close()
            row(
                f"embedded (FAISS {HNSW_FACTORY}), ef_search {ef_search}",
                size,
                f"start-up {opened:,.1f} s",
                approximate,
                "-",
                recall_of(approximate, exact),
            )


def database_size(url: str) -> str:
    with psycopg.connect(url) as connection:
        found = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    return f"{(found[0] if found else 0) / 2**20:,.0f} MB on disk"


def postgres_rows(server: PostgresServer, size: int) -> None:
    name = f"bench_{size}"
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}".encode())
        connection.execute(f"CREATE DATABASE {name}".encode())
    url = server.get_uri(name)
    exact = PostgresStore(url, SPACE)
    rate = fill(exact, size)
    queries = queries_for(size)
    measured = searches(exact, queries)
    row("postgres exact", size, f"{rate:,.0f}", measured, database_size(url))
    started = time.perf_counter()
    PostgresStore(url, SPACE, hnsw=True).close()  # builds the index
    built = time.perf_counter() - started
    for ef_search in EF_SEARCHES:
        hnsw = PostgresStore(url, SPACE, hnsw=True, ef_search=ef_search)
        approximate = searches(hnsw, queries)
        hnsw.close()
        row(
            f"postgres HNSW, ef_search {ef_search}",
            size,
            f"index built in {built:,.0f} s",
            approximate,
            database_size(url),
            recall_of(approximate, measured),
        )
    exact.close()


def processes_rss_mb(parent: int) -> float:
    """Resident memory of a process and its children (uvicorn's workers)."""
    children = subprocess.run(
        ["ps", "--ppid", str(parent), "-o", "pid="], capture_output=True, text=True, check=False
    ).stdout.split()
    total = 0.0
    for pid in [str(parent), *children]:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def service_workers(workers: int) -> None:
    queries = [path.read_bytes() for path in QUERY_IMAGES]
    with tempfile.TemporaryDirectory() as scratch:
        environment = service_environment(Path(scratch), CACHE / "onnx", {})
        with running_server(environment, options=("--workers", str(workers))) as server:
            time.sleep(5)  # the other workers finish their start
            concurrent_load(server.url, queries)  # warm-up
            rps, p95, refused = concurrent_load(server.url, queries)
            memory = processes_rss_mb(server.process.pid)
    print(f"| {workers} | {rps:.1f} | {p95:.0f} | {refused} | {memory:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument(
        "--embedded-hnsw-sizes",
        type=int,
        nargs="*",
        default=[10_000, 100_000],
        help="sizes (of --sizes) at which FAISS HNSW32 is measured too",
    )
    parser.add_argument("--postgres-sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--no-service", action="store_true", help="vectors only")
    arguments = parser.parse_args()
    print(f"{os.cpu_count()} cores")
    print(
        "\n| store | images | inserts/s | one search p50 / p95 (ms) |"
        f" {THREADS} threads: searches/s | recall@{TOP_K} | memory or disk |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in arguments.sizes:
        embedded_rows(size, size in arguments.embedded_hnsw_sizes)
    with tempfile.TemporaryDirectory() as scratch:
        server = get_server(scratch, cleanup_mode="delete")
        # The HNSW graph is built in memory while it fits (4 GB at 1,000,000 images), many
        # times faster than on disk.
        server.psql("ALTER SYSTEM SET maintenance_work_mem = '6GB'; SELECT pg_reload_conf();")
        for size in arguments.postgres_sizes:
            postgres_rows(server, size)
        server.cleanup()
    if arguments.no_service:
        return
    print("\n| uvicorn workers | 8 clients: searches/s | p95 (ms) | 503s | memory, all (MB) |")
    print("| --- | --- | --- | --- | --- |")
    for workers in (1, 2):
        service_workers(workers)


if __name__ == "__main__":
    main()
