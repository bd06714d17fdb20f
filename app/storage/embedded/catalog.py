"""The stored index under INDEX_DIR: what each collection file is, and its embedding.

A SQLite database (``catalog.sqlite3``), as rclip keeps its vectors:

- ``images``: one row per file of IMAGES_DIR: its id (file name), SHA-256, size and
  modification time (an unchanged size and time means an unchanged file, so restarts
  hash nothing), the uploader's file name, when it joined the collection, its label and
  ``search_text`` (id, label and file name, folded: where ``GET /images/?q=`` looks);
- ``embeddings``: one vector per (SHA-256 of the bytes, what made it, preprocessing
  fingerprint). "What made it" is the CLIP model's name for concept vectors and the shape
  descriptor's version (``shape-v1``) for shape vectors, so each is recomputed on its own
  when it changes; two files with the same bytes share their vectors.

- ``collection``: the id of the collection whose folder it indexes (``app.folder_guard``).

- ``saved_index``: which saved FAISS index belongs to this catalog, and the last change
  it reflects (``app.storage.embedded.saved_index``).

- ``changes``: the id of every row written or deleted, in order (NULL: all deleted), so
  that several processes on one catalog (``uvicorn --workers N``) bring their in-memory
  index in step before each search (``EmbeddedStore``'s catch-up).

Crash safety: every change is one transaction in write-ahead-log mode with full
synchronisation, so a process killed at any moment leaves the last committed state,
which always loads. Writers in several processes are serialised by SQLite's write lock
(``BEGIN IMMEDIATE``), which also makes an upload's duplicate check and its insert one
atomic step (``save_upload``).
"""

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from app.errors import StoreDamagedError, StoreUnavailableError
from app.messages.catalogue import message, render
from app.storage.types import EmbeddingKey, ImageRecord, Vectors, folded

logger = logging.getLogger(__name__)

CATALOG_FILE = "catalog.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    original_filename TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_sha256 ON images (sha256);
CREATE INDEX IF NOT EXISTS images_by_created_at ON images (created_at, seq);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT
);
CREATE TABLE IF NOT EXISTS collection (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS saved_index (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    folder TEXT NOT NULL,
    change INTEGER NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    preprocessing TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (sha256, model, preprocessing)
);
"""
_COLUMNS = "id, sha256, size, mtime_ns, original_filename, created_at, label"
# Added after the first release: (column, type), added to catalogs that lack them.
_LATER_COLUMNS = (("label", "TEXT"), ("search_text", "TEXT"))


# The embeddings of some bytes under some keys, through the primary key.
_KEYED = (
    "sha256 IN (SELECT value FROM json_each(?)) AND (model, preprocessing) IN "
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
)


def _keyed(sha256s: Iterable[str], names: list[tuple[str, str]]) -> tuple[str, str]:
    """``_KEYED``'s parameters: the bytes, and the keys' (model, preprocessing)."""
    return json.dumps(sorted(set(sha256s))), json.dumps(names)


def _busy(exc: sqlite3.OperationalError) -> StoreUnavailableError:
    return StoreUnavailableError(message("catalog_locked", reason=exc))


# What SQLite answers for a file that is damaged where it was read.
DAMAGED_ERRORS = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


class _CatalogLock:
    """The catalog's lock. A read or write that finds the file damaged (a bad page,
    found only when read: checking every page at each start would read the whole
    catalog) raises ``StoreDamagedError`` naming it, not SQLite's bare error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        self._lock.release()
        if isinstance(exc, sqlite3.Error) and exc.sqlite_errorname in DAMAGED_ERRORS:
            damaged = message("catalog_damaged", catalog=str(self.path), reason=exc)
            logger.error(render(damaged))
            raise StoreDamagedError(damaged) from exc


def _record(row: tuple[str, str, int, int, str | None, str, str | None]) -> ImageRecord:
    return ImageRecord(*row[:5], created_at=datetime.fromisoformat(row[5]), label=row[6])


