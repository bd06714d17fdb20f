"""Command line for the stored index: build or update it without starting the server.

    python -m app.index build

reads the same settings as the service (environment and ``.env``), embeds new and
changed files of IMAGES_DIR into INDEX_DIR with a progress bar in the log, drops removed
ones, and prints a summary. Suits a Docker build step or a cron job; the service picks
the result up at its next start or ``POST /reindex`` without embedding anything again.
"""

import argparse
import sys
from dataclasses import asdict

from app.collection import Collection
from app.config import load_settings
from app.errors import ServiceError
from app.log import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.index", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build or update the stored index of IMAGES_DIR")
    parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        collection = Collection.open(settings)
        try:
            report = collection.reconcile()
        finally:
            collection.close()
    except ServiceError as exc:
        print(f"error: {exc.for_operator()}", file=sys.stderr)
        return 1
    print(" ".join(f"{name}={value}" for name, value in asdict(report).items()))
    return 0 if report.failed == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
