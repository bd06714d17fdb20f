"""The Postgres store's connections: a pool (psycopg_pool) of at most POOL_SIZE per
process, each connection set up for pgvector and UTC. A database that cannot be reached
is a ``StoreUnavailableError`` (503 with Retry-After), and the pool reconnects by itself."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from app.errors import StoreUnavailableError
from app.messages.catalogue import message

POOL_SIZE = 8
# How long a request waits for a connection, or to connect, before answering 503.
CONNECT_TIMEOUT_S = 10

Connection = psycopg.Connection[tuple[Any, ...]]


def public_location(url: str) -> str:
    """DATABASE_URL without its password, for logs and messages."""
    parts = {key: value for key, value in conninfo_to_dict(url).items() if key != "password"}
    return make_conninfo("", **parts)


class Database:
    """Pooled connections to one database, each with the ``session`` settings (name ->
    value); ``unavailable`` names it without its password."""

    def __init__(self, url: str, session: dict[str, str] | None = None) -> None:
        self.url = url
        self.session = dict(session or {})
        self.location = public_location(url)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=CONNECT_TIMEOUT_S,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=self._configure,
            check=ConnectionPool.check_connection,
            open=True,
        )

    def _configure(self, connection: Connection) -> None:
        register_vector(connection)
        connection.execute("SET TIME ZONE 'UTC'")
        for name, value in self.session.items():
            connection.execute("SELECT set_config(%s, %s, false)", (name, value))

    def unavailable(self, exc: Exception) -> StoreUnavailableError:
        return unavailable(self.location, exc)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        try:
            with self._pool.connection() as connection:
                yield connection
        except psycopg.OperationalError as exc:  # PoolTimeout is one too
            raise self.unavailable(exc) from exc

    def close(self) -> None:
        self._pool.close()


def unavailable(location: str, exc: Exception) -> StoreUnavailableError:
    """The error of a database that cannot be reached, with the first line of why."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreUnavailableError(message("database_unreachable", location=location, reason=reason))


@contextmanager
def direct_connection(url: str) -> Iterator[Connection]:
    """One connection outside the pool (migrations at start-up)."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as connection:
            yield connection
    except psycopg.OperationalError as exc:
        raise unavailable(public_location(url), exc) from exc