class Catalog:
    """The SQLite store. Thread-safe: one connection, one lock."""

    def __init__(self, index_dir: Path) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.path = index_dir / CATALOG_FILE
        self._lock = _CatalogLock(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        """Add the columns a catalog of an earlier version lacks, and fill ``search_text``
        where it is missing; idempotent, one transaction."""
        with self._transaction() as db:
            present = {row[1] for row in db.execute("PRAGMA table_info(images)")}
            for column, kind in _LATER_COLUMNS:
                if column not in present:
                    db.execute(f"ALTER TABLE images ADD COLUMN {column} {kind}")
            rows = db.execute(f"SELECT {_COLUMNS} FROM images WHERE search_text IS NULL").fetchall()
            db.executemany(
                "UPDATE images SET search_text = ? WHERE id = ?",
                [(_record(row).search_text, row[0]) for row in rows],
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; another process holding SQLite's write lock past the
        busy timeout is a busy store (503, retry), not a failure."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _busy(exc) from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise _busy(exc) from exc
                raise

    # Reads

    def collection_id(self) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM collection").fetchone()
        return str(row[0]) if row else None

    def records(self) -> dict[str, ImageRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM images").fetchall()
        return {row[0]: _record(row) for row in rows}

    def get(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM images WHERE id = ?", (image_id,)
            ).fetchone()
        return _record(row) if row else None

    def records_of(self, ids: Iterable[str]) -> dict[str, ImageRecord]:
        """The records of ``ids``; ids not in the catalog are left out."""
        wanted = list(ids)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM images WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        return {row[0]: _record(row) for row in rows}

    def find_sha256(self, sha256: str) -> ImageRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM images WHERE sha256 = ? ORDER BY seq LIMIT 1", (sha256,)
            ).fetchone()
        return _record(row) if row else None

    def newest_first(
        self, page: int, page_size: int, text: str | None = None
    ) -> tuple[list[ImageRecord], int, int]:
        """Page ``page`` (from 1) of the records whose id, label or file name holds
        ``text`` (all without it), newest first, or the last page when ``page`` is past
        it; with the total count and the page answered, read together."""
        matching = "instr(search_text, :text) > 0" if text else "1"
        values = {"text": folded(text or ""), "limit": page_size}
        with self._lock:
            total = int(
                self._db.execute(
                    f"SELECT count(*) FROM images WHERE {matching}", values
                ).fetchone()[0]
            )
            page = max(1, min(page, math.ceil(total / page_size)))
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM images WHERE {matching} "
                "ORDER BY created_at DESC, seq DESC LIMIT :limit OFFSET :offset",
                {**values, "offset": (page - 1) * page_size},
            ).fetchall()
        return [_record(row) for row in rows], total, page

    def saved_index(self) -> tuple[str, int, str] | None:
        """The saved index's folder, the change it reflects and its signature."""
        with self._lock:
            row = self._db.execute("SELECT folder, change, signature FROM saved_index").fetchone()
        return (str(row[0]), int(row[1]), str(row[2])) if row else None

    def last_change(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])

    def changes_since(self, seq: int) -> tuple[list[str | None], int]:
        """The ids changed after change ``seq``, in order (None: all deleted), and the
        last change's number."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        return [row[1] for row in rows], (rows[-1][0] if rows else seq)

    def holding(self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]) -> set[str]:
        """The bytes among ``sha256s`` with a vector under every one of ``keys`` (the key alone)."""
        names = sorted({(key.model, key.preprocessing) for key in keys})
        with self._lock:
            rows = self._db.execute(
                f"SELECT sha256 FROM embeddings WHERE {_KEYED} GROUP BY sha256 HAVING count(*) = ?",
                (*_keyed(sha256s, names), len(names)),
            ).fetchall()
        return {row[0] for row in rows}

    def vectors_of(
        self, sha256s: Iterable[str], keys: Iterable[EmbeddingKey]
    ) -> dict[str, Vectors]:
        """The vectors stored for ``sha256s`` under ``keys``, read through the primary key."""
        by_name = {(key.model, key.preprocessing): key for key in keys}
        with self._lock:
            rows = self._db.execute(
                f"SELECT sha256, model, preprocessing, vector FROM embeddings WHERE {_KEYED}",
                _keyed(sha256s, list(by_name)),
            ).fetchall()
        found: dict[str, Vectors] = {}
        for sha256, model, preprocessing, blob in rows:
            key = by_name[(model, preprocessing)]
            if len(blob) == 4 * key.dimension:
                found.setdefault(sha256, {})[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    # Writes: each is one transaction

    def adopt_collection_id(self, candidate: str, replace: bool) -> str:
        verb = "REPLACE" if replace else "IGNORE"
        with self._transaction() as db:
            db.execute(f"INSERT OR {verb} INTO collection VALUES (1, ?)", (candidate,))
            return str(db.execute("SELECT id FROM collection").fetchone()[0])

    def name_saved_index(self, folder: str, change: int, signature: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO saved_index VALUES (1, ?, ?, ?)",
                (folder, change, signature),
            )

    def set_label(self, image_id: str, label: str | None) -> ImageRecord | None:
        """Give an image its label; its record afterwards, None when there is none."""
        with self._transaction() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
            if row is None:
                return None
            record = replace(_record(row), label=label)
            db.execute(
                "UPDATE images SET label = ?, search_text = ? WHERE id = ?",
                (label, record.search_text, image_id),
            )
        return record

    def save(self, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        """Insert or update image rows, with the vectors given for their bytes; an
        update keeps the row's label."""
        with self._transaction() as db:
            self._save(db, entries)

    def save_upload(self, record: ImageRecord, vectors: Vectors) -> ImageRecord | None:
        """Insert an uploaded image's row unless a row holds the same bytes: then return
        that row and write nothing. One transaction, so atomic across processes."""
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM images WHERE sha256 = ? ORDER BY seq LIMIT 1",
                (record.sha256,),
            ).fetchone()
            if row:
                return _record(row)
            self._save(db, [(record, vectors)])
        return None

    @staticmethod
    def _save(db: sqlite3.Connection, entries: list[tuple[ImageRecord, Vectors]]) -> None:
        for record, vectors in entries:
            db.execute(
                f"INSERT INTO images ({_COLUMNS}, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET sha256 = excluded.sha256, "
                "size = excluded.size, mtime_ns = excluded.mtime_ns",
                (
                    record.id,
                    record.sha256,
                    record.size,
                    record.mtime_ns,
                    record.original_filename,
                    record.created_at.isoformat(),
                    record.label,
                    record.search_text,
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                [
                    (
                        record.sha256,
                        key.model,
                        key.preprocessing,
                        np.asarray(vector, dtype=np.float32).tobytes(),
                    )
                    for key, vector in vectors.items()
                ],
            )
            db.execute("INSERT INTO changes (id) VALUES (?)", (record.id,))

    def delete(self, ids: list[str]) -> int:
        """Remove image rows, and the vectors no remaining row uses; return how many rows
        were there (another process may have removed them first)."""
        with self._transaction() as db:
            removed = sum(
                db.execute("DELETE FROM images WHERE id = ?", (image_id,)).rowcount
                for image_id in ids
            )
            db.execute("DELETE FROM embeddings WHERE sha256 NOT IN (SELECT sha256 FROM images)")
            db.executemany("INSERT INTO changes (id) VALUES (?)", [(image_id,) for image_id in ids])
        return removed

    def delete_all(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM images")
            db.execute("DELETE FROM embeddings")
            db.execute("INSERT INTO changes (id) VALUES (NULL)")
