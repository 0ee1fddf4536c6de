"""The server's settings, checked once when the app is built."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kitaru import _config
from kitaru._checks import check_token, positive_int, positive_number
from kitaru.exceptions import KitaruUsageError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerSettings"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _default_db() -> Path:
    return _config.home_dir() / "server.db"


@dataclass(frozen=True)
class ServerSettings:
    """How a kitaru server behaves.

    Attributes:
        db: Where executions live: a SQLite file (a path or ``sqlite:///path``, which also
            holds the event log unless ``event_log_url`` says otherwise), or a
            ``postgresql://`` URL (kept as a string). Default: ``KITARU_HOME/server.db``.
        event_log_url: Where live events live: ``None`` (the SQLite ``db``), a SQLite path or
            ``sqlite:///`` URL, a ``redis://`` URL (several replicas), or ``memory``.
        token: Bearer token every ``/api/v1`` route requires (``None``: no authentication).
        streaming: Serve live events (ingest and SSE); when False both answer 501.
        lost_after: Seconds without a heartbeat or record write after which a running
            execution is marked ``lost`` and its streams end.
        ping_interval: Seconds between SSE heartbeat comments on an idle stream.
        retry_ms: The SSE ``retry:`` hint sent to clients, in milliseconds.
        send_timeout: Seconds a stream waits for a stalled client to take one write before
            aborting its connection.
        header_timeout: Seconds a connection may take to send a request's headers (the first
            request, and each next one on a kept-alive connection) before it is closed.
        read_batch: Events read from the log, and frames written to the socket, per step.
        max_events_per_execution: Retention: keep at most this many newest events of each
            execution (``None``: all).
        retain_ended: Retention: drop an ended execution's events this many seconds after it
            ended (``None``: keep them).
        max_body_bytes: Largest request body accepted.
        max_batch_events: Most events accepted in one ingest request.
        max_event_bytes: Largest single event accepted, in bytes of JSON.
    """

    db: Path | str = field(default_factory=_default_db)
    event_log_url: str | None = None
    token: str | None = None
    streaming: bool = True
    lost_after: float = 30.0
    ping_interval: float = 10.0
    retry_ms: int = 2000
    send_timeout: float = 30.0
    header_timeout: float = 10.0
    read_batch: int = 500
    max_events_per_execution: int | None = None
    retain_ended: float | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    max_batch_events: int = 10_000
    max_event_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "db", _db_location(self.db))
        if self.event_log_url is not None:
            if (
                not isinstance(self.event_log_url, str | Path)
                or not str(self.event_log_url).strip()
            ):
                raise KitaruUsageError(
                    f"event_log_url must be a URL or a file path, got {self.event_log_url!r}"
                )
            object.__setattr__(self, "event_log_url", str(self.event_log_url))
        # "" means no token; a blank or untypeable token is refused here, at startup.
        object.__setattr__(self, "token", check_token("token", self.token) if self.token else None)
        for name in ("lost_after", "ping_interval", "send_timeout", "header_timeout"):
            positive_number(name, getattr(self, name))
        if self.retain_ended is not None:
            positive_number("retain_ended", self.retain_ended, allow_zero=True)
        for name in ("retry_ms", "read_batch", "max_body_bytes", "max_batch_events"):
            positive_int(name, getattr(self, name))
        positive_int("max_event_bytes", self.max_event_bytes)
        if self.max_events_per_execution is not None:
            positive_int("max_events_per_execution", self.max_events_per_execution)

    @classmethod
    def from_options(cls, **options: Any) -> ServerSettings:
        """Settings from keyword options, naming any unknown option in the error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise KitaruUsageError(
                f"unknown server option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**{k: v for k, v in options.items() if v is not None or k == "token"})


def _db_location(value: Any) -> Path | str:
    """A SQLite path, or a PostgreSQL URL kept as it is (``Path`` would mangle ``//``).

    ``sqlite:///rel.db`` is relative and ``sqlite:////abs.db`` absolute (the SQLAlchemy form).
    """
    if isinstance(value, str):
        if value.startswith(("postgresql://", "postgres://")):
            return value
        if value.startswith("sqlite:///"):
            return Path(value[len("sqlite:///") :]).expanduser()
        if "://" in value:
            raise KitaruUsageError(
                "db must be a SQLite file path, a sqlite:/// URL or a postgresql:// URL, got "
                f"a {value.split('://', 1)[0]}:// URL"
            )
    if not isinstance(value, str | Path):
        raise KitaruUsageError(f"db must be a path or a URL, got {type(value).__name__}")
    return Path(value).expanduser()
