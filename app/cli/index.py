"""Command line for the collection's store, without starting the server.

    python -m app.cli.index build
    python -m app.cli.index export FOLDER
    python -m app.cli.index import FOLDER
    python -m app.cli.index restore-samples
    python -m app.cli.index import-registry FOLDER LABELS.csv [--report REPORT.csv]

read the same settings as the service (environment and ``.env``). ``build`` embeds new
and changed files of IMAGES_DIR into the store with a progress bar in the log, drops
removed ones, and prints a summary: it suits a Docker build step or a cron job, and the
service picks the result up without embedding anything again. ``export`` writes the
collection (files, records and vectors) to a new archive folder; ``import`` reads one
into IMAGES_DIR and the store STORE names, then builds (``app.archive``): together they
move a collection from one store to the other. ``restore-samples`` puts the repository's
sample folder back as git has it (IMAGES_DIR must be it), then builds: a running service
sees the result at its next search, as it sees every write to the store.
``import-registry`` registers a registry's scans with their labels from a CSV of
``file,label`` (``app.registry_import``), with a progress bar; run again after an
interruption, it registers what is left.
"""

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from app.archive import export_collection, import_collection
from app.config import load_settings
from app.errors import ServiceError
from app.log import configure_logging
from app.registry_import import RegistryImport, Report, Row, read_rows
from app.service import Service
from app.storage.image_folder import ImageFolder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.cli.index", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build or update the store's index of IMAGES_DIR")
    commands.add_parser(
        "restore-samples", help="restore the sample folder from git (uploads removed), then build"
    )
    for name, text in (
        ("export", "write the collection to a new archive folder"),
        ("import", "read an archive folder into IMAGES_DIR and the store, then build"),
    ):
        commands.add_parser(name, help=text).add_argument("folder", type=Path)
    registry = commands.add_parser(
        "import-registry", help="register a folder of scans with a CSV of file,label"
    )
    registry.add_argument("folder", type=Path)
    registry.add_argument("labels", type=Path, help="CSV: file,label (UTF-8)")
    registry.add_argument(
        "--report",
        type=Path,
        help="where to list the scans not registered (default: beside the CSV)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        if args.command == "restore-samples":  # before the service marks or reads it
            ImageFolder(settings.images_dir).restore_samples()
        # Checked before the model loads: a wrong CSV is told at once.
        rows = read_rows(args.labels, args.folder) if args.command == "import-registry" else []
        service = Service.open(settings)
        try:
            if args.command == "export":
                print(f"exported={export_collection(service, args.folder)}")
                return 0
            if args.command == "import":
                imported = import_collection(service, args.folder)
                print(" ".join(f"{name}={value}" for name, value in asdict(imported).items()))
            if args.command == "import-registry":
                return import_registry(service, rows, args.folder, args.labels, args.report)
            # Restoring removed the uploads on purpose: their records go too, however many.
            restoring = args.command == "restore-samples"
            report = service.reconciler.reconcile(confirm_removals=restoring)
        finally:
            service.close()
    except ServiceError as exc:
        print(f"error: {exc.for_operator()}", file=sys.stderr)
        return 1
    print(" ".join(f"{name}={value}" for name, value in asdict(report).items()))
    return 0 if report.failed == 0 else 3


def import_registry(
    service: Service, rows: list[Row], folder: Path, labels: Path, report: Path | None
) -> int:
    """Settle what an interrupted run left, then register the CSV's scans; 0 when every
    scan is registered (now or before), 3 when some were refused (see the report)."""
    service.reconciler.reconcile()
    report_path = report or labels.with_name(f"{labels.stem}.report.csv")
    settings = service.settings
    importer = RegistryImport(
        service.encoder,
        service.collection,
        folder,
        settings.embed_batch_size,
        settings.preprocess_threads or settings.cpu_threads,
    )
    with (
        report_path.open("w", encoding="utf-8", newline="") as stream,
        tqdm(total=len(rows), unit="scan", file=sys.stderr) as bar,
    ):
        summary = importer.run(rows, Report(stream), bar.update)
    print(" ".join(f"{name}={value}" for name, value in asdict(summary).items()))
    print(f"report={report_path}")
    return 0 if summary.refused == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
