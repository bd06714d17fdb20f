"""Service benchmark: the real service under uvicorn, timed against the model's own speed.

    .venv/bin/python -m bench.service_bench [--sizes 200 1000] [--settings KEY=VALUE ...]

1. Makes (once, cached in ``bench/.cache``, outside git) a checkpoint with the
   ``openai/clip-vit-base-patch32`` architecture and random weights: real cost, for timing
   only.
2. Measures the model floor: the median time of one ``get_image_features`` call on one
   224x224 image, over calls made before and after the service runs (the machine's speed
   drifts); every figure is also printed as a ratio to it.
3. Measures the faster CPU paths, ONNX Runtime (``INFERENCE=auto``/``onnx``, the CPU
   default) and dynamic int8 quantisation (``INFERENCE=int8``): the ONNX export's time,
   each path's speed, and the cosine between its embeddings and the reference ones on the
   sample images.
4. For each corpus size N (the sample images plus deterministic perturbed copies, in a
   temporary folder), starts the service under uvicorn on 127.0.0.1 and measures: cold
   start until searches are served (indexing included) and indexing per image; a restart
   with nothing changed; 30 sequential searches (p50, p95); 8 concurrent clients
   (throughput, p95); the server's peak RSS; files written while searching.
5. Text search (``--text``, instead of 2 to 4): the service on the 24 samples with
   ``TEXT_SEARCH=false`` and ``true``: memory when ready and after searches, image
   searches alone, and with ``true`` text searches alone (p50, p95) and from 8 clients.
   The checkpoint's tokenizer is a minimal one (``scripts.clip_tokenizer``): its few
   merges make a text 2 to 3 times as many tokens as CLIP's own vocabulary would, so the
   text figures are upper bounds; 77-token texts, the most the tower reads, are timed
   too.
"""

import argparse
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig

from app.embedding import onnx_tower
from app.embedding.image import load_image_checkpoint, quantize_int8
from app.embedding.model_source import HubAccess
from app.imaging.decoding import decode_image
from app.imaging.preprocessing import prepare_for_embedding
from scripts.clip_tokenizer import save_minimal_clip_tokenizer

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
CHECKPOINT = CACHE / "clip-vit-base-patch32-random"
SAMPLES = sorted((REPO / "example_images").glob("*.jpg"))
QUERY_IMAGES = sorted((REPO / "test_images").glob("*.jpg"))
SEQUENTIAL_QUERIES = 30
CLIENTS = 8
REQUESTS_PER_CLIENT = 12
FLOOR_CALLS = 20
# /health polls while the server indexes: each costs the server about a millisecond of
# CPU, so polling much faster would slow what is being measured.
INDEXING_POLL_S = 0.1
UVICORN_OPTIONS = ("--host", "127.0.0.1", "--log-level", "warning", "--port")


def full_size_checkpoint() -> Path:
    """A ViT-B/32 CLIP (CLIPConfig's defaults are that architecture) with random weights,
    and a minimal tokenizer for its text tower."""
    if not (CHECKPOINT / "config.json").is_file():
        torch.manual_seed(0)
        CLIPModel(CLIPConfig()).save_pretrained(CHECKPOINT)
        CLIPImageProcessor().save_pretrained(CHECKPOINT)
    if not (CHECKPOINT / "tokenizer.json").is_file():
        save_minimal_clip_tokenizer(CHECKPOINT, CLIPTextConfig().vocab_size)
    return CHECKPOINT


def call_times_ms(call: object, repeats: int) -> list[float]:
    """Times of ``repeats`` calls after one warm-up call."""
    assert callable(call)
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def median_ms(call: object, repeats: int) -> float:
    return statistics.median(call_times_ms(call, repeats))


def prepared_samples(processor: CLIPImageProcessor) -> torch.Tensor:
    images = [prepare_for_embedding(decode_image(path.read_bytes(), 10**8)) for path in SAMPLES]
    pixels: torch.Tensor = processor(images=images, return_tensors="pt")["pixel_values"]
    return pixels


def unit_features(model: CLIPModel, pixels: torch.Tensor) -> torch.Tensor:
    output = model.get_image_features(pixel_values=pixels)
    features = output.pooler_output if hasattr(output, "pooler_output") else output
    return torch.nn.functional.normalize(features.float(), dim=-1)


@dataclass
class PathFigures:
    """A faster inference path, against the reference (transformers, float32)."""

    name: str
    single_ms: float
    batch16_ms_per_image: float
    cosine_min: float
    cosine_mean: float


