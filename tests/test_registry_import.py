"""Importing a registry with ``python -m app.cli.index import-registry FOLDER LABELS.csv``:
labels kept, refused scans reported with their reason, a kill mid-import resumed without
a duplicate, and a CSV naming a missing file refused before anything is imported."""

import csv
import os
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import LOOPBACK_CLIENT, drawing, encode, folder_files, wait_until_indexed
from tests.servers import index_command, run_command

SCANS = 6


def registry(folder: Path) -> Path:
    """``SCANS`` scans labelled with Spanish owners, a PDF, and a copy of the first scan
    under another name; the CSV that lists them."""
    folder.mkdir()
    rows = [("file", "label")]
    for number in range(SCANS):
        (folder / f"marca {number}.png").write_bytes(encode(drawing(seed=number), "PNG"))
        rows.append((f"marca {number}.png", f"Reg. {1040 + number} - José Peña Núñez"))
    (folder / "formulario.pdf").write_bytes(b"%PDF-1.4 not a drawing")
    (folder / "copia.png").write_bytes((folder / "marca 0.png").read_bytes())
    rows += [("formulario.pdf", "Reg. 2000 - Ana"), ("copia.png", "Reg. 2001 - Luis")]
    labels = folder.parent / "registro.csv"
    with labels.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return labels


def environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "MODEL_NAME": settings.model_name,
        "DEVICE": "cpu",
        "ONNX_CACHE_DIR": str(settings.onnx_cache_dir),
        "IMAGES_DIR": str(settings.images_dir),
        "INDEX_DIR": str(settings.index_dir),
    }


def listed(settings: Settings) -> list[dict[str, object]]:
    with TestClient(create_app(settings), client=LOOPBACK_CLIENT) as client:
        wait_until_indexed(client)
        images: list[dict[str, object]] = client.get("/images/", params={"page_size": 100}).json()[
            "images"
        ]
    return images


def test_a_registry_is_imported_with_its_labels_and_a_report_of_what_was_refused(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(images_dir=tmp_path / "brands")
    labels = registry(tmp_path / "scans")

    done = index_command(
        environment(settings), "import-registry", str(tmp_path / "scans"), str(labels)
    )

    assert done.returncode == 3, done.stderr  # one scan refused
    assert "registered=6 already_registered=1 refused=1" in done.stdout
    assert "scan/s" in done.stderr or "s/scan" in done.stderr  # the progress bar's rate
    with (tmp_path / "registro.report.csv").open(encoding="utf-8") as stream:
        report = list(csv.DictReader(stream))
    assert [(row["file"], row["outcome"]) for row in report] == [
        ("formulario.pdf", "refused"),
        ("copia.png", "already_registered"),
    ]
    assert "formulario.pdf" not in report[0]["reason"] and report[0]["reason"]
    images = listed(settings)
    assert sorted(str(image["label"]) for image in images) == [
        f"Reg. {1040 + number} - José Peña Núñez" for number in range(SCANS)
    ]
    assert {image["original_filename"] for image in images} == {
        f"marca {number}.png" for number in range(SCANS)
    }


# Runs the import, killed by SIGKILL as the third scan's record is committed and before
# its file is published.
KILLED_IMPORT = """
import os, signal, sys
from app.cli.index import main
from app.storage.image_folder import ImageFolder

published = ImageFolder.publish
calls = []
def publish(folder, pending):
    calls.append(pending)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    published(folder, pending)
ImageFolder.publish = publish
sys.exit(main(sys.argv[1:]))
"""


def test_an_import_killed_midway_resumes_and_registers_each_scan_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(images_dir=tmp_path / "brands")
    labels = registry(tmp_path / "scans")
    arguments = ("import-registry", str(tmp_path / "scans"), str(labels))

    killed = run_command([sys.executable, "-c", KILLED_IMPORT, *arguments], environment(settings))
    resumed = index_command(environment(settings), *arguments)

    assert killed.returncode == -9, killed.stderr
    assert resumed.returncode == 3, resumed.stderr
    # The killed run had committed three scans; the resumed one finds them registered.
    assert "registered=3 already_registered=4 refused=1" in resumed.stdout
    images = listed(settings)
    assert len(images) == SCANS
    assert len({image["label"] for image in images}) == SCANS
    assert len(folder_files(settings.images_dir)) == SCANS


def test_a_csv_naming_a_missing_file_is_refused_with_one_line_and_nothing_imported(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(images_dir=tmp_path / "brands")
    labels = registry(tmp_path / "scans")
    with labels.open("a", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerow(("marca 99.png", "Reg. 9999 - Nadie"))

    refused = index_command(
        environment(settings), "import-registry", str(tmp_path / "scans"), str(labels)
    )

    assert refused.returncode == 1
    line = refused.stderr.strip().splitlines()[-1]
    assert "line 10" in line and "marca 99.png" in line and "nothing was imported" in line
    assert not settings.images_dir.exists() or not folder_files(settings.images_dir)
