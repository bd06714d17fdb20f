"""Two processes on one collection: ``uvicorn --workers 2`` on one IMAGES_DIR and
INDEX_DIR (embedded store), and two replicas on one database and one mounted IMAGES_DIR
(Postgres store). One export and one embedding of the folder at start-up, every
acknowledged add and delete seen by the next search on either process, and one 201 for
simultaneous identical uploads."""

import re
import threading
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

import httpx
import pytest

from tests.conftest import BOTH_STORES, EXAMPLE_IMAGES, drawing, encode
from tests.servers import Server

pytestmark = BOTH_STORES

SEARCHES = 20


class Processes:
    """The service's URLs, one per process: a new connection to ``url`` reaches any
    worker; ``urls`` cycles through the replicas."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.url = servers[0].url
        self._next = cycle([server.url for server in servers])

    def next_url(self) -> str:
        return next(self._next)

    @property
    def log(self) -> str:
        return "".join(line for server in self.servers for line in server.log)


@pytest.fixture
def two_processes(
    store: str,
    servers: list[Server],
    tiny_model_dir: Path,
    images_dir: Path,
    tmp_path: Path,
    onnx_cache_dir: Path,
    store_settings: dict[str, str],
) -> Callable[..., Processes]:
    """Two workers of one uvicorn (embedded), or two uvicorns (postgres), started
    together; both have logged their start-up reconciliation."""

    def start(**settings: str) -> Processes:
        environment = {
            "ONNX_CACHE_DIR": str(onnx_cache_dir),
            "LOG_LEVEL": "INFO",
            "REQUEST_LOG": "false",
            **store_settings,
            **settings,
        }
        if store == "embedded":
            started = [
                Server(
                    tiny_model_dir, images_dir, tmp_path / "index", environment, ("--workers", "2")
                )
            ]
        else:  # replicas share the database and the folder, nothing else
            started = [
                Server(tiny_model_dir, images_dir, tmp_path / f"replica{n}", environment)
                for n in range(2)
            ]
        servers.extend(started)
        for server in started:
            server.wait_until_indexed()
        processes = Processes(started)
        for _ in range(300):
            if len(re.findall(r"Reconciled .* with ", processes.log)) >= 2:
                return processes
            time.sleep(0.1)
        raise AssertionError(processes.log[-2000:])

    return start


def fresh_search(processes: Processes, data: bytes) -> list[str]:
    """A search on a new connection, so that either process may answer it."""
    with httpx.Client(base_url=processes.next_url(), timeout=30) as client:
        response = client.post(
            "/search-similar-images/", files={"file": ("q.png", data)}, params={"top_k": 3}
        )
    assert response.status_code == 200, response.text
    return [result["id"] for result in response.json()["results"]]


def test_two_processes_embed_the_folder_once_and_export_each_tower_once(
    two_processes: Callable[..., Processes], tmp_path: Path
) -> None:
    processes = two_processes(ONNX_CACHE_DIR=str(tmp_path / "onnx"))  # a fresh one

    log = processes.log
    added = [int(count) for count in re.findall(r"ReconcileReport\(added=(\d+)", log)]
    assert sorted(added) == [0, 8], log
    assert log.count("Exporting the vision tower") == 1, log
    assert log.count("Exporting the text tower") == 1, log


def test_an_add_or_delete_on_one_process_is_seen_by_every_later_search(
    two_processes: Callable[..., Processes],
) -> None:
    processes = two_processes()
    data = encode(drawing(seed=77), "PNG")

    added = httpx.post(f"{processes.next_url()}/images/", files={"file": ("new.png", data)})
    image_id = added.json()["image"]["id"]
    found = [fresh_search(processes, data)[0] for _ in range(SEARCHES)]
    deleted = httpx.delete(f"{processes.next_url()}/images/{image_id}")
    after_delete = [fresh_search(processes, data) for _ in range(SEARCHES)]
    counts = [
        httpx.get(f"{processes.next_url()}/image-count/").json()["count"] for _ in range(SEARCHES)
    ]

    assert added.status_code == 201 and deleted.status_code == 200
    assert found == [image_id] * SEARCHES
    assert not [ids for ids in after_delete if image_id in ids]
    assert counts == [8] * SEARCHES


def test_simultaneous_identical_uploads_to_two_processes_give_exactly_one_201(
    two_processes: Callable[..., Processes], images_dir: Path
) -> None:
    processes = two_processes()
    statuses: list[int] = []

    for round_number in range(10):
        data = encode(drawing(seed=100 + round_number), "PNG")
        start = threading.Barrier(4)

        def upload(
            payload: bytes = data, barrier: threading.Barrier = start, url: str = ""
        ) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                barrier.wait()
                statuses.append(
                    client.post("/images/", files={"file": ("d.png", payload)}).status_code
                )

        uploads = [
            threading.Thread(target=upload, kwargs={"url": processes.next_url()}) for _ in range(4)
        ]
        for thread in uploads:
            thread.start()
        for thread in uploads:
            thread.join()

    assert sorted(statuses) == [201] * 10 + [409] * 30
    files = [path for path in images_dir.iterdir() if path.suffix == ".png"]
    assert len(files) == 10
    assert httpx.get(f"{processes.url}/images/", params={"page_size": 100}).json()["total"] == 18
    assert (
        fresh_search(processes, (EXAMPLE_IMAGES / "imagen3.jpg").read_bytes())[0] == "imagen3.jpg"
    )


def test_adds_racing_a_delete_of_everything_on_another_process_leave_no_file_unlisted(
    two_processes: Callable[..., Processes], images_dir: Path
) -> None:
    processes = two_processes()
    acknowledged: list[str] = []
    stop = threading.Event()

    def add_until_stopped(worker: int) -> None:
        with httpx.Client(base_url=processes.next_url(), timeout=60) as client:
            for seed in range(1000 * worker, 1000 * worker + 1000):
                if stop.is_set():
                    return
                data = encode(drawing(seed=seed), "PNG")
                response = client.post("/images/", files={"file": ("d.png", data)})
                if response.status_code == 201:
                    acknowledged.append(response.json()["image"]["id"])

    adders = [threading.Thread(target=add_until_stopped, args=(n,)) for n in range(4)]
    for thread in adders:
        thread.start()
    deletes = []
    for pause in (0.5, 1.2, 0.7, 1.5, 0.9, 1.1):
        time.sleep(pause)
        with httpx.Client(base_url=processes.next_url(), timeout=60) as client:
            deletes.append(client.delete("/images/", params={"confirm": "true"}).status_code)
    time.sleep(1.0)
    stop.set()
    for thread in adders:
        thread.join()

    listed = {
        image["id"]
        for image in httpx.get(f"{processes.url}/images/", params={"page_size": 100}).json()[
            "images"
        ]
    }
    on_disk = {path.name for path in images_dir.iterdir() if not path.name.startswith(".")}
    assert deletes == [200] * 6
    assert acknowledged
    assert on_disk == listed  # every acknowledged add is listed, or gone with its file
