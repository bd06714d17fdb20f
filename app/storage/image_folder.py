"""The folder of collection images (IMAGES_DIR): which files it holds, how they are named
to clients, which collection it belongs to, and the file half of the collection's whole
writes (``app.collection`` owns the protocol).

A file in the middle of a write is hidden (a leading dot: never listed, served or
reconciled) and locked (``flock``) by the process writing it, so that any process can
tell a write in progress from one a crash abandoned (a lock dies with its process):

- an add **stages** its bytes as ``.incoming-<id>`` and **publishes** them under ``<id>``
  once the store has committed the record, or **discards** them;
- a delete **withdraws** ``<id>`` to ``.deleting-<id>`` before the store removes the
  record, then **purges** it, or **restores** it when the store kept the record.

``abandoned()`` answers the hidden files of writes whose lock is free (what a crash
left), each locked for the caller, who settles it by the store's record.

The folder's marker (``.collection-id``) names the collection whose images it holds, so
that a missing, empty or foreign folder is told apart from a collection that was emptied
(``app.folder_guard``).
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigError

INCOMING_PREFIX = ".incoming-"
DELETING_PREFIX = ".deleting-"
COLLECTION_MARKER = ".collection-id"
SEEDING_PREFIX = ".seeding-"
# Held exclusively while every file is withdrawn at once (a delete of the whole
# collection), whose files are not locked one by one, and shared by every other write.
BULK_LOCK = ".deleting.lock"
# A staged file this young may be one whose writer has created it and not yet locked it.
ABANDON_GRACE_S = 2.0
# A folder holding this file is the repository's sample folder: changing it through the
# API changes a git checkout, which this command restores (``restore_samples``).
SAMPLES_MARKER = ".samples"
RESTORE_SAMPLES = ".venv/bin/python -m app.cli.index restore-samples"


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int


@dataclass
class PendingFile:
    """A hidden file of one write, locked by this process while it is held."""

    image_id: str
    path: Path
    adding: bool  # an add's staged bytes (else a delete's withdrawn file)
    descriptor: int

    def stat(self) -> FileStat:
        stat = os.fstat(self.descriptor)
        return FileStat(stat.st_size, stat.st_mtime_ns)

    def release(self) -> None:
        """Drop the lock (closing the file); the file itself stays where it is."""
        if self.descriptor >= 0:
            os.close(self.descriptor)
            self.descriptor = -1


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_path(path: Path) -> None:
    """Make a file's contents, or a rename or an unlink in a folder, durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _locked(path: Path, flags: int, operation: int = fcntl.LOCK_EX) -> int:
    """``path`` opened and locked (exclusively unless ``operation`` says shared),
    waiting for another holder to let go."""
    descriptor = os.open(path, flags, 0o644)
    try:
        fcntl.flock(descriptor, operation)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


@contextmanager
def _held(path: Path, operation: int) -> Iterator[None]:
    """``path`` (created if need be) locked with ``operation`` meanwhile."""
    descriptor = _locked(path, os.O_RDWR | os.O_CREAT, operation)
    try:
        yield
    finally:
        os.close(descriptor)


