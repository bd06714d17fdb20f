"""Shared fixtures: a tiny random CLIP checkpoint saved to disk and loaded through the
service's real ``from_pretrained`` path, apps started on it with their real lifespan, and
a real PostgreSQL with pgvector (``pgserver``) for the Postgres store.

Modules marked ``BOTH_STORES`` run every test once per store: embedded, and postgres on
a database of its own."""

import io
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import torch
from fastapi.testclient import TestClient
from pgserver.postgres_server import PostgresServer, get_server
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from app.config import ENV_FILE_VARIABLE, UVICORN_ONLY, Settings, load_settings
from app.embedding.model_source import HubAccess
from app.embedding.tower import TowerOptions
from app.main import create_app
from app.storage.image_folder import BULK_LOCK, COLLECTION_MARKER
from scripts.clip_tokenizer import save_minimal_clip_tokenizer, special_token_ids
from tests.servers import REPO, Server

EXAMPLE_IMAGES = REPO / "example_images"
TEST_IMAGES = REPO / "test_images"
# ViT-B/32's geometry (224 pixels in 32-pixel patches) at tiny widths: the service's
# 224-pixel squares then take the same way through the image processor as with CLIP.
TINY_IMAGE_SIDE = 224
TINY_VOCABULARY = 1000


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """Write a CLIP checkpoint with tiny sizes and random weights fixed by ``seed`` to
    ``folder``, with a minimal tokenizer (``scripts.clip_tokenizer``)."""
    start, end = special_token_ids(TINY_VOCABULARY)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "vocab_size": TINY_VOCABULARY,
            "max_position_embeddings": 77,
            "bos_token_id": start,
            "eos_token_id": end,
            "pad_token_id": end,
        },
        vision_config={
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": TINY_IMAGE_SIDE,
            "patch_size": 32,
        },
        projection_dim=24,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIDE},
        crop_size={"height": TINY_IMAGE_SIDE, "width": TINY_IMAGE_SIDE},
    ).save_pretrained(folder)
    save_minimal_clip_tokenizer(folder, TINY_VOCABULARY)
    return folder


# Where a test's torch-only towers would put ONNX exports: nowhere (they make none).
NO_ONNX_CACHE = Path("/nonexistent-onnx-cache")


