"""``uvicorn --workers 2`` on one IMAGES_DIR and INDEX_DIR: one export and one embedding
of the folder at start-up, every acknowledged add and delete seen by the next search on
either worker, and one 201 for simultaneous identical uploads."""

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import EXAMPLE_IMAGES, drawing, encode
from tests.servers import Server

SEARCHES = 20


def two_workers(start_server: Callable[..., Server], **settings: str) -> Server:
    """Two uvicorn workers; both have logged their start-up reconciliation."""
    server = start_server(
        {"LOG_LEVEL": "INFO", "REQUEST_LOG": "false", **settings}, ("--workers", "2")
    )
    for _ in range(300):
        if len(re.findall(r"Reconciled .* with ", "".join(server.log))) >= 2:
            return server
        time.sleep(0.1)
    raise AssertionError("".join(server.log[-20:]))


def fresh_search(server: Server, data: bytes) -> list[str]:
    """A search on a new connection, so that either worker may answer it."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post(
            "/search-similar-images/", files={"file": ("q.png", data)}, params={"top_k": 3}
        )
    assert response.status_code == 200, response.text
    return [result["id"] for result in response.json()["results"]]


def test_two_workers_embed_the_folder_once_and_export_the_model_once(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = two_workers(start_server, ONNX_CACHE_DIR=str(tmp_path / "onnx"))  # a fresh one

    log = "".join(server.log)
    added = [int(count) for count in re.findall(r"ReconcileReport\(added=(\d+)", log)]
    assert sorted(added) == [0, 8], log
    assert log.count("Exporting ") == 1, log


def test_an_add_or_delete_on_one_worker_is_seen_by_every_later_search(
    start_server: Callable[..., Server],
) -> None:
    server = two_workers(start_server)
    data = encode(drawing(seed=77), "PNG")

    added = httpx.post(f"{server.url}/images/", files={"file": ("new.png", data)})
    image_id = added.json()["image"]["id"]
    found = [fresh_search(server, data)[0] for _ in range(SEARCHES)]
    deleted = httpx.delete(f"{server.url}/images/{image_id}")
    after_delete = [fresh_search(server, data) for _ in range(SEARCHES)]
    counts = [httpx.get(f"{server.url}/image-count/").json()["count"] for _ in range(SEARCHES)]

    assert added.status_code == 201 and deleted.status_code == 200
    assert found == [image_id] * SEARCHES
    assert not [ids for ids in after_delete if image_id in ids]
    assert counts == [8] * SEARCHES


def test_simultaneous_identical_uploads_to_two_workers_give_exactly_one_201(
    start_server: Callable[..., Server], images_dir: Path
) -> None:
    server = two_workers(start_server)
    statuses: list[int] = []

    for round_number in range(10):
        data = encode(drawing(seed=100 + round_number), "PNG")
        start = threading.Barrier(4)

        def upload(payload: bytes = data, barrier: threading.Barrier = start) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                barrier.wait()
                statuses.append(
                    client.post("/images/", files={"file": ("d.png", payload)}).status_code
                )

        uploads = [threading.Thread(target=upload) for _ in range(4)]
        for thread in uploads:
            thread.start()
        for thread in uploads:
            thread.join()

    assert sorted(statuses) == [201] * 10 + [409] * 30
    files = [path for path in images_dir.iterdir() if path.suffix == ".png"]
    assert len(files) == 10
    assert httpx.get(f"{server.url}/images/", params={"page_size": 100}).json()["total"] == 18
    assert fresh_search(server, (EXAMPLE_IMAGES / "imagen3.jpg").read_bytes())[0] == "imagen3.jpg"
