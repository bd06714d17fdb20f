"""Memory benchmark: the real service's peak memory under hostile uploads.

    .venv/bin/python -m bench.memory_bench [--baseline CHECKOUT] [--settings KEY=VALUE ...]

Starts the service under uvicorn (the random-weight ViT-B/32 of ``bench.service_bench``,
the sample images) and, once it is ready, sends uploads that are small on the wire and
large once decoded, from ``CLIENTS`` clients at once, to every endpoint that decodes
(``/preprocess``, ``/search-similar-images/``, ``/images/``):

- a 1 x 64,000,000 PNG (about 124 KB, at ``MAX_IMAGE_PIXELS``);
- 8000 x 8000 images in every format and mode that decodes large: PNG in RGB, palette
  (opaque and transparent), 1-bit, 16-bit greyscale, 16-bit RGBA and greyscale+alpha;
  JPEG (baseline and progressive); WEBP (lossless, lossy, animated; and a 5000 x 5000
  lossless one, within the decoding budget); TIFF (32-bit float, and in one strip); GIF;
- a 9000 x 9000 PNG (over ``MAX_IMAGE_PIXELS``: refused before decoding).

It prints the server's resident memory when ready, its peak (the kernel's high-water
mark, VmHWM), the difference and what it holds once the uploads are answered, and the
answers' status codes and median seconds. With
``--baseline`` the same is measured for another checkout (say, a git worktree of an
earlier commit) in the same run, first.

It also measures a first start (no ONNX export cached yet: the export runs) against a
restart: resident memory when ready and after ``SEARCHES`` searches.
"""

import argparse
import io
import os
import statistics
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.service_bench import CACHE, REPO, SAMPLES, full_size_checkpoint, running_server

