"""Opening the store STORE names: the one module that imports both backends."""

import sqlite3

from app.config import Settings
from app.errors import ConfigError
from app.storage.embedded.catalog import CATALOG_FILE
from app.storage.embedded.store import EmbeddedStore
from app.storage.postgres.store import PostgresStore
from app.storage.store import Store
from app.storage.types import VectorSpace


def open_store(settings: Settings, space: VectorSpace) -> Store:
    """The store STORE names, opened for ``space``."""
    if settings.store == "postgres":
        assert settings.database_url is not None  # Settings requires it for postgres
        return PostgresStore(
            settings.database_url.get_secret_value(),
            space,
            settings.pg_hnsw,
            settings.hnsw_ef_search,
        )
    try:
        return EmbeddedStore(
            settings.index_dir, space, settings.index_factory, settings.hnsw_ef_search
        )
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"INDEX_DIR={str(settings.index_dir)!r}: its catalog "
            f"{str(settings.index_dir / CATALOG_FILE)!r} cannot be read ({exc}): restore it "
            "from a backup; nothing was changed."
        ) from None