@dataclass
class ModelFigures:
    # Single get_image_features calls on one image, before and after the service runs:
    # the machine's speed drifts over a run, and the floor should be its typical speed.
    early_floor_times_ms: list[float]
    batch16_ms_per_image: float
    onnx_export_s: float
    paths: list[PathFigures]
    late_floor_times_ms: list[float] = field(default_factory=list)

    @property
    def floor_ms(self) -> float:
        return statistics.median(self.early_floor_times_ms + self.late_floor_times_ms)


def floor_times_ms(model: Any, pixels: torch.Tensor) -> list[float]:
    with torch.inference_mode():
        return call_times_ms(lambda: model.get_image_features(pixel_values=pixels[:1]), FLOOR_CALLS)


def late_floor_times_ms(checkpoint: Path) -> list[float]:
    model: Any = CLIPModel.from_pretrained(checkpoint)
    model.eval()
    return floor_times_ms(model, prepared_samples(CLIPImageProcessor.from_pretrained(checkpoint)))


def path_figures(
    name: str,
    run: Callable[[torch.Tensor], torch.Tensor],
    pixels: torch.Tensor,
    reference: torch.Tensor,
) -> PathFigures:
    single = median_ms(lambda: run(pixels[:1]), FLOOR_CALLS)
    batch = median_ms(lambda: run(pixels[:16]), 5) / 16
    unit = torch.nn.functional.normalize(run(pixels).float(), dim=-1)
    cosines = (unit * reference).sum(dim=-1)
    return PathFigures(name, single, batch, float(cosines.min()), float(cosines.mean()))


def measure_model(checkpoint: Path) -> ModelFigures:
    model: Any = CLIPModel.from_pretrained(checkpoint)
    model.eval()
    processor = CLIPImageProcessor.from_pretrained(checkpoint)
    pixels = prepared_samples(processor)
    floor = floor_times_ms(model, pixels)
    with torch.inference_mode():
        batch = median_ms(lambda: model.get_image_features(pixel_values=pixels[:16]), 5) / 16
        reference = unit_features(model, pixels)
    tower, _ = load_image_checkpoint(str(checkpoint), HubAccess("https://huggingface.co", True))
    started = time.perf_counter()
    onnx_tower.export(onnx_tower.image_graph(tower), CACHE / "timing-export")
    export_s = time.perf_counter() - started
    session = onnx_tower.OnnxTower(
        onnx_tower.open_session(CACHE / "timing-export", os.cpu_count() or 1)
    )
    onnx = path_figures("onnx", lambda x: torch.from_numpy(session(x.numpy())), pixels, reference)
    with torch.inference_mode():
        quantized: Any = quantize_int8(tower)  # in place: measured after the export
        int8 = path_figures("int8", lambda x: quantized(x), pixels, reference)
    return ModelFigures(floor, batch, export_s, [onnx, int8])


