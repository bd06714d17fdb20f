"""The folder guard: a store's records are never removed because IMAGES_DIR looks empty.

The store and its folder name one collection: an id kept by the store and written into
the folder's marker (``.collection-id``) when they first meet. At start (``claim``):

- a missing folder is created only for a store without records; otherwise the service
  refuses to start, naming IMAGES_DIR (a container then restarts until its share is
  mounted);
- a folder whose marker names another collection is refused the same way while the
  store holds records; a folder without images is refused too, unless CONFIRM_REMOVALS;
- a folder never used (no marker, no images) of a store without records first gets
  SEED_IMAGES_DIR's images, when that is set (Docker's samples, on a new volume);
- a folder whose marker names a collection, holding images, of a store without records
  or with another id (a deleted catalog, a new INDEX_DIR or database) is refused unless
  CONFIRM_REBUILD: the labels and original names live in the catalog, and a rebuild from
  the folder would lose them silently (the repository's sample folder excepted);
- a store without an id takes the folder's (a confirmed rebuild), a folder
  without a marker takes the store's (folders of earlier versions), and when neither
  has one both get a new id; the first writer wins in each, so replicas starting
  together on a new collection agree.

Then every reconciliation asks ``removals_allowed`` before removing the records of files
gone from the folder: more than ``MAX_UNCONFIRMED_REMOVAL_SHARE`` of the records at once
(beyond the first ``ALWAYS_ALLOWED_REMOVALS``), or every record, is removed only when
confirmed (``POST /reindex?confirm_removals=true``, or CONFIRM_REMOVALS=true at start).
"""

import logging
import uuid
from pathlib import Path
from typing import Final

from app.errors import ConfigError, FolderUnavailableError
from app.messages.catalogue import Message, message
from app.storage.image_folder import ImageFolder
from app.storage.store import Store

logger = logging.getLogger(__name__)

# A hand tidying a large folder removes a few files; an unmounted share or a wrong path
# removes most of them.
MAX_UNCONFIRMED_REMOVAL_SHARE: Final = 0.25
ALWAYS_ALLOWED_REMOVALS: Final = 5
# What a refusal tells an operator who meant a collection of their own.
NEW_COLLECTION: Final = (
    "For a new collection in that folder, give it a new store too: a new INDEX_DIR "
    "(e.g. INDEX_DIR=./data-brands), or DATABASE_URL for STORE=postgres."
)


def claim(
    folder: ImageFolder,
    store: Store,
    confirm_removals: bool,
    seed: Path | None = None,
    confirm_rebuild: bool = False,
) -> None:
    """Check that IMAGES_DIR is this store's folder and mark it so; raise ``ConfigError``
    (one line naming IMAGES_DIR) when it is missing, empty or another collection's while
    the store holds records, or when it is a collection's folder whose catalog is not in
    an empty store (unless ``confirm_rebuild``). A folder never used (no marker, no
    images) of a store without records first gets ``seed``'s images (SEED_IMAGES_DIR:
    Docker's samples)."""
    root = folder.root
    records = store.newest_first(1, 1)[1]
    held = f"while the store ({store.location}) holds {records} images; nothing was removed"
    if not root.exists():
        if records:
            raise ConfigError(
                f"IMAGES_DIR={str(root)!r} does not exist {held}: mount or restore it, or "
                f"point IMAGES_DIR at the collection's folder. {NEW_COLLECTION}"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"IMAGES_DIR={str(root)!r} does not exist and cannot be created "
                f"({exc.strerror or exc})."
            ) from None
        logger.warning("IMAGES_DIR %s did not exist; created it empty", root)
    if not root.is_dir():
        raise ConfigError(f"IMAGES_DIR={str(root)!r} is not a folder.")
    ours, marked = store.collection_id(), folder.collection_id()
    if records and ours is not None and marked is not None and marked != ours:
        raise ConfigError(
            f"IMAGES_DIR={str(root)!r} belongs to another collection ({marked}, this store's "
            f"is {ours}) {held}: point IMAGES_DIR at this collection's folder, or INDEX_DIR "
            "(DATABASE_URL) at that collection's store."
        )
    empty = not folder.scan() and not folder.pending_ids()
    # The repository's samples carry no registry's labels: never refused.
    rebuilt_unconfirmed = not confirm_rebuild and not folder.holds_samples
    if not records and marked not in (None, ours) and not empty and rebuilt_unconfirmed:
        raise ConfigError(
            f"IMAGES_DIR={str(root)!r} is the folder of collection {marked}, whose "
            f"catalog is not in the store ({store.location}): its labels and original "
            "names are kept there, not in the folder. Restore that catalog (or point "
            "INDEX_DIR or DATABASE_URL at it), or start once with CONFIRM_REBUILD=true "
            "to index the folder anew without them."
        )
    if seed is not None and not records and empty and marked is None:
        if not seed.is_dir():
            raise ConfigError(f"SEED_IMAGES_DIR={str(seed)!r} is not a folder.")
        logger.info("Copied %d images from %s into the new IMAGES_DIR", folder.seed(seed), seed)
    elif records and not confirm_removals and empty:
        raise ConfigError(
            f"IMAGES_DIR={str(root)!r} holds no images {held}: mount or restore it, or set "
            f"CONFIRM_REMOVALS=true to empty the collection. {NEW_COLLECTION}"
        )
    # First writer wins, in the store and in the folder: replicas starting together on a
    # new collection agree on one id.
    if marked is not None and marked != ours:  # the store has none, or no records
        ours = store.adopt_collection_id(marked, replace=ours is not None)
    elif ours is None:
        ours = store.adopt_collection_id(uuid.uuid4().hex)
    if marked is None:
        folder.mark(ours)
    folder.claimed_id = ours


def require_collection_folder(folder: ImageFolder) -> None:
    """Raise ``FolderUnavailableError`` (503) unless IMAGES_DIR is still the folder the
    service claimed at start: moved, unmounted or swapped for another collection's
    folder while the service runs, no write may touch it (a delete would answer 200 and
    leave its file; a reindex would bring it back)."""
    problem = folder_problem(folder)
    if problem is not None:
        raise FolderUnavailableError(problem)


def folder_problem(folder: ImageFolder) -> Message | None:
    """Why IMAGES_DIR is not the collection's folder now (``None``: it is)."""
    if not folder.root.is_dir():
        return message("folder_missing", folder=str(folder.root))
    if folder.claimed_id is not None and folder.collection_id() != folder.claimed_id:
        return message("folder_foreign", folder=str(folder.root))
    return None


def removals_allowed(removed: int, records: int) -> bool:
    """Whether a reconciliation may remove ``removed`` of ``records`` unconfirmed."""
    if removed <= ALWAYS_ALLOWED_REMOVALS and removed < records:
        return True
    return removed < records and removed <= MAX_UNCONFIRMED_REMOVAL_SHARE * records
