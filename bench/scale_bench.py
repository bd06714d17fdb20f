"""Scale benchmark: the embedded store's vector search at growing collection sizes, and
the service end to end with 1 and 2 uvicorn workers.

    .venv/bin/python -m bench.scale_bench [--sizes 10000 100000 1000000]

1. Vectors only (no model): random unit vectors of the index's width (ViT-B/32's 512
   concept dimensions plus the 432 of the shape descriptor) in the service's
   ``VectorIndex`` (FAISS ``Flat``, exact): insert rate, one search's p50 and p95, the
   throughput of 8 threads searching at once, and the memory the vectors take.
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
from pathlib import Path

import numpy as np

from app.imaging.shape import SHAPE_DIMENSION
from app.storage.embedded.vector_index import VectorIndex
from bench.memory_bench import service_environment
from bench.service_bench import CACHE, QUERY_IMAGES, concurrent_load, percentile, running_server

CONCEPT_DIMENSION = 512
SEARCHES = 50
THREADS = 8
TOP_K = 10
INSERT_CHUNK = 10_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def unit_vectors(rng: np.random.Generator, count: int, dimension: int) -> np.ndarray:
    vectors = rng.standard_normal((count, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def vector_search(size: int) -> None:
    dimension = CONCEPT_DIMENSION + SHAPE_DIMENSION
    rng = np.random.default_rng(0)
    index = VectorIndex(dimension)
    before_mb = rss_mb()
    inserting = 0.0
    for start in range(0, size, INSERT_CHUNK):
        count = min(INSERT_CHUNK, size - start)
        chunk = unit_vectors(rng, count, dimension)
        started = time.perf_counter()
        index.add([f"{number}.png" for number in range(start, start + count)], chunk)
        inserting += time.perf_counter() - started
    memory_mb = rss_mb() - before_mb
    queries = unit_vectors(rng, SEARCHES, dimension)
    latencies = []
    for query in queries:
        started = time.perf_counter()
        index.search(query.reshape(1, -1), TOP_K, -1.0)
        latencies.append((time.perf_counter() - started) * 1000)

    def searcher() -> None:
        for query in queries:
            index.search(query.reshape(1, -1), TOP_K, -1.0)

    threads = [threading.Thread(target=searcher) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    throughput = THREADS * SEARCHES / (time.perf_counter() - started)
    print(
        f"| {size:,} | {size / inserting:,.0f} | {statistics.median(latencies):.1f} / "
        f"{percentile(latencies, 0.95):.1f} | {throughput:.0f} | {memory_mb:,.0f} |"
    )


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
    arguments = parser.parse_args()
    print(f"{os.cpu_count()} cores")
    print(
        "\n| vectors | inserts/s | one search p50 / p95 (ms) |"
        f" {THREADS} threads: searches/s | memory (MB) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for size in arguments.sizes:
        vector_search(size)
    print("\n| uvicorn workers | 8 clients: searches/s | p95 (ms) | 503s | memory, all (MB) |")
    print("| --- | --- | --- | --- | --- |")
    for workers in (1, 2):
        service_workers(workers)


if __name__ == "__main__":
    main()
