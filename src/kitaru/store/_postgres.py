"""The PostgreSQL store: durable records shared by several server replicas.

Selected with ``kitaru server start --db postgresql://...``. Same records and rules as
:class:`~kitaru.store.SqliteStore`; the schema is versioned (:mod:`kitaru.store._pg_schema`)
and migrated when the store opens. Calls are synchronous (the server runs them on worker
threads) and use a small connection pool; every write is one statement in autocommit, so a
replica that dies mid-request leaves nothing half-written.

A terminal execution never changes again: ``finish_execution`` updates only rows still
``running``, which makes "mark ended" atomic across replicas (the first finish or lost
verdict wins; the others see the stored outcome).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from kitaru.store._base import StoreUnavailableError
from kitaru.store._pg_schema import migrate
from kitaru.store._sql import SqlConnection, SqlDialect, SqlStore

__all__ = ["PostgresStore", "is_postgres_url"]

T = TypeVar("T")


def is_postgres_url(value: object) -> bool:
    """True for a ``postgresql://`` or ``postgres://`` URL."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


class PostgresStore(SqlStore):
    """A :class:`~kitaru.store.Store` in a PostgreSQL database.

    Args:
        url: A libpq URL, ``postgresql://user:password@host:port/database``. Query
            parameters are passed on (e.g. ``?sslmode=require``, or
            ``?options=-csearch_path%3Dmyschema`` for a schema of its own).
        min_connections: Connections the pool keeps open.
        max_connections: Most connections the pool opens (per process).
        connect_timeout: Seconds to wait for a connection before answering "unavailable".

    Raises:
        StoreUnavailableError: The database cannot be reached or migrated.
    """

    sql = SqlDialect(
        placeholder="%s",
        table_prefix="kitaru_",
        execution_conflict=" ON CONFLICT (exec_id) DO NOTHING",
        # Replicas may beat out of order; the time never goes back.
        heartbeat_value="GREATEST(COALESCE(heartbeat_at, 0), {p})",
        cached_order="ended_at DESC NULLS LAST",  # PostgreSQL sorts NULL first when descending
        log_insert=("INSERT INTO", " ON CONFLICT DO NOTHING"),
    )

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = 1,
        max_connections: int = 8,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_connections,
            max_size=max(min_connections, max_connections),
            timeout=connect_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout))},
            open=False,
            name="kitaru-store",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            with self._pool.connection() as conn:
                migrate(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._pool.close()
            raise StoreUnavailableError(
                f"cannot open the PostgreSQL store: {_describe(exc)}"
            ) from None
        except BaseException:
            self._pool.close()
            raise

    def _read(self, fn: Callable[[SqlConnection], T]) -> T:
        # One retry on a fresh connection: after a database restart, pooled connections are
        # broken until used once. Every statement here is safe to repeat.
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    return fn(conn)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if attempt == 2:
                    raise StoreUnavailableError(
                        f"the PostgreSQL store is unavailable: {_describe(exc)}"
                    ) from None
        raise AssertionError("unreachable")

    # Every write is one statement (or an update and a read) in autocommit: safe to repeat.
    _write = _read

    def close(self) -> None:
        """Close the pool (idempotent)."""
        self._pool.close(timeout=2.0)


def _describe(exc: BaseException) -> str:
    # libpq messages may quote the connection string; keep the first line, never the URL.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