def tower_options(
    inference: str = "torch", onnx_dir: Path = NO_ONNX_CACHE, export_in_child: bool = True
) -> TowerOptions:
    """How a test loads a tower on the CPU, the hub never asked (it is unreachable)."""
    return TowerOptions(
        device="cpu",
        inference=inference,
        model_threads=0,
        cpu_threads=os.cpu_count() or 1,
        onnx_dir=onnx_dir,
        hub=HubAccess("https://huggingface.co", offline=True),
        export_in_child=export_in_child,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def onnx_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export of each tiny checkpoint for the whole run (an export takes seconds;
    every app still checks the cached graph against its model at start)."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    """A copy of the first eight sample images."""
    folder = tmp_path / "images"
    folder.mkdir()
    for number in range(1, 9):
        shutil.copy(EXAMPLE_IMAGES / f"imagen{number}.jpg", folder)
    return folder


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


STORES = ["embedded", "postgres"]
# Runs a module's tests once per store: those that reach a store (through make_settings,
# start_server or store_settings).
BOTH_STORES = pytest.mark.both_stores


def pytest_configure(config: pytest.Config) -> None:
    """Every test sees only the settings it gives: none of the developer's environment
    variables reach in-process settings or the servers a test starts (they inherit this
    process's environment), and no settings file is read (ENV_FILE empty), so a
    repository's own ``.env`` changes nothing (``test_the_suite_ignores_a_developers_env``)."""
    for name in [*(field.upper() for field in Settings.model_fields), *UVICORN_ONLY]:
        os.environ.pop(name, None)
    os.environ[ENV_FILE_VARIABLE] = ""
    # The default ONNX cache of a test that names none: never the developer's own.
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="brand-search-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.get("XDG_CACHE_HOME", ""), ignore_errors=True)


# What makes a test slow (seconds to minutes): a real server process, a browser, or a
# command run as an operator runs it. ``pytest -m "not slow"`` leaves these out.
SLOW_FIXTURES = frozenset({"start_server", "servers", "two_processes", "browser", "postgres"})
SLOW_MODULES = frozenset(
    {"test_environment", "test_fuzzing", "test_crash_safety", "test_live_consistency"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests (``SLOW_FIXTURES``, ``SLOW_MODULES``, every Postgres run)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(item, "callspec", None)
        on_postgres = params is not None and params.params.get("store") == "postgres"
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        if fixtures & SLOW_FIXTURES or module in SLOW_MODULES or on_postgres:
            item.add_marker(pytest.mark.slow)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_stores") and "store" in metafunc.fixturenames:
        metafunc.parametrize("store", STORES, indirect=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """PostgreSQL 16 with pgvector, started once in a folder of its own: outside pytest's
    temporary folders, which another pytest run on this machine may delete midway."""
    folder = Path(tempfile.mkdtemp(prefix="brand-search-postgres-"))
    server = get_server(folder, cleanup_mode="delete")
    yield server
    server.cleanup()


@pytest.fixture
def store(request: pytest.FixtureRequest) -> str:
    """The store under test: embedded unless the module runs ``BOTH_STORES``."""
    return str(getattr(request, "param", "embedded"))


def new_database(server: PostgresServer) -> str:
    """The URL of a new, empty database on ``server``."""
    name = f"test_{uuid.uuid4().hex}"
    try:
        connection = psycopg.connect(server.get_uri(), autocommit=True)
    except psycopg.OperationalError as exc:
        # Every later Postgres test would fail the same way: say it once, and stop.
        pytest.exit(f"The test session's PostgreSQL stopped: {exc}", returncode=3)
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"'.encode())
    return str(server.get_uri(name))


@pytest.fixture
def store_settings(store: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that selects this test's store (a database of its own)."""
    if store == "embedded":
        return {"STORE": "embedded"}
    return {"STORE": "postgres", "DATABASE_URL": new_database(request.getfixturevalue("postgres"))}


@pytest.fixture
def make_settings(
    tiny_model_dir: Path,
    images_dir: Path,
    index_dir: Path,
    onnx_cache_dir: Path,
    store_settings: dict[str, str],
) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "model_name": str(tiny_model_dir),
            "device": "cpu",
            "images_dir": images_dir,
            "index_dir": index_dir,
            "onnx_cache_dir": onnx_cache_dir,
            # The TestClient's own host name, beside the default ones.
            "allowed_hosts": [*Settings.model_fields["allowed_hosts"].default, "testserver"],
            **{name.lower(): value for name, value in store_settings.items()},
        }
        values.update(overrides)
        return load_settings(**values)

    return make


def wait_until_indexed(client: TestClient, timeout_s: float = 60) -> None:
    """Wait for the background reconciliation that follows start-up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get("/health").json()
        if body["status"] == "ok" and not body["indexing"]["running"]:
            return
        time.sleep(0.02)
    raise AssertionError("indexing did not finish")


LOOPBACK_CLIENT = ("127.0.0.1", 50000)


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start the real app (lifespan included) with settings overrides, as a client on the
    service's machine, and wait for its start-up indexing; closed after the test."""
    clients: list[TestClient] = []

    def make(
        *, client: tuple[str, int] = LOOPBACK_CLIENT, wait: bool = True, **overrides: object
    ) -> TestClient:
        test_client = TestClient(create_app(make_settings(**overrides)), client=client)
        test_client.__enter__()
        clients.append(test_client)
        if wait:
            wait_until_indexed(test_client)
        return test_client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def folder_files(folder: Path) -> list[str]:
    """Every file of an image folder, staged and withdrawn ones included, but the
    folder's own bookkeeping (its collection marker and bulk-delete lock), sorted."""
    return sorted(
        path.name for path in folder.iterdir() if path.name not in (COLLECTION_MARKER, BULK_LOCK)
    )


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


def drawing(size: int = 200, seed: int = 0) -> Image.Image:
    """A random dark scribble on white, different for every seed."""
    rng = np.random.default_rng(seed)
    pixels = np.full((size, size, 3), 255, dtype=np.uint8)
    for _ in range(6):
        x, y = rng.integers(0, size - 40, 2)
        pixels[y : y + 40, x : x + 8] = 0
    return Image.fromarray(pixels)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Real server processes a test starts (``tests.servers``); killed at its end."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


@pytest.fixture
def start_server(
    servers: list[Server],
    tiny_model_dir: Path,
    images_dir: Path,
    index_dir: Path,
    onnx_cache_dir: Path,
    store_settings: dict[str, str],
) -> Callable[..., Server]:
    """Start a real server on this test's folders, store and the session's ONNX export,
    with extra settings and uvicorn options, and wait for its indexing; killed at the
    end."""

    def start(
        settings: dict[str, str] | None = None, uvicorn_options: tuple[str, ...] = ()
    ) -> Server:
        environment = {
            "ONNX_CACHE_DIR": str(onnx_cache_dir),
            **store_settings,
            **(settings or {}),
        }
        server = Server(tiny_model_dir, images_dir, index_dir, environment, uvicorn_options)
        servers.append(server)
        return server.wait_until_indexed()

    return start