def perturbed(path: Path, seed: int) -> bytes:
    """A deterministic variant of a sample: shifted, rotated, scaled, noisy, re-encoded."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    height, width = pixels.shape[:2]
    matrix = cv2.getRotationMatrix2D(
        (width / 2, height / 2), rng.uniform(-4, 4), rng.uniform(0.93, 1.05)
    )
    matrix[:, 2] += rng.uniform(-0.04, 0.04, 2) * (width, height)
    moved = cv2.warpAffine(pixels, matrix, (width, height), borderValue=(255, 255, 255))
    noisy = np.clip(moved + rng.normal(0, 4, moved.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=int(rng.integers(80, 95)))
    return buffer.getvalue()


def make_corpus(folder: Path, size: int) -> None:
    folder.mkdir(parents=True)
    for number in range(size):
        sample = SAMPLES[number % len(SAMPLES)]
        data = sample.read_bytes() if number < len(SAMPLES) else perturbed(sample, number)
        (folder / f"img{number:05d}.jpg").write_bytes(data)


def queries() -> list[bytes]:
    extra = SEQUENTIAL_QUERIES - len(QUERY_IMAGES)
    return [path.read_bytes() for path in QUERY_IMAGES] + [
        perturbed(SAMPLES[number % len(SAMPLES)], 10**6 + number) for number in range(extra)
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    launched: float
    serving_after_s: float = 0.0  # /health first answered
    ready_after_s: float = 0.0  # indexing finished
    inference: str = ""  # what /health says runs the model
    log: list[str] = field(default_factory=list)

    def peak_rss_mb(self) -> float:
        return self._status_mb("VmHWM:")

    def rss_mb(self) -> float:
        return self._status_mb("VmRSS:")

    def _status_mb(self, field_name: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1]) / 1024
        return float("nan")


def served_app(checkout: Path) -> tuple[str, ...]:
    """How uvicorn is told to serve ``checkout``: its app factory, or, in versions before
    the factory, the app its module built at import."""
    main = (checkout / "app" / "main.py").read_text(encoding="utf-8")
    return ("app.main:served_app", "--factory") if "def served_app" in main else ("app.main:app",)


@contextmanager
def running_server(
    environment: dict[str, str], checkout: Path = REPO, options: tuple[str, ...] = ()
) -> Iterator[Server]:
    """The app of ``checkout`` (this one, or another version's) under uvicorn, with
    extra uvicorn ``options``, until its indexing has finished."""
    port = free_port()
    launched = time.perf_counter()
    app = served_app(checkout)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *app, *options, *UVICORN_OPTIONS, str(port)],
        cwd=checkout,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Server(process, f"http://127.0.0.1:{port}", launched)
    threading.Thread(
        target=lambda: server.log.extend(line.decode() for line in process.stderr or []),
        daemon=True,
    ).start()
    # One client for all polls: a new one per poll builds an SSL context, about 20 ms of
    # CPU taken from the server being measured.
    poller = httpx.Client(base_url=server.url, timeout=5)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError("the server exited:\n" + "".join(server.log[-20:]))
            try:
                body = poller.get("/health").json()
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            now = time.perf_counter() - launched
            server.serving_after_s = server.serving_after_s or now
            server.inference = body["inference"]
            if body["status"] == "ok" and not body["indexing"]["running"]:
                server.ready_after_s = now
                break
            time.sleep(INDEXING_POLL_S)
        yield server
    finally:
        poller.close()
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def search_ms(client: httpx.Client, data: bytes | str, turns: bool = False) -> float:
    """One search's time: by image (bytes, with ``turns`` or not) or by words (a text)."""
    started = time.perf_counter()
    if isinstance(data, str):
        response = client.post("/search-by-text", json={"text": data})
    else:
        params = {"turns": "true"} if turns else {}
        response = client.post(
            "/search-similar-images/", params=params, files={"file": ("q.jpg", data)}
        )
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"search answered {response.status_code}: {response.text}")
    return elapsed


def percentile(values: list[float], fraction: float) -> float:
    return float(np.percentile(values, fraction * 100))


def concurrent_load(url: str, data: list[bytes] | list[str]) -> tuple[float, float, int]:
    """8 clients, each sending searches back to back: (requests/s, p95 ms, refusals)."""
    latencies: list[float] = []
    refused = [0]
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            for number in range(REQUESTS_PER_CLIENT):
                query = data[(offset * REQUESTS_PER_CLIENT + number) % len(data)]
                try:
                    elapsed = search_ms(client, query)
                except RuntimeError:
                    with lock:
                        refused[0] += 1
                    continue
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, percentile(latencies, 0.95), refused[0]


def file_snapshot(*folders: Path) -> dict[Path, tuple[int, int]]:
    return {
        path: (path.stat().st_size, path.stat().st_mtime_ns)
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file()
    }


@dataclass
class ServiceFigures:
    size: int
    inference: str
    cold_start_s: float
    indexing_ms_per_image: float
    restart_s: float
    restart_serving_s: float
    search_p50_ms: float
    search_p95_ms: float
    turns_p50_ms: float
    concurrent_rps: float
    concurrent_p95_ms: float
    refused: int
    peak_rss_mb: float
    files_written: int


def service_environment(
    checkpoint: Path, images: Path, index: Path, scratch: Path, size: int, settings: dict[str, str]
) -> dict[str, str]:
    """Make a corpus of ``size`` images and the environment of a service run on it."""
    make_corpus(images, size)
    scratch.mkdir(exist_ok=True)
    return {
        **os.environ,
        "MODEL_NAME": str(checkpoint),
        "DEVICE": "cpu",
        "IMAGES_DIR": str(images),
        "INDEX_DIR": str(index),
        "LOG_LEVEL": "WARNING",
        "MAX_TOP_K": "100",
        "TMPDIR": str(scratch),
        # One export for all runs: cold starts then time indexing, not the export.
        "ONNX_CACHE_DIR": str(CACHE / "onnx"),
        **settings,
    }


