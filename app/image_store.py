"""The folder of collection images (IMAGES_DIR): which files it holds and how they are
named to clients."""

import logging
from pathlib import Path

from app.errors import ConfigError

logger = logging.getLogger(__name__)


class ImageStore:
    """A flat folder of image files; an image's id is its file name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not root.exists():
            logger.warning("IMAGES_DIR %s does not exist; creating it empty", root)
            root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise ConfigError(f"IMAGES_DIR={str(root)!r} is not a folder.")

    def image_ids(self) -> list[str]:
        """File names in the folder, sorted; hidden files and subfolders are ignored."""
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_file() and not entry.name.startswith(".")
        )

    def read_bytes(self, image_id: str) -> bytes:
        return (self.root / image_id).read_bytes()

    def display_path(self, image_id: str) -> str:
        """The path clients see: IMAGES_DIR as configured, joined with the id
        (``./example_images/imagen1.jpg`` for the default folder)."""
        root = self.root.as_posix()
        if not self.root.is_absolute() and not root.startswith("."):
            root = f"./{root}"
        return f"{root}/{image_id}"
