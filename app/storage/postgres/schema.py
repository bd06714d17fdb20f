"""The Postgres store's schema, created and migrated by the service at start-up.

Each migration runs once, in order, in one transaction with its version recorded in
``schema_version``; replicas starting together take turns on an advisory lock, so the
first migrates and the others find the work done. A database migrated by a newer
service is refused rather than misread.

- ``images``: one row per file of IMAGES_DIR (as the embedded catalog), plus the file's
  searchable vector, ``[concept | shape]`` (and ``[concept | core's shape]`` where its
  drawing has a core), and the vector space it belongs to (so vectors of another model
  or preprocessing are never compared with a query's);
- ``embeddings``: the concept and shape vectors by bytes, model and preprocessing, so a
  new shape descriptor version reuses every concept vector (as the embedded catalog);
- ``collection``: the id of the collection whose folder the store indexes.

Each image row also holds its label and ``search_text`` (id, label and original file
name, folded), where ``GET /images/?q=`` looks.
"""

import hashlib
import logging
from typing import Any

import psycopg
from psycopg import sql

from app.errors import ConfigError
from app.storage.types import folded

logger = logging.getLogger(__name__)

# Advisory lock keys (any 64-bit numbers no other application on the database uses).
MIGRATION_LOCK = 0x1A6E_5EA7_0001
RECONCILE_LOCK = 0x1A6E_5EA7_0002

MIGRATIONS: tuple[str, ...] = (
    # 1: images, their vectors, and the search column.
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE images (
        seq bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        sha256 text NOT NULL,
        size bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        original_filename text,
        created_at timestamptz NOT NULL,
        space text,
        embedding vector
    );
    -- Vectors inline in the row, not compressed out of line (TOAST): an exact search
    -- reads every one, and fetching each from the TOAST table costs more than the scan.
    ALTER TABLE images ALTER COLUMN embedding SET STORAGE PLAIN;
    CREATE INDEX images_by_sha256 ON images (sha256);
    CREATE INDEX images_by_created_at ON images (created_at, seq);
    CREATE TABLE embeddings (
        sha256 text NOT NULL,
        model text NOT NULL,
        preprocessing text NOT NULL,
        vector vector NOT NULL,
        PRIMARY KEY (sha256, model, preprocessing)
    );
    """,
    # 2: the id of the collection whose folder the store indexes (app.folder_guard).
    """
    CREATE TABLE collection (
        only_row integer PRIMARY KEY CHECK (only_row = 1),
        id text NOT NULL
    );
    """,
    # 3: labels, and the text the collection's filter looks in (folded by the service:
    # app.storage.types.folded), filled for earlier rows at start-up.
    """
    ALTER TABLE images ADD COLUMN label text;
    ALTER TABLE images ADD COLUMN search_text text;
    """,
    # 4: the image's second searchable row, ``[concept | core's shape]``, where its
    # drawing has a core (app.storage.types.VectorSpace); filled by the next
    # reconciliation, without the model.
    """
    ALTER TABLE images ADD COLUMN core_embedding vector;
    ALTER TABLE images ALTER COLUMN core_embedding SET STORAGE PLAIN;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Bring the schema to SCHEMA_VERSION; refuse a database of a newer schema."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"The database's schema is version {current}, newer than this service's "
                f"({SCHEMA_VERSION}): run the newer service, or restore a backup."
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            logger.info("Migrating the database schema to version %d", version)
            connection.execute(MIGRATIONS[version - 1].encode())
            connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        _fill_search_text(connection)


def _fill_search_text(connection: psycopg.Connection[tuple[Any, ...]]) -> None:
    """``search_text`` for rows written before migration 3 (or by an older replica)."""
    rows = connection.execute(
        "SELECT id, label, original_filename FROM images WHERE search_text IS NULL"
    ).fetchall()
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE images SET search_text = %s WHERE id = %s",
            [(folded(" ".join(filter(None, row))), row[0]) for row in rows],
        )


def hnsw_index_name(space: str, column: str = "embedding") -> str:
    prefix = "images_hnsw" if column == "embedding" else f"images_hnsw_{column}"
    return f"{prefix}_{hashlib.sha256(space.encode()).hexdigest()[:12]}"


def create_hnsw_index(
    connection: psycopg.Connection[tuple[Any, ...]],
    space: str,
    dimension: int,
    column: str = "embedding",
) -> None:
    """An HNSW index (inner product) on one column of the vectors of one space, unless
    it exists; the first start with PG_HNSW=true builds it over every stored vector
    (minutes for a million)."""
    name = hnsw_index_name(space, column)
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        exists = connection.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        if exists and exists[0] is not None:
            return
        logger.info("Building the HNSW index %s of %d dimensions", name, dimension)
        connection.execute(
            sql.SQL(
                "CREATE INDEX {} ON images USING hnsw (({}::vector({})) vector_ip_ops) "
                "WHERE space = {}"
            ).format(
                sql.Identifier(name),
                sql.Identifier(column),
                sql.Literal(dimension),
                sql.Literal(space),
            )
        )
        # Fresh statistics, so the planner weighs the index against a scan correctly.
        connection.execute("ANALYZE images")