def measure_service(
    checkpoint: Path, size: int, work: Path, settings: dict[str, str], checkout: Path = REPO
) -> ServiceFigures:
    images, index, scratch = work / f"images-{size}", work / f"index-{size}", work / "tmp"
    environment = service_environment(checkpoint, images, index, scratch, size, settings)
    with running_server(environment, checkout) as cold:
        cold_start = cold.ready_after_s
        indexing = (cold.ready_after_s - cold.serving_after_s) * 1000 / size
    data = queries()
    with running_server(environment, checkout) as warm:
        watched = (images, index, scratch, checkout / "app")
        before = file_snapshot(*watched)
        with httpx.Client(base_url=warm.url, timeout=120) as client:
            search_ms(client, data[0])
            sequential = [search_ms(client, query) for query in data]
            turned = [search_ms(client, query, turns=True) for query in data]
        rps, p95, refused = concurrent_load(warm.url, data)
        after = file_snapshot(*watched)
        written = sum(1 for path, stamp in after.items() if before.get(path) != stamp)
        return ServiceFigures(
            size=size,
            inference=warm.inference,
            cold_start_s=cold_start,
            indexing_ms_per_image=indexing,
            restart_s=warm.ready_after_s,
            restart_serving_s=warm.serving_after_s,
            search_p50_ms=percentile(sequential, 0.5),
            search_p95_ms=percentile(sequential, 0.95),
            turns_p50_ms=percentile(turned, 0.5),
            concurrent_rps=rps,
            concurrent_p95_ms=p95,
            refused=refused,
            peak_rss_mb=warm.peak_rss_mb(),
            files_written=written,
        )


def report(model: ModelFigures, services: list[ServiceFigures]) -> None:
    floor = model.floor_ms
    print(
        f"\nmodel floor: {floor:.1f} ms per get_image_features call on one 224x224 image "
        f"(median of {FLOOR_CALLS} calls before the service runs, "
        f"{statistics.median(model.early_floor_times_ms):.1f} ms, and {FLOOR_CALLS} after, "
        f"{statistics.median(model.late_floor_times_ms):.1f} ms)"
    )
    print(
        f"batch of 16: {model.batch16_ms_per_image:.1f} ms per image "
        f"({model.batch16_ms_per_image / floor:.2f} x floor)"
    )
    print(f"ONNX export (once per model, cached): {model.onnx_export_s:.1f} s")
    for path in model.paths:
        print(
            f"{path.name}: {path.single_ms:.1f} ms for one image "
            f"({path.single_ms / floor:.2f} x floor), {path.batch16_ms_per_image:.1f} ms per "
            f"image in a batch of 16 ({path.batch16_ms_per_image / floor:.2f} x floor); cosine "
            f"to the reference on the {len(SAMPLES)} samples: min {path.cosine_min:.6f}, "
            f"mean {path.cosine_mean:.6f} (target >= 0.99)"
        )
    print()
    header = f"{'':<34}" + "".join(f"{'N=' + str(s.size):>12}{'x floor':>9}" for s in services)
    print(header + f"{'target':>22}")

    def row(label: str, values: list[float], ratios: list[float] | None, target: str) -> None:
        cells = "".join(
            f"{value:>12.2f}" + (f"{ratio:>9.2f}" if ratios else f"{'':>9}")
            for value, ratio in zip(values, ratios or values, strict=True)
        )
        print(f"{label:<34}{cells}{target:>22}")

    row("cold start until served (s)", [s.cold_start_s for s in services], None, "")
    row(
        "indexing per image (ms)",
        [s.indexing_ms_per_image for s in services],
        [s.indexing_ms_per_image / floor for s in services],
        "<= 0.6 x floor",
    )
    row("restart, nothing changed (s)", [s.restart_s for s in services], None, "<= 5 s")
    row("  of which until /health (s)", [s.restart_serving_s for s in services], None, "")
    row(
        "search alone p50 (ms)",
        [s.search_p50_ms for s in services],
        [s.search_p50_ms / floor for s in services],
        "<= 1.2 x floor",
    )
    row(
        "search alone, turns=true, p50 (ms)",
        [s.turns_p50_ms for s in services],
        [s.turns_p50_ms / floor for s in services],
        "",
    )
    row(
        "search alone p95 (ms)",
        [s.search_p95_ms for s in services],
        [s.search_p95_ms / floor for s in services],
        "",
    )
    row(
        f"{CLIENTS} clients: requests/s",
        [s.concurrent_rps for s in services],
        [s.concurrent_rps * floor / 1000 for s in services],
        ">= 1.5 / floor",
    )
    row(
        f"{CLIENTS} clients: p95 (ms)",
        [s.concurrent_p95_ms for s in services],
        [s.concurrent_p95_ms / floor for s in services],
        "<= 8 x floor",
    )
    row(f"{CLIENTS} clients: 503 answers", [float(s.refused) for s in services], None, "")
    row("peak RSS (MB)", [s.peak_rss_mb for s in services], None, "<= 1024")
    row("files written by searches", [float(s.files_written) for s in services], None, "0")
    largest = services[-1]
    print(
        f"\nsummary: floor {floor:.0f} ms; N={largest.size}: indexing "
        f"{largest.indexing_ms_per_image / floor:.2f} x floor per image, restart "
        f"{largest.restart_s:.1f} s, search p50 {largest.search_p50_ms / floor:.2f} x floor, "
        f"{CLIENTS} clients {largest.concurrent_rps * floor / 1000:.2f} / floor req/s with p95 "
        f"{largest.concurrent_p95_ms / floor:.1f} x floor, peak RSS "
        f"{largest.peak_rss_mb:.0f} MB, {largest.files_written} files written; "
        + ", ".join(
            f"{path.name} {path.single_ms / floor:.2f} x floor at cosine >= {path.cosine_min:.4f}"
            for path in model.paths
        )
    )