def _free(path: Path, flags: int) -> int | None:
    """``path`` opened and locked exclusively; None when another process holds it."""
    descriptor = os.open(path, flags, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class ImageFolder:
    """A flat folder of image files; an image's id is its file name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # The collection this folder was claimed for at start (``app.folder_guard``).
        self.claimed_id: str | None = None

    @property
    def holds_samples(self) -> bool:
        return (self.root / SAMPLES_MARKER).is_file()

    def restore_samples(self) -> None:
        """Put the sample folder back as its git checkout has it: the samples' files
        restored, uploads removed (ignored files, such as the collection marker, stay).

        Pipeline: ``git checkout -- .`` then ``git clean -fq .`` inside the folder; raises
        ``ConfigError`` when it is not the sample folder or git cannot restore it."""
        if not self.holds_samples:
            raise ConfigError(
                f"IMAGES_DIR={str(self.root)!r} is not the repository's sample folder (it "
                f"has no {SAMPLES_MARKER} file): nothing was changed."
            )
        for arguments in (("checkout", "--", "."), ("clean", "-fq", ".")):
            try:
                subprocess.run(
                    ["git", "-C", str(self.root), *arguments],
                    check=True,
                    capture_output=True,
                    text=True,
                )
            except (OSError, subprocess.CalledProcessError) as exc:
                reason = getattr(exc, "stderr", None) or exc
                raise ConfigError(
                    f"Cannot restore the samples in IMAGES_DIR={str(self.root)!r} with git "
                    f"({' '.join(str(reason).split())}): it needs git and the repository's "
                    "checkout."
                ) from None

    # The collection it belongs to

    def collection_id(self) -> str | None:
        try:
            marker = self.root / COLLECTION_MARKER
            return marker.read_text(encoding="utf-8", errors="replace").strip() or None
        except FileNotFoundError:
            return None

    def mark(self, collection_id: str) -> str:
        """Write the marker naming the collection unless the folder has one already
        (atomically: a hard link fails where the marker exists); the id it names."""
        temporary = self.root / f"{COLLECTION_MARKER}.{uuid.uuid4().hex}"
        temporary.write_text(collection_id + "\n", encoding="utf-8")
        marker = self.root / COLLECTION_MARKER
        try:
            os.link(temporary, marker)
        except FileExistsError:
            if self.collection_id() is None:  # an empty (truncated) marker names none
                temporary.replace(marker)
        except OSError:  # a share without hard links: a rename, unless marked meanwhile
            if not marker.exists():
                temporary.replace(marker)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_path(self.root)
        return self.collection_id() or collection_id

    def seed(self, source: Path) -> int:
        """Copy ``source``'s visible files in (each under a hidden name, then renamed into
        place, so no reader sees half a file); how many."""
        copied = 0
        for path in sorted(source.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            # A name of its own: replicas starting together seed the same files.
            temporary = self.root / f"{SEEDING_PREFIX}{uuid.uuid4().hex}-{path.name}"
            shutil.copyfile(path, temporary)  # a new mtime, unlike copy2: never "abandoned"
            temporary.replace(self.root / path.name)
            copied += 1
        fsync_path(self.root)
        return copied

    # Reads

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

    def pending_ids(self) -> set[str]:
        """The ids with a write in progress (or abandoned): their record may be ahead of
        or behind their file."""
        return {
            entry.name.removeprefix(prefix)
            for entry in os.scandir(self.root)
            for prefix in (INCOMING_PREFIX, DELETING_PREFIX)
            if entry.name.startswith(prefix)
        }

    def holds(self, image_id: str) -> bool:
        return (self.root / image_id).is_file()

    def read_bytes(self, image_id: str) -> bytes:
        return (self.root / image_id).read_bytes()

    def stat(self, image_id: str) -> FileStat:
        stat = (self.root / image_id).stat()
        return FileStat(stat.st_size, stat.st_mtime_ns)

    # An add: stage, then publish or discard

    def stage(self, data: bytes, extension: str) -> PendingFile:
        """``data`` written in full and flushed to disk under a hidden name, for a new
        generated id ending in ``extension``. A failed write (a full disk) leaves
        nothing."""
        image_id = f"{uuid.uuid4().hex}{extension}"
        path = self.root / f"{INCOMING_PREFIX}{image_id}"
        descriptor = _locked(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        pending = PendingFile(image_id, path, True, descriptor)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        except BaseException:
            self.discard(pending)
            raise
        return pending

    def publish(self, pending: PendingFile) -> None:
        """The staged bytes under their id, durably."""
        pending.path.replace(self.root / pending.image_id)
        fsync_path(self.root)
        pending.release()

    def discard(self, pending: PendingFile) -> None:
        pending.path.unlink(missing_ok=True)
        pending.release()

    # A delete: withdraw, then purge or restore

    def withdraw(self, image_id: str) -> PendingFile | None:
        """The image's file moved out of sight (None when it is not there)."""
        path = self.root / image_id
        try:
            descriptor = _locked(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        withdrawn = self.root / f"{DELETING_PREFIX}{image_id}"
        try:
            path.replace(withdrawn)
            fsync_path(self.root)
        except FileNotFoundError:  # another process withdrew it while we waited
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return PendingFile(image_id, withdrawn, False, descriptor)

    def purge(self, pending: PendingFile) -> None:
        pending.path.unlink(missing_ok=True)
        fsync_path(self.root)
        pending.release()

    def restore(self, pending: PendingFile) -> None:
        pending.path.replace(self.root / pending.image_id)
        fsync_path(self.root)
        pending.release()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Held around ``withdraw_all`` and the settling of what it withdrew: waits for
        every process's writes under ``writing`` to finish, and holds off new ones."""
        with _held(self.root / BULK_LOCK, fcntl.LOCK_EX):
            yield

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held around one add or delete, from staging (or withdrawing) to publishing
        (or purging), shared with other writes in any process: a delete of everything
        then never runs between an add's commit and its publishing, which would leave a
        published file without a record."""
        with _held(self.root / BULK_LOCK, fcntl.LOCK_SH):
            yield

    def settle(self, pending: PendingFile, recorded: bool) -> None:
        """Finish or undo a write by the store's record: a staged add is published when
        its record is stored and discarded otherwise; a withdrawn file is restored when
        its record is still stored and purged otherwise."""
        if pending.adding:
            (self.publish if recorded else self.discard)(pending)
        else:
            (self.restore if recorded else self.purge)(pending)

    def withdraw_all(self) -> list[PendingFile]:
        """Every image file withdrawn, unlocked one by one: the caller holds ``bulk``."""
        withdrawn = []
        for image_id in self.scan():
            pending = self.withdraw(image_id)
            if pending is not None:
                pending.release()
                withdrawn.append(pending)
        return withdrawn

    def abandoned(self) -> Iterator[PendingFile]:
        """The hidden files of writes whose process is gone, each locked while the
        caller settles it (``publish``/``discard``, ``restore``/``purge``); none while
        a write or a delete of everything is in progress."""
        bulk = _free(self.root / BULK_LOCK, os.O_RDWR | os.O_CREAT)
        if bulk is None:
            return
        try:
            yield from self._abandoned()
        finally:
            os.close(bulk)

    def _abandoned(self) -> Iterator[PendingFile]:
        for entry in os.scandir(self.root):
            for prefix, adding in ((INCOMING_PREFIX, True), (DELETING_PREFIX, False)):
                if not entry.name.startswith(prefix):
                    continue
                path = Path(entry.path)
                try:
                    if entry.stat().st_mtime > time.time() - ABANDON_GRACE_S:
                        continue
                    descriptor = _free(path, os.O_RDONLY)
                except FileNotFoundError:  # settled meanwhile
                    continue
                if descriptor is not None:
                    yield PendingFile(entry.name.removeprefix(prefix), path, adding, descriptor)

    def display_path(self, image_id: str) -> str:
        """The path clients see: IMAGES_DIR as configured, joined with the id
        (``./example_images/imagen1.jpg`` for the default folder)."""
        root = self.root.as_posix()
        if not self.root.is_absolute() and not root.startswith("."):
            root = f"./{root}"
        return f"{root}/{image_id}"
