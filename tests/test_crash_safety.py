"""A real server killed (SIGKILL) in the middle of adds and deletes leaves a store that
loads, and the next start reconciles it with the folder without losing an accepted file;
on both stores."""

import itertools
import math
import threading
import time
from pathlib import Path

import httpx

from app.storage.image_folder import BULK_LOCK, COLLECTION_MARKER
from tests.conftest import BOTH_STORES, drawing, encode
from tests.servers import Server

pytestmark = BOTH_STORES

ROUNDS = 3
WRITERS = 2


def test_killing_the_server_during_adds_and_deletes_loses_nothing_accepted(
    servers: list[Server],
    tiny_model_dir: Path,
    images_dir: Path,
    index_dir: Path,
    store_settings: dict[str, str],
) -> None:
    hidden_before = {path.name for path in images_dir.glob(".*")}
    seeds = itertools.count(1000)
    acknowledged_adds: set[str] = set()
    acknowledged_deletes: set[str] = set()
    lock = threading.Lock()

    def write_until_killed(url: str, stop: threading.Event) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                data = encode(drawing(seed=next(seeds)), "PNG")
                try:
                    response = http.post("/images/", files={"file": ("d.png", data)})
                    image_id = response.json()["image"]["id"]
                    with lock:
                        acknowledged_adds.add(image_id)
                    if next(seeds) % 2 and http.delete(f"/images/{image_id}").status_code == 200:
                        with lock:
                            acknowledged_deletes.add(image_id)
                except (httpx.TransportError, ValueError, KeyError):
                    return  # the server is gone

    for round_number in range(ROUNDS):
        server = Server(tiny_model_dir, images_dir, index_dir, store_settings)
        servers.append(server)
        server.wait_until_indexed()
        stop = threading.Event()
        writers = [
            threading.Thread(target=write_until_killed, args=(server.url, stop))
            for _ in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        time.sleep(0.8 + 0.5 * round_number)  # kill at a different point of a write each round
        server.kill()
        stop.set()
        for writer in writers:
            writer.join(30)

    assert len(acknowledged_adds) >= ROUNDS, "the writers never got going"
    server = Server(tiny_model_dir, images_dir, index_dir, store_settings)
    servers.append(server)
    server.wait_until_indexed()
    files = {path.name for path in images_dir.iterdir() if not path.name.startswith(".")}
    pages = math.ceil(len(files) / 100)  # a page past the end would repeat the last one
    listed = [
        image
        for page in range(1, pages + 1)
        for image in httpx.get(
            f"{server.url}/images/", params={"page": page, "page_size": 100}
        ).json()["images"]
    ]
    health = httpx.get(f"{server.url}/health").json()

    # A write cut short is settled at the next start: no staged or withdrawn file is left.
    assert (
        not {path.name for path in images_dir.iterdir()}
        - files
        - hidden_before
        - {
            COLLECTION_MARKER,
            BULK_LOCK,
        }
    )
    assert acknowledged_adds - acknowledged_deletes <= files
    assert not acknowledged_deletes & files
    assert sorted(image["id"] for image in listed) == sorted(files)
    assert health["indexed_images"] == len(files)
    for image_id in sorted(acknowledged_adds - acknowledged_deletes)[:3]:
        data = (images_dir / image_id).read_bytes()
        found = httpx.post(
            f"{server.url}/search-similar-images/", files={"file": ("q.png", data)}
        ).json()["results"]
        # Found at the top score; among equal scores the order is arbitrary.
        own = [result["similarity"] for result in found if result["id"] == image_id]
        assert own and own[0] >= found[0]["similarity"] - 1e-5
