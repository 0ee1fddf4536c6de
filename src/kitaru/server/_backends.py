"""Choosing the store and the event log from the server's settings (paths and URLs).

=====================================  ==============================================
``db``                                 store
=====================================  ==============================================
a path, or ``sqlite:///path``          :class:`~kitaru.store.SqliteStore` (default)
``postgresql://...``                   :class:`~kitaru.store.PostgresStore`
=====================================  ==============================================

=====================================  ==============================================
``event_log_url``                      event log
=====================================  ==============================================
unset                                  the SQLite file of ``db`` (needs a SQLite ``db``)
a path, or ``sqlite:///path``          :class:`~kitaru.backends.SqliteEventLog`
``redis://...`` / ``rediss://...``     :class:`~kitaru.backends.RedisEventLog`; the query
                                       parameter ``prefix`` (default ``kitaru``) names the
                                       key namespace
``memory``                             :class:`~kitaru.backends.MemoryEventLog` (tests)
=====================================  ==============================================

Several replicas need a shared store and a shared event log: PostgreSQL and Redis.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kitaru.backends import EventLog, MemoryEventLog, Retention, SqliteEventLog
from kitaru.exceptions import KitaruUsageError
from kitaru.server._settings import ServerSettings
from kitaru.server._state import ServerStore
from kitaru.store._sqlite import SqliteStore

__all__ = ["describe_url", "open_event_log", "open_store", "sqlite_path"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(settings: ServerSettings) -> ServerStore:
    """The store named by ``settings.db``."""
    db = settings.db
    if isinstance(db, str):
        try:
            from kitaru.store._postgres import PostgresStore
        except ImportError as exc:
            raise KitaruUsageError(
                f"a postgresql:// database needs psycopg: pip install 'kitaru[postgres]' ({exc})"
            ) from None
        return PostgresStore(db)
    return SqliteStore(db)


def open_event_log(settings: ServerSettings) -> EventLog:
    """The event log named by ``settings.event_log_url`` (default: the SQLite ``db``)."""
    retention = Retention(settings.max_events_per_execution, settings.retain_ended)
    url = settings.event_log_url
    if url is None:
        if isinstance(settings.db, str):
            raise KitaruUsageError(
                "with a PostgreSQL database, choose where live events live: "
                "event_log_url='redis://host:6379/0' (--event-log) for several replicas, or a "
                "SQLite file for one server"
            )
        return SqliteEventLog(settings.db, retention=retention)
    if url in ("memory", "memory://"):
        return MemoryEventLog(retention)
    if url.startswith(_REDIS_SCHEMES):
        try:
            from kitaru.backends._redis import RedisEventLog
        except ImportError as exc:
            raise KitaruUsageError(
                f"a redis:// event log needs redis-py: pip install 'kitaru[redis]' ({exc})"
            ) from None
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = next((v for k, v in query if k == "prefix"), "kitaru") or "kitaru"
        rest = urlencode([(k, v) for k, v in query if k != "prefix"])
        return RedisEventLog(
            urlunsplit(parts._replace(query=rest)), retention=retention, prefix=prefix
        )
    if "://" in url and not url.startswith("sqlite:///"):
        raise KitaruUsageError(
            f"event_log_url must be a redis:// URL, a sqlite:/// URL, a file path or 'memory', "
            f"got {describe_url(url)!r}"
        )
    return SqliteEventLog(sqlite_path(url), retention=retention)


def sqlite_path(value: str | Path) -> Path:
    """The file of a path or ``sqlite:///`` URL (``sqlite:///rel.db``, ``sqlite:////abs.db``)."""
    text = str(value)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    return Path(text).expanduser()


def describe_url(url: str) -> str:
    """``url`` without its password, for messages and ``/api/v1/info``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
