"""Choosing the store and the event log from ``--db`` and ``--event-log``."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitaru.backends import MemoryEventLog, SqliteEventLog
from kitaru.exceptions import KitaruUsageError
from kitaru.server import ServerSettings
from kitaru.server._backends import describe_url, open_event_log


def test_db_accepts_paths_sqlite_urls_and_postgres_urls(tmp_path: Path) -> None:
    assert ServerSettings(db=tmp_path / "a.db").db == tmp_path / "a.db"
    assert ServerSettings(db=f"sqlite:///{tmp_path}/b.db").db == tmp_path / "b.db"
    url = "postgresql://u:p@127.0.0.1:5432/k?sslmode=disable"
    assert ServerSettings(db=url).db == url  # kept whole: a Path would fold the "//"
    with pytest.raises(KitaruUsageError, match="mysql://"):
        ServerSettings(db="mysql://x/y")


def test_event_log_choices(tmp_path: Path) -> None:
    sqlite_default = open_event_log(ServerSettings(db=tmp_path / "a.db"))
    assert isinstance(sqlite_default, SqliteEventLog) and sqlite_default.path == tmp_path / "a.db"
    other = open_event_log(ServerSettings(db=tmp_path / "a.db", event_log_url=str(tmp_path / "l")))
    assert isinstance(other, SqliteEventLog) and other.path == tmp_path / "l"
    mem = open_event_log(ServerSettings(db=tmp_path / "a.db", event_log_url="memory"))
    assert isinstance(mem, MemoryEventLog)
    with pytest.raises(KitaruUsageError, match="choose where live events live"):
        open_event_log(ServerSettings(db="postgresql://u@h/k"))
    with pytest.raises(KitaruUsageError, match="event_log_url must be"):
        open_event_log(ServerSettings(db=tmp_path / "a.db", event_log_url="kafka://x"))


def test_redis_url_prefix_and_retention(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    from kitaru.backends._redis import RedisEventLog

    log = open_event_log(
        ServerSettings(
            db=tmp_path / "a.db",
            event_log_url="redis://127.0.0.1:1/0?prefix=blue",
            max_events_per_execution=7,
            retain_ended=60,
        )
    )
    assert isinstance(log, RedisEventLog) and log.prefix == "blue"
    assert (log.retention.max_events, log.retention.ended_ttl) == (7, 60)


def test_passwords_never_shown() -> None:
    assert describe_url("redis://u:secret@h:6379/0") == "redis://u:***@h:6379/0"
    assert describe_url("redis://h:6379/0") == "redis://h:6379/0"


def test_cli_passes_both_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import kitaru.server as server_mod
    from kitaru.cli import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(server_mod, "serve", lambda **kw: seen.update(kw))
    main(
        [
            "server",
            "start",
            "--db",
            "postgresql://u@127.0.0.1/k",
            "--event-log",
            "redis://127.0.0.1:6379/0",
        ]
    )
    assert seen["db"] == "postgresql://u@127.0.0.1/k"
    assert seen["event_log_url"] == "redis://127.0.0.1:6379/0"
