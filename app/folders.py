"""The folders the service writes besides the collection: INDEX_DIR (the embedded store)
and the ONNX cache, created at start before anything slow, so that one that cannot be
is told in one line naming its setting. IMAGES_DIR is ``app.folder_guard``'s: a missing
collection folder is created only when no records need it."""

import os
from pathlib import Path

from app.config import Settings
from app.errors import ConfigError


def prepare_folders(settings: Settings) -> None:
    """Create INDEX_DIR and the ONNX cache where they are used, and check that IMAGES_DIR
    could be created if it is missing; raise ``ConfigError`` naming the setting."""
    if settings.store == "embedded":
        _create("INDEX_DIR", settings.index_dir)
        _writable("INDEX_DIR", settings.index_dir)
    if settings.inference != "torch":
        _create("ONNX_CACHE_DIR", settings.onnx_dir)
    if not settings.images_dir.exists():
        parent = _nearest_existing(settings.images_dir)
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(
                f"IMAGES_DIR={str(settings.images_dir)!r} does not exist and cannot be "
                f"created: {str(parent)!r} is not a folder this service may write in."
            )


def _create(setting: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{setting}={str(folder)!r} cannot be created ({exc.strerror or exc})."
        ) from None


def _writable(setting: str, folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{setting}={str(folder)!r} is not writable by this service.")


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")
