"""Start-up: folders that are empty or partly unreadable, bad settings, missing models."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings, load_settings
from app.errors import ConfigError, ModelLoadError
from app.main import create_app
from app.storage.image_folder import INCOMING_PREFIX
from tests.conftest import EXAMPLE_IMAGES, drawing, encode
from tests.servers import REPO, free_port, run_command

SEARCH = "/search-similar-images/"


def test_empty_folder_gives_a_running_service_with_no_results(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    client = make_client(images_dir=empty)

    assert client.get("/health").json()["indexed_images"] == 0
    response = client.post(SEARCH, files={"file": ("q.png", encode(drawing(), "PNG"), "image/png")})
    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_unreadable_files_are_skipped_with_a_warning(
    make_client: Callable[..., TestClient], images_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (images_dir / "notes.txt").write_text("not an image")
    (images_dir / "broken.jpg").write_bytes((EXAMPLE_IMAGES / "imagen9.jpg").read_bytes()[:3000])
    (images_dir / "empty.png").write_bytes(b"")

    client = make_client()

    assert client.get("/health").json()["indexed_images"] == 8
    skipped = " ".join(
        record.getMessage() for record in caplog.records if record.levelname == "WARNING"
    )
    for name in ("notes.txt", "broken.jpg", "empty.png"):
        assert name in skipped
    result = client.post(
        SEARCH,
        files={"file": ("q.jpg", (EXAMPLE_IMAGES / "imagen3.jpg").read_bytes(), "image/jpeg")},
    ).json()["results"][0]
    assert result["id"] == "imagen3.jpg"


def test_missing_images_folder_is_created_empty(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(images_dir=tmp_path / "not-yet")

    assert client.get("/health").json()["indexed_images"] == 0
    assert (tmp_path / "not-yet").is_dir()


def test_missing_model_folder_fails_start_up_naming_model_name(
    make_settings: Callable[..., object], tmp_path: Path
) -> None:
    app = create_app(make_settings(model_name=str(tmp_path / "no-such-model")))  # type: ignore[arg-type]

    with (
        pytest.raises(ModelLoadError, match=r"MODEL_NAME=.*no-such-model.*local folder"),
        TestClient(app),
    ):
        pass


def test_uncached_hub_model_fails_fast_when_offline(
    make_settings: Callable[..., object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    app = create_app(make_settings(model_name="someone/clip-not-cached"))  # type: ignore[arg-type]
    started = time.monotonic()

    with (
        pytest.raises(ModelLoadError, match="MODEL_NAME='someone/clip-not-cached'"),
        TestClient(app),
    ):
        pass
    assert time.monotonic() - started < 30


def start_uvicorn(settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``uvicorn app.main:served_app --factory`` as an operator runs it, until it exits."""
    return run_command(
        [sys.executable, "-m", "uvicorn", "app.main:served_app", "--factory", "--port", "0"],
        {**os.environ, "DEVICE": "cpu", **settings},
    )


def error_lines(stderr: str) -> list[str]:
    """What the operator is told, without uvicorn's own progress lines."""
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and " INFO " not in line and "Application startup failed" not in line
    ]


