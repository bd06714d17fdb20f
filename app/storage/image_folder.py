"""The folder of collection images (IMAGES_DIR): which files it holds, how they are named
to clients, and how files are added and removed without ever leaving half a file."""

import contextlib
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigError

logger = logging.getLogger(__name__)

# Uploads are written under this hidden prefix and renamed into place when complete;
# hidden files are not collection images, and leftovers of a crash are removed at start
# once older than INCOMING_STALE_S (younger ones may be another process's upload in
# progress, on a folder that several workers or replicas share).
INCOMING_PREFIX = ".incoming-"
INCOMING_STALE_S = 600
# A folder holding this file is the repository's sample folder: changing it through the
# API changes a git checkout, which this command, run from the checkout's root, restores.
SAMPLES_MARKER = ".samples"
RESTORE_SAMPLES = "git checkout -- example_images && git clean -fq example_images"


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Make a rename or an unlink in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ImageFolder:
    """A flat folder of image files; an image's id is its file name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not root.exists():
            logger.warning("IMAGES_DIR %s does not exist; creating it empty", root)
            root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise ConfigError(f"IMAGES_DIR={str(root)!r} is not a folder.")
        stale = time.time() - INCOMING_STALE_S
        for leftover in root.glob(f"{INCOMING_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if leftover.stat().st_mtime < stale:
                    leftover.unlink()

    @property
    def holds_samples(self) -> bool:
        return (self.root / SAMPLES_MARKER).is_file()

    def scan(self) -> dict[str, FileStat]:
        """Every image file of the folder by id; hidden files and subfolders are ignored."""
        files: dict[str, FileStat] = {}
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:  # deleted while we looked
                continue
            files[entry.name] = FileStat(stat.st_size, stat.st_mtime_ns)
        return files

    def holds(self, image_id: str) -> bool:
        return (self.root / image_id).is_file()

    def read_bytes(self, image_id: str) -> bytes:
        return (self.root / image_id).read_bytes()

    def stat(self, image_id: str) -> FileStat:
        stat = (self.root / image_id).stat()
        return FileStat(stat.st_size, stat.st_mtime_ns)

    def write_new(self, data: bytes, extension: str) -> str:
        """Store ``data`` under a new generated name ending in ``extension``; return it.

        Atomic: the bytes go to a hidden temporary file, are flushed to disk, and only
        then renamed into place, so the folder never holds a partial image.
        """
        image_id = f"{uuid.uuid4().hex}{extension}"
        temporary = self.root / f"{INCOMING_PREFIX}{image_id}"
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.root / image_id)
        _fsync_folder(self.root)
        return image_id

    def delete(self, ids: list[str]) -> None:
        for image_id in ids:
            (self.root / image_id).unlink(missing_ok=True)
        _fsync_folder(self.root)

    def display_path(self, image_id: str) -> str:
        """The path clients see: IMAGES_DIR as configured, joined with the id
        (``./example_images/imagen1.jpg`` for the default folder)."""
        root = self.root.as_posix()
        if not self.root.is_absolute() and not root.startswith("."):
            root = f"./{root}"
        return f"{root}/{image_id}"
