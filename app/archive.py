"""Moving a collection between stores, or keeping a copy of it: an archive folder holds
every image file and, in ``records.jsonl``, each image's record and its vectors of the
exporting service's model and preprocessing.

    FOLDER/manifest.json    format version and the vector keys
    FOLDER/records.jsonl    one image per line: id, sha256, original_filename,
                            created_at, label, and its vectors (base64 float32) by
                            part: concept, shape, core (its core's shape) and strokes
                            (its stroke masks); format 1 had the first two only
    FOLDER/images/<id>      the files

Importing copies the files into IMAGES_DIR and saves the records with their vectors in
the store STORE names, so nothing is embedded again when the importing service uses the
same model and preprocessing (otherwise its reconciliation embeds them).
"""

import base64
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from app.errors import ServiceError
from app.service import Service
from app.storage.image_folder import sha256_hex
from app.storage.types import EmbeddingKey, ImageRecord, Vectors

logger = logging.getLogger(__name__)

ARCHIVE_FORMAT = 2
# The formats this service reads: 1 (concept and shape vectors only) and 2.
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
IMAGES = "images"
# Records saved per store transaction while importing, and read per store call while
# exporting (a registry's vectors need not fit in memory at once).
IMPORT_BATCH = 500


class ArchiveError(ServiceError):
    """The archive folder is missing, not empty (export) or not an archive (import)."""


@dataclass(frozen=True)
class ImportReport:
    imported: int
    already_there: int  # same id and bytes in IMAGES_DIR: its record is saved again
    conflicts: int  # same id, other bytes in IMAGES_DIR: left alone


def _key(key: EmbeddingKey) -> dict[str, object]:
    return {"model": key.model, "preprocessing": key.preprocessing, "dimension": key.dimension}


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, np.float32).tobytes()).decode()


def _parts(service: Service) -> dict[str, EmbeddingKey]:
    """What an archive holds of an image, by part name."""
    space = service.store.space
    parts = {"concept": space.concept, "shape": space.shape, "strokes": service.encoder.strokes}
    return parts | ({"core": space.core} if space.core is not None else {})


def export_collection(service: Service, folder: Path) -> int:
    """Write every image of the collection to a new archive ``folder``; return how many."""
    if folder.exists() and any(folder.iterdir()):
        raise ArchiveError(f"{folder} is not empty; export into a new folder.")
    (folder / IMAGES).mkdir(parents=True)
    parts = _parts(service)
    records = sorted(service.store.records().values(), key=lambda record: record.created_at)
    with (folder / RECORDS).open("w", encoding="utf-8") as lines:
        for start in range(0, len(records), IMPORT_BATCH):
            chunk = records[start : start + IMPORT_BATCH]
            stored = service.store.vectors_of({record.sha256 for record in chunk}, parts.values())
            for record in chunk:
                if not service.folder.holds(record.id):
                    continue  # deleted since; the folder is the truth
                shutil.copy2(service.folder.root / record.id, folder / IMAGES / record.id)
                vectors = stored.get(record.sha256, {})
                line = {
                    "id": record.id,
                    "sha256": record.sha256,
                    "original_filename": record.original_filename,
                    "created_at": record.created_at.isoformat(),
                    "label": record.label,
                    "vectors": {
                        part: _encode(vectors[key]) for part, key in parts.items() if key in vectors
                    },
                }
                lines.write(json.dumps(line) + "\n")
    manifest = {"format": ARCHIVE_FORMAT} | {part: _key(key) for part, key in parts.items()}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return len(records)


def _archived(folder: Path) -> Iterator[tuple[dict[str, object], Vectors]]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{folder} is not an archive written by export ({exc}).") from exc
    if manifest.get("format") not in READABLE_FORMATS:
        raise ArchiveError(
            f"{folder} has archive format {manifest.get('format')!r}, not one of "
            f"{', '.join(map(str, READABLE_FORMATS))}."
        )
    keys = {part: EmbeddingKey(**value) for part, value in manifest.items() if part != "format"}
    with (folder / RECORDS).open(encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            vectors = {
                keys[part]: np.frombuffer(base64.b64decode(text), np.float32)
                for part, text in entry["vectors"].items()
            }
            yield entry, vectors


def import_collection(service: Service, folder: Path) -> ImportReport:
    """Copy an archive's images into IMAGES_DIR and save their records and vectors."""
    images = service.folder
    imported = already_there = conflicts = 0
    batch: list[tuple[ImageRecord, Vectors]] = []
    for entry, vectors in _archived(folder):
        image_id = str(entry["id"])
        source = folder / IMAGES / image_id
        data = source.read_bytes()
        if images.holds(image_id):
            if sha256_hex(images.read_bytes(image_id)) != entry["sha256"]:
                logger.warning("Not importing %s: IMAGES_DIR holds other bytes under it", image_id)
                conflicts += 1
                continue
            already_there += 1
        else:
            shutil.copy2(source, images.root / image_id)
            imported += 1
        stat = images.stat(image_id)
        name, label = entry["original_filename"], entry.get("label")
        record = ImageRecord(
            image_id,
            sha256_hex(data),
            stat.size,
            stat.mtime_ns,
            str(name) if name is not None else None,
            datetime.fromisoformat(str(entry["created_at"])),
            str(label) if label is not None else None,
        )
        batch.append((record, vectors))
        if len(batch) >= IMPORT_BATCH:
            service.reconciler.save_present(batch)
            batch = []
    if batch:
        service.reconciler.save_present(batch)
    return ImportReport(imported, already_there, conflicts)