def test_uvicorn_that_cannot_load_the_model_exits_with_one_clear_line(tmp_path: Path) -> None:
    finished = start_uvicorn(
        {"MODEL_NAME": str(tmp_path / "missing-model"), "IMAGES_DIR": str(tmp_path / "images")}
    )

    lines = error_lines(finished.stderr)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    assert len(lines) == 1, finished.stderr
    assert "MODEL_NAME=" in lines[0] and "missing-model" in lines[0]
    assert 'see README.md: "Offline use"' in lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TOP_K", "ten"), ("WRITE_ALLOWED_NETWORKS", "lan"), ("STORE", "mongodb")],
)
def test_uvicorn_with_an_invalid_setting_exits_with_one_clear_line(
    tmp_path: Path, variable: str, value: str
) -> None:
    finished = start_uvicorn({variable: value, "IMAGES_DIR": str(tmp_path / "images")})

    lines = error_lines(finished.stderr)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    assert len(lines) == 1, finished.stderr
    assert f"{variable}=" in lines[0] and 'see docs/operations.md: "Settings"' in lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TOP_K", "ten"),
        ("TOP_K", "0"),
        ("MAX_UPLOAD_MB", "-1"),
        ("DEVICE", "tpu"),
        ("SIMILARITY_THRESHOLD", "2"),
        ("PUBLIC_BASE_URL", "brands.example"),
        ("CORS_ORIGIN_REGEX", "(unclosed"),
        ("GRID_REMOVAL", "maybe"),
        ("GRID_WORKING_SIDE", "50"),
        ("GRID_INK_THRESHOLD", "1.5"),
        ("INDEX_FACTORY", "IVF64,Flat"),
        ("INDEX_FACTORY", "NotAnIndex"),
        ("HNSW_EF_SEARCH", "0"),
        ("HNSW_EF_SEARCH", "5000"),
        ("INFERENCE", "fast"),
        ("MODEL_THREADS", "-1"),
        ("RERANK_CANDIDATES", "-1"),
        ("RERANK_CANDIDATES", "many"),
        ("RERANK_CANDIDATES", "5000"),
        ("TEXT_SEARCH", "maybe"),
        ("PG_HNSW", "maybe"),
        ("SEARCH_MODE", "color"),
        ("HYBRID_CONCEPT_WEIGHT", "2"),
        ("CONFIRM_REMOVALS", "perhaps"),
        ("MAX_IMAGE_PIXELS", "-5"),
        ("DECODE_CONCURRENCY", "0"),
        ("DECODE_MEMORY_MB", "-1"),
        ("GRID_MIN_LINES", "-1"),
        ("GRID_MAX_DISC_FRACTION", "3"),
        ("EMBED_BATCH_SIZE", "0"),
        ("SEARCH_BATCH_SIZE", "0"),
        ("SEARCH_QUEUE_SIZE", "-1"),
        ("PREPROCESS_THREADS", "-1"),
        ("RESULT_PATH", "nowhere"),
        ("LOG_LEVEL", "LOUD"),
        ("REQUEST_LOG", "sometimes"),
        ("CORS_ORIGINS", "brands.example"),
        ("HF_ENDPOINT", "huggingface.co"),
    ],
)
def test_invalid_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_uvicorn_that_cannot_reach_the_database_exits_with_one_line_without_password(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    (tmp_path / "images").mkdir()
    finished = start_uvicorn(
        {
            "MODEL_NAME": str(tiny_model_dir),
            "IMAGES_DIR": str(tmp_path / "images"),
            "INDEX_DIR": str(tmp_path / "index"),
            "STORE": "postgres",
            "DATABASE_URL": f"postgresql://registry:s3cret@/brands?host={tmp_path}&port=1",
        }
    )

    lines = error_lines(finished.stderr)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr and "s3cret" not in finished.stderr
    assert len(lines) == 1, finished.stderr
    assert "dbname=brands" in lines[0] and "cannot be reached" in lines[0]
    assert 'see docs/operations.md: "Postgres"' in lines[0]


def test_postgres_without_a_database_url_fails_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORE", "postgres")
    monkeypatch.delenv("DATABASE_URL", raising=False)

    with pytest.raises(ConfigError, match="STORE=postgres needs DATABASE_URL"):
        load_settings()


def test_an_add_abandoned_before_its_record_is_discarded_at_start(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    abandoned = images_dir / f"{INCOMING_PREFIX}0123abcd.png"
    abandoned.write_bytes(b"half an upload")
    a_minute_ago = time.time() - 60
    os.utime(abandoned, (a_minute_ago, a_minute_ago))

    client = make_client()

    assert not abandoned.exists()
    assert client.get("/images/").json()["total"] == 8


def test_top_k_above_max_top_k_fails_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOP_K", "50")
    monkeypatch.setenv("MAX_TOP_K", "20")

    with pytest.raises(ConfigError, match=r"TOP_K.*MAX_TOP_K"):
        load_settings()


def test_settings_are_read_from_a_dotenv_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENV_FILE")  # the suite reads no settings file; a service reads .env
    (tmp_path / ".env").write_text("TOP_K=7\nCORS_ORIGINS=http://a.example,http://b.example\n")

    settings = load_settings()

    assert settings.top_k == 7
    assert settings.cors_origins == ["http://a.example", "http://b.example"]


def test_env_template_lists_every_setting_and_nothing_else() -> None:
    template = (REPO / ".env.template").read_text()
    listed = {
        line.split("=", 1)[0] for line in template.splitlines() if re.match(r"^[A-Z_]+=", line)
    }

    assert listed == {name.upper() for name in Settings.model_fields}


def a_file(tmp_path: Path) -> Path:
    """A plain file, under which no folder can ever be created (even by root)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker


@pytest.mark.parametrize("variable", ["IMAGES_DIR", "INDEX_DIR", "ONNX_CACHE_DIR"])
def test_a_folder_that_cannot_be_created_stops_the_start_in_one_line_naming_it(
    tmp_path: Path, tiny_model_dir: Path, variable: str
) -> None:
    folders = {
        "IMAGES_DIR": str(tmp_path / "images"),
        "INDEX_DIR": str(tmp_path / "index"),
        "ONNX_CACHE_DIR": str(tmp_path / "onnx"),
    }
    folders[variable] = str(a_file(tmp_path) / "folder")
    started = time.monotonic()

    finished = start_uvicorn({"MODEL_NAME": str(tiny_model_dir), **folders})

    lines = error_lines(finished.stderr)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    assert len(lines) == 1, finished.stderr
    assert f" {variable}=" in lines[0] and "a-file/folder" in lines[0]
    assert 'see docs/operations.md: "Settings"' in lines[0]
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    "url",
    [
        "postgres//registry:s3cret@db/brands",
        "postgresql://registry:s3cret@db:fivefour/brands",
        "registry:s3cret@db",
    ],
)
def test_a_malformed_database_url_is_one_line_naming_it_without_the_password(
    tmp_path: Path, url: str
) -> None:
    finished = start_uvicorn(
        {"STORE": "postgres", "DATABASE_URL": url, "IMAGES_DIR": str(tmp_path / "images")}
    )

    lines = error_lines(finished.stderr)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr and "s3cret" not in finished.stderr
    assert len(lines) == 1, finished.stderr
    assert "DATABASE_URL (value not shown)" in lines[0]


def test_a_port_in_use_is_told_before_the_model_loads(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()

        finished = run_command(
            [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)],
            # A model that would take the hub's timeout to be told missing.
            {**os.environ, "MODEL_NAME": "someone/unknown-model", "HF_HUB_OFFLINE": "1"},
            timeout_s=60,
        )

    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        f"Port {port} on 127.0.0.1 is in use (another program, or this service already "
        "running): stop it, or start with --port and another number."
    ]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("model_name", ["./no-such-model", "someone/unknown-model"])
def test_a_wrong_model_name_is_told_in_one_line_before_the_service_starts(
    tmp_path: Path, model_name: str
) -> None:
    finished = run_command(
        [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(free_port())],
        {
            **os.environ,
            "MODEL_NAME": model_name,
            "HF_HUB_OFFLINE": "1",
            "IMAGES_DIR": str(tmp_path / "images"),
            "INDEX_DIR": str(tmp_path / "index"),
        },
        timeout_s=60,
    )

    assert finished.returncode == 3
    (line,) = finished.stderr.strip().splitlines()  # uvicorn never started
    assert line.startswith(f"MODEL_NAME={model_name!r} is not ")
    assert not (tmp_path / "index").exists()  # nothing was made before it was told


def served_health(command: list[str], environment: dict[str, str], port: int) -> httpx.Response:
    """Run ``command`` (a server on ``port``) in its own process group until its /health
    answers; the group is killed after, whatever happened."""
    server = subprocess.Popen(
        command,
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the service did not answer")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def tiny_environment(tmp_path: Path, tiny_model_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MODEL_NAME": str(tiny_model_dir),
        "DEVICE": "cpu",
        "IMAGES_DIR": str(tmp_path / "images"),
        "INDEX_DIR": str(tmp_path / "index"),
    }


def test_the_entry_point_serves_the_app_with_uvicorns_options(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "app", "--port", str(port), "--limit-concurrency", "8"]

    health = served_health(command, tiny_environment(tmp_path, tiny_model_dir), port)

    assert health.status_code == 200 and health.json()["model"] == str(tiny_model_dir)


def test_device_cuda_without_a_gpu_points_at_the_gpu_section(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    finished = start_uvicorn({"DEVICE": "cuda", "IMAGES_DIR": str(tmp_path / "images")})

    lines = error_lines(finished.stderr)
    assert len(lines) == 1, finished.stderr
    assert "DEVICE='cuda'" in lines[0] and 'see docs/operations.md: "GPU"' in lines[0]


def test_a_missing_text_model_names_text_model_name_and_the_words_section(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    finished = start_uvicorn(
        {
            "MODEL_NAME": str(tiny_model_dir),
            "TEXT_MODEL_NAME": str(tmp_path / "nonexistent"),
            "IMAGES_DIR": str(tmp_path / "images"),
            "INDEX_DIR": str(tmp_path / "index"),
        }
    )

    lines = error_lines(finished.stderr)
    assert len(lines) == 1, finished.stderr
    assert " TEXT_MODEL_NAME=" in lines[0] and "set TEXT_MODEL_NAME to" in lines[0]
    assert "MODEL_NAME to" not in lines[0].replace("TEXT_MODEL_NAME to", "")
    assert 'see docs/api.md: "Search by words"' in lines[0]


def test_unknown_keys_of_the_settings_file_are_warned_about_at_start(tmp_path: Path) -> None:
    settings = tmp_path / "registry.env"
    settings.write_text("TOPK=5\n")

    finished = start_uvicorn(
        {
            "ENV_FILE": str(settings),
            "MODEL_NAME": str(tmp_path / "missing-model"),
            "IMAGES_DIR": str(tmp_path / "images"),
        }
    )

    assert "TOPK in " in finished.stderr and "did you mean TOP_K?" in finished.stderr


def test_an_images_dir_that_cannot_be_created_stops_the_start_in_one_line_naming_it(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    finished = start_uvicorn(
        {
            "MODEL_NAME": str(tiny_model_dir),
            "IMAGES_DIR": "/proc/nonexistent/brands",
            "INDEX_DIR": str(tmp_path / "index"),
        }
    )

    lines = error_lines(finished.stderr)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    assert len(lines) == 1, finished.stderr
    assert "IMAGES_DIR='/proc/nonexistent/brands'" in lines[0]


@pytest.mark.parametrize("damage", ["garbage header", "truncated"])
def test_a_damaged_catalog_stops_the_start_in_one_line_naming_it(
    tmp_path: Path, tiny_model_dir: Path, damage: str
) -> None:
    index = tmp_path / "index"
    index.mkdir()
    catalog = index / "catalog.sqlite3"
    if damage == "garbage header":
        catalog.write_bytes(b"this is not a database" * 1000)
    else:
        catalog.write_bytes(b"SQLite format 3\x00" + b"\x10\x00\x01\x01" + b"\x00" * 80)

    finished = start_uvicorn(
        {
            "MODEL_NAME": str(tiny_model_dir),
            "IMAGES_DIR": str(tmp_path / "images"),
            "INDEX_DIR": str(index),
        }
    )

    lines = error_lines(finished.stderr)
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    assert len(lines) == 1, finished.stderr
    assert "INDEX_DIR" in lines[0] and str(catalog) in lines[0]


def test_the_seed_readmes_run_command_serves_the_app(tmp_path: Path, tiny_model_dir: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]

    health = served_health(command, tiny_environment(tmp_path, tiny_model_dir), port)

    assert health.status_code == 200 and health.json()["model"] == str(tiny_model_dir)


def test_a_damaged_page_a_search_reads_answers_one_line_naming_the_catalog(
    make_client: Callable[..., TestClient], index_dir: Path
) -> None:
    make_client().close()
    catalog = index_dir / "catalog.sqlite3"
    with sqlite3.connect(catalog) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
        (root,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'embeddings'"
        ).fetchone()
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    with catalog.open("r+b") as damaged:  # the vectors' table, not the records'
        damaged.seek((root - 1) * page_size)
        damaged.write(b"\xff" * page_size)

    client = make_client(wait=False)
    answer = client.post(
        SEARCH,
        files={"file": ("q.jpg", (EXAMPLE_IMAGES / "imagen3.jpg").read_bytes(), "image/jpeg")},
    )

    assert answer.status_code == 500
    assert str(catalog) in answer.json()["detail"]
    assert "restore it from a backup" in answer.json()["detail"]