CLIENTS = 8
ROUNDS = 2
SEARCHES = 10
SIDE = 8000
ENDPOINTS = ("/preprocess", "/search-similar-images/", "/images/")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def hostile_uploads() -> dict[str, bytes]:
    """Name to bytes: each at most a few MB, each hundreds of MB once decoded."""
    strokes = np.full((SIDE, SIDE), 255, np.uint8)
    strokes[SIDE // 3 : SIDE // 3 + 200, SIDE // 4 : 3 * SIDE // 4] = 0
    strokes[SIDE // 4 : 3 * SIDE // 4, SIDE // 2 : SIDE // 2 + 200] = 0
    grey = Image.fromarray(strokes)
    drawing = grey.convert("RGB")
    rgba16 = np.full((SIDE, SIDE, 4), 65535, ">u2")
    rgba16[SIDE // 3 : SIDE // 3 + 200, :, :3] = 0
    palette = grey.convert("P")
    webp_fast = {"lossless": True, "quality": 0, "method": 0}
    deflate = {"compression": "tiff_deflate"}
    return {
        "thin 1x64M PNG": png(Image.new("L", (1, 64_000_000), 255)),
        "8000^2 RGB PNG": png(drawing),
        "8000^2 palette PNG": png(palette),
        "8000^2 palette PNG, transparent": encoded(palette, "PNG", transparency=0),
        "8000^2 1-bit PNG": png(grey.convert("1")),
        "8000^2 16-bit PNG": png(grey.convert("I;16")),
        "8000^2 16-bit RGBA PNG": png(
            Image.frombytes("RGBA", (SIDE, SIDE), rgba16, "raw", "RGBA;16B")
        ),
        "8000^2 grey+alpha PNG": png(grey.convert("LA")),
        "8000^2 JPEG": encoded(drawing, "JPEG", quality=85),
        "8000^2 progressive JPEG": encoded(drawing, "JPEG", quality=85, progressive=True),
        "8000^2 lossless WEBP": encoded(drawing, "WEBP", **webp_fast),
        "8000^2 lossy WEBP": encoded(drawing, "WEBP", quality=10, method=0),
        "8000^2 animated WEBP": encoded(
            drawing, "WEBP", save_all=True, append_images=[grey.convert("RGB")], **webp_fast
        ),
        "5000^2 lossless WEBP": encoded(drawing.resize((5000, 5000)), "WEBP", **webp_fast),
        "8000^2 32-bit float TIFF": encoded(grey.convert("F"), "TIFF", **deflate),
        "8000^2 TIFF, one strip": encoded(
            grey.convert("F"), "TIFF", tiffinfo={278: SIDE}, **deflate
        ),
        "8000^2 GIF": encoded(palette, "GIF"),
        "9000^2 PNG (over the limit)": png(Image.new("L", (9000, 9000), 255)),
    }


def send(url: str, endpoint: str, name: str, data: bytes) -> tuple[str, int, float]:
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=300) as client:
        status = client.post(endpoint, files={"file": (f"{name}.img", data)}).status_code
    return name, status, time.perf_counter() - started


def service_environment(
    scratch: Path, onnx_cache: Path, settings: dict[str, str]
) -> dict[str, str]:
    """Settings for a service on a copy of the samples under ``scratch``."""
    images = scratch / "images"
    if not images.is_dir():
        images.mkdir()
        for sample in SAMPLES:
            (images / sample.name).write_bytes(sample.read_bytes())
    return {
        **os.environ,
        "MODEL_NAME": str(full_size_checkpoint()),
        "DEVICE": "cpu",
        "IMAGES_DIR": str(images),
        "INDEX_DIR": str(scratch / "index"),
        "ONNX_CACHE_DIR": str(onnx_cache),
        "LOG_LEVEL": "WARNING",
        **settings,
    }


def first_start_and_restart(checkout: Path, settings: dict[str, str]) -> None:
    print(f"\n{checkout}: a first start (the ONNX export runs) and a restart")
    print("| start | ready RSS (MB) | after searches (MB) |\n| --- | --- | --- |")
    query = SAMPLES[0].read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        environment = service_environment(Path(scratch), Path(scratch) / "onnx", settings)
        for start in ("first", "restart"):
            with running_server(environment, checkout) as server:
                ready_mb = server.rss_mb()
                with httpx.Client(base_url=server.url, timeout=60) as client:
                    for _ in range(SEARCHES):
                        client.post("/search-similar-images/", files={"file": ("q.jpg", query)})
                print(f"| {start} | {ready_mb:.0f} | {server.rss_mb():.0f} |")


def measure(checkout: Path, uploads: dict[str, bytes], settings: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        environment = service_environment(Path(scratch), CACHE / "onnx", settings)
        with running_server(environment, checkout) as server:
            ready_mb = server.rss_mb()
            jobs = [
                (endpoint, name, data)
                for _ in range(ROUNDS)
                for endpoint in ENDPOINTS
                for name, data in uploads.items()
            ]
            with ThreadPoolExecutor(CLIENTS) as pool:
                answers = list(
                    pool.map(lambda job: send(server.url, *job), jobs)  # type: ignore[misc]
                )
            peak_mb = server.peak_rss_mb()
            after_mb = server.rss_mb()
    print(f"\n{checkout}")
    print("| ready RSS (MB) | peak RSS (MB) | peak - ready (MB) | afterwards - ready (MB) |")
    print("| --- | --- | --- | --- |")
    print(
        f"| {ready_mb:.0f} | {peak_mb:.0f} | {peak_mb - ready_mb:.0f} | {after_mb - ready_mb:.0f} |"
    )
    print("\n| upload | answers | median s |")
    print("| --- | --- | --- |")
    for name in uploads:
        mine = [(status, seconds) for who, status, seconds in answers if who == name]
        statuses = ", ".join(
            f"{count}x{status}" for status, count in sorted(Counter(s for s, _ in mine).items())
        )
        print(f"| {name} | {statuses} | {statistics.median(s for _, s in mine):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to measure first")
    parser.add_argument("--settings", nargs="*", default=[], help="KEY=VALUE for the service")
    arguments = parser.parse_args()
    settings = dict(item.split("=", 1) for item in arguments.settings)
    uploads = hostile_uploads()
    print("| upload | bytes |\n| --- | --- |")
    for name, data in uploads.items():
        print(f"| {name} | {len(data):,} |")
    print(f"\n{CLIENTS} clients, {ROUNDS} rounds of every upload to {', '.join(ENDPOINTS)}")
    for checkout in [arguments.baseline, REPO] if arguments.baseline else [REPO]:
        measure(checkout, uploads, settings)
        first_start_and_restart(checkout, settings)


if __name__ == "__main__":
    main()
