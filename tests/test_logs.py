"""What the log tells an operator: timestamps on every line, one line per request, the
progress bar once at 100%, and a reconciliation report that counts what was stored."""

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import reconciliation
from app.config import Settings
from app.service import Service
from tests.servers import index_command

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def test_every_line_of_the_command_line_build_has_a_timestamp_and_no_weight_loading_bar(
    tiny_model_dir: Path, images_dir: Path, index_dir: Path
) -> None:
    built = index_command(
        {
            **os.environ,
            "MODEL_NAME": str(tiny_model_dir),
            "DEVICE": "cpu",
            "IMAGES_DIR": str(images_dir),
            "INDEX_DIR": str(index_dir),
            "INFERENCE": "torch",
        },
        "build",
    )
    assert built.returncode == 0, built.stderr

    lines = built.stderr.splitlines()
    assert lines and all(TIMESTAMP.match(line) for line in lines), built.stderr
    assert "Loading weights" not in built.stderr


def test_each_request_logs_one_line_with_method_path_status_and_time(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    caplog.clear()

    client.get("/images/", params={"page_size": 2})
    client.get("/images/nothing.jpg")

    lines = [record.getMessage() for record in caplog.records if record.name == "app.requests"]
    assert len(lines) == 2
    assert re.fullmatch(r"GET /images/\?page_size=2 200 \d+\.\d ms", lines[0])
    assert re.fullmatch(r"GET /images/nothing\.jpg 404 \d+\.\d ms", lines[1])


def test_the_request_log_is_off_with_its_setting(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(request_log=False)
    caplog.clear()

    client.get("/health")

    assert not [record for record in caplog.records if record.name == "app.requests"]


def test_the_progress_bar_reaches_100_percent_once(
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reconciliation, "PROGRESS_LOG_INTERVAL_S", 0.0)
    caplog.set_level(logging.INFO)  # no app configured the log here
    service = Service.open(make_settings(embed_batch_size=3))
    try:
        service.reconciler.reconcile()
    finally:
        service.close()

    bars = [record.getMessage() for record in caplog.records if "Indexing [" in record.getMessage()]
    assert [bar.split()[2] for bar in bars] == ["3/8", "6/8", "8/8"]


def test_an_interrupted_reconciliation_reports_what_it_stored_and_what_is_left(
    make_settings: Callable[..., Settings],
) -> None:
    service = Service.open(make_settings(embed_batch_size=3))
    batches = iter([False, True])
    try:
        report = service.reconciler.reconcile(should_stop=lambda: next(batches))
    finally:
        service.close()

    assert (report.added, report.pending, report.failed) == (3, 5, 0)
    assert report.indexed_images == 3


def test_a_file_that_fails_counts_as_failed_only(
    make_settings: Callable[..., Settings], images_dir: Path
) -> None:
    (images_dir / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    service = Service.open(make_settings())
    try:
        report = service.reconciler.reconcile()
    finally:
        service.close()

    assert (report.added, report.failed, report.pending, report.indexed_images) == (8, 1, 0, 8)
