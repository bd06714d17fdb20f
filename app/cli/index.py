"""Command line for the collection's store, without starting the server.

    python -m app.cli.index build
    python -m app.cli.index export FOLDER
    python -m app.cli.index import FOLDER
    python -m app.cli.index restore-samples

read the same settings as the service (environment and ``.env``). ``build`` embeds new
and changed files of IMAGES_DIR into the store with a progress bar in the log, drops
removed ones, and prints a summary: it suits a Docker build step or a cron job, and the
service picks the result up without embedding anything again. ``export`` writes the
collection (files, records and vectors) to a new archive folder; ``import`` reads one
into IMAGES_DIR and the store STORE names, then builds (``app.archive``): together they
move a collection from one store to the other. ``restore-samples`` puts the repository's
sample folder back as git has it (IMAGES_DIR must be it), then builds: a running service
sees the result at its next search, as it sees every write to the store.
"""

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from app.archive import export_collection, import_collection
from app.config import load_settings
from app.errors import ServiceError
from app.log import configure_logging
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
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        if args.command == "restore-samples":  # before the service marks or reads it
            ImageFolder(settings.images_dir).restore_samples()
        service = Service.open(settings)
        try:
            if args.command == "export":
                print(f"exported={export_collection(service, args.folder)}")
                return 0
            if args.command == "import":
                imported = import_collection(service, args.folder)
                print(" ".join(f"{name}={value}" for name, value in asdict(imported).items()))
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


if __name__ == "__main__":
    sys.exit(main())