# What a registry clerk might type: a brand described in a few words to a sentence.
DESCRIPTIONS = [
    "a circle",
    "two crossed lines",
    "the letter T over a bar",
    "a horseshoe with a dot inside",
    "a running stick figure with a crossed circle for a head",
    "an arrow pointing up through a half moon",
    "three small triangles in a row under a long horizontal line",
    "a square with its diagonals and a short tail on the lower right corner",
    "the letters R and T joined by a curve, with a star above them on the left",
    "a snake shaped wavy line that starts in a spiral and ends in an arrow head pointing right",
]
# The most the text tower reads: about 60 words of CLIP's vocabulary.
LONGEST = "a circle crossed by a vertical bar with three small triangles " * 6


def text_figures(checkpoint: Path, work: Path, settings: dict[str, str]) -> None:
    """Memory and image searches with TEXT_SEARCH=false and true; text searches."""
    images, index, scratch = work / "images", work / "index", work / "tmp"
    environment = service_environment(checkpoint, images, index, scratch, len(SAMPLES), settings)
    data = queries()
    rows: list[str] = []
    for text_search in ("false", "true"):
        with running_server({**environment, "TEXT_SEARCH": text_search}) as server:
            ready_mb = server.rss_mb()
            with httpx.Client(base_url=server.url, timeout=120) as client:
                search_ms(client, data[0])
                images_ms = [search_ms(client, query) for query in data]
                if text_search == "true":
                    texts = DESCRIPTIONS * 3
                    search_ms(client, texts[0])
                    words_ms = [search_ms(client, text) for text in texts]
                    longest_ms = [search_ms(client, LONGEST) for _ in range(10)]
            if text_search == "true":
                rps, p95, refused = concurrent_load(server.url, DESCRIPTIONS)
                rows.append(
                    f"| text search alone, p50 / p95 | {percentile(words_ms, 0.5):.0f} / "
                    f"{percentile(words_ms, 0.95):.0f} ms |"
                )
                rows.append(f"| 77-token text alone, p50 | {percentile(longest_ms, 0.5):.0f} ms |")
                rows.append(
                    f"| {CLIENTS} clients' text searches | {rps:.1f} req/s, p95 {p95:.0f} ms, "
                    f"{refused} refused |"
                )
            rows.append(
                f"| TEXT_SEARCH={text_search}: RSS ready / after searches / peak | "
                f"{ready_mb:,.0f} / {server.rss_mb():,.0f} / {server.peak_rss_mb():,.0f} MB |"
            )
            rows.append(
                f"| TEXT_SEARCH={text_search}: image search alone, p50 | "
                f"{percentile(images_ms, 0.5):.0f} ms |"
            )
    print(f"\n| {len(SAMPLES)} samples, {os.cpu_count()} cores | |\n| --- | --- |")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument(
        "--settings", nargs="*", default=[], help="service settings, e.g. INFERENCE=int8"
    )
    parser.add_argument("--text", action="store_true", help="text search figures only")
    parser.add_argument(
        "--checkout",
        type=Path,
        default=REPO,
        help="run the service of another checkout (a git worktree of the commit before)",
    )
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.settings)
    checkpoint = full_size_checkpoint()
    if args.text:
        with tempfile.TemporaryDirectory(prefix="service-bench-") as work:
            text_figures(checkpoint, Path(work), settings)
        return
    model = measure_model(checkpoint)
    with tempfile.TemporaryDirectory(prefix="service-bench-") as work:
        services = [
            measure_service(checkpoint, size, Path(work), settings, args.checkout)
            for size in args.sizes
        ]
    model.late_floor_times_ms = late_floor_times_ms(checkpoint)
    print(
        f"settings: {settings or 'defaults'}; the service ran the model with "
        f"{', '.join(sorted({s.inference for s in services}))}; {os.cpu_count()} CPU cores"
    )
    report(model, services)


if __name__ == "__main__":
    main()
