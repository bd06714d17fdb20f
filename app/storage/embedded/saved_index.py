"""The embedded store's FAISS indexes saved beside the catalog, so that a start loads
them instead of building them from every stored vector (an HNSW graph of 100,000 images
takes a minute to build; loading it, a second).

Layout: ``INDEX_DIR/saved/<name>/`` holds ``images.faiss`` and ``cores.faiss``, each
with its ids (``.ids.npz``). The catalog's ``saved_index`` row names the folder that
belongs to it, the catalog change it reflects and its signature (this format's version,
the vector space, the index factory). Saving writes and syncs a new folder, names it in
one catalog transaction, then removes the folders no row names; so a process killed
while saving leaves the previous save named, and one killed afterwards leaves the new one.

A start loads the named folder when its signature matches, then applies every change
the catalog logged after it (the store's catch-up): an image added or deleted after the
save, by any process, is neither missed nor answered. Anything else (no row, another
signature, a missing or damaged file, a catalog restored to before the save) builds the
indexes from the catalog's vectors again, as every start did before.
"""

import logging
import shutil
import uuid
from dataclasses import dataclass

from filelock import FileLock

from app.storage.embedded.catalog import Catalog
from app.storage.embedded.vector_index import VectorIndex
from app.storage.image_folder import fsync_path
from app.storage.types import VectorSpace

logger = logging.getLogger(__name__)

SAVED_INDEX_VERSION = 1
SAVED_FOLDER = "saved"
SAVE_LOCK = "saved.lock"
PARTS = ("images", "cores")


@dataclass(frozen=True)
class Loaded:
    images: VectorIndex
    cores: VectorIndex
    change: int  # the last catalog change the indexes reflect


def signature(space: VectorSpace, factory: str) -> str:
    """What a saved index must match to be loaded."""
    core = space.core.model if space.core is not None else "-"
    return f"v{SAVED_INDEX_VERSION} {factory} {space.dimension} {space.name} core {core}"


class SavedIndex:
    """Writes and reads the indexes of one catalog; one writer at a time across
    processes (a file lock beside the catalog)."""

    def __init__(self, catalog: Catalog, space: VectorSpace, factory: str, ef_search: int) -> None:
        self.catalog = catalog
        self.root = catalog.path.parent / SAVED_FOLDER
        self.space = space
        self.factory = factory
        self.ef_search = ef_search
        self.signature = signature(space, factory)

    def saved_change(self) -> int | None:
        """The catalog change the named save reflects, if it is of this signature."""
        named = self.catalog.saved_index()
        return named[1] if named is not None and named[2] == self.signature else None

    def load(self) -> Loaded | None:
        """The named save, if it is of this signature and reads whole; else None. Saves
        no row names (left by a process killed while saving) are removed first."""
        with FileLock(self.catalog.path.with_name(SAVE_LOCK)):
            self._remove_unnamed()
        named = self.catalog.saved_index()
        if named is None or named[2] != self.signature:
            return None
        folder, change, _ = named
        if change > self.catalog.last_change():
            logger.warning("The saved index is newer than the catalog; building it again")
            return None
        try:
            images, cores = (
                VectorIndex.read(
                    self.root / folder / f"{part}.faiss",
                    self.space.dimension,
                    self.factory,
                    self.ef_search,
                )
                for part in PARTS
            )
        except ValueError as exc:
            logger.warning("Building the index again: %s", exc)
            return None
        return Loaded(images, cores, change)

    def save(self, images: VectorIndex, cores: VectorIndex, change: int) -> None:
        """Write both indexes as they are (reflecting catalog change ``change``), name
        them in the catalog, and remove older saves."""
        with FileLock(self.catalog.path.with_name(SAVE_LOCK)):
            folder = self.root / uuid.uuid4().hex
            folder.mkdir(parents=True)
            for part, index in zip(PARTS, (images, cores), strict=True):
                path = folder / f"{part}.faiss"
                index.write(path)
                for written in (path, path.with_name(path.name + ".ids.npz")):
                    fsync_path(written)
            fsync_path(folder)
            fsync_path(self.root)
            self.catalog.name_saved_index(folder.name, change, self.signature)
            self._remove_unnamed()

    def _remove_unnamed(self) -> None:
        """Remove the saves the catalog does not name; under the save lock."""
        named = self.catalog.saved_index()
        if not self.root.is_dir():
            return
        for other in self.root.iterdir():
            if named is None or other.name != named[0]:
                shutil.rmtree(other, ignore_errors=True)
