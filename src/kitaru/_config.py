"""Settings resolution: argument, then environment variable, then default."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kitaru import environment_variables as ev
from kitaru._checks import parse_bool, parse_positive_int, parse_positive_number
from kitaru.exceptions import KitaruUsageError

T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_FLUSH_TIMEOUT = 0.5
DEFAULT_MAX_WORKERS = 8
DEFAULT_HEARTBEAT_INTERVAL = 2.0
DEFAULT_RECORD_RETRY_SECONDS = 30.0


def resolve(arg: T | None, env_name: str, parse: Callable[[str], T], default: T) -> T:
    """Return ``arg`` if given, else the parsed environment variable, else ``default``.

    A set but unparsable variable is a usage error that names the variable and its value.
    """
    if arg is not None:
        return arg
    raw = os.environ.get(env_name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except (TypeError, ValueError) as exc:
        raise KitaruUsageError(
            f"environment variable {env_name}={raw!r} is invalid: {exc}"
        ) from None


def home_dir(arg: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the embedded store: argument, ``KITARU_HOME``, then ``~/.kitaru``."""
    if arg is not None:
        return Path(arg).expanduser()
    raw = os.environ.get(ev.KITARU_HOME, "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".kitaru"


def server_url(arg: str | None = None) -> str | None:
    """Server URL: argument, then ``KITARU_SERVER_URL``; ``None`` means local database mode."""
    url = arg if arg is not None else os.environ.get(ev.KITARU_SERVER_URL, "").strip()
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise KitaruUsageError(
            f"server URL must start with http:// or https://, got {url!r} ({ev.KITARU_SERVER_URL})"
        )
    return url.rstrip("/")


def api_token(arg: str | None = None) -> str | None:
    """API token: argument, then ``KITARU_API_TOKEN``."""
    tok = arg if arg is not None else os.environ.get(ev.KITARU_API_TOKEN, "").strip()
    return tok or None


def access_log(arg: bool | None = None) -> bool:
    """Whether the server logs one line per request: argument, ``KITARU_ACCESS_LOG``, off."""
    return resolve(arg, ev.KITARU_ACCESS_LOG, parse_bool, False)


def queue_size(arg: int | None = None) -> int:
    """Bound of the process-local live-event queue."""
    return resolve(arg, ev.KITARU_PUBLISHER_QUEUE_SIZE, parse_positive_int, DEFAULT_QUEUE_SIZE)


def flush_timeout(arg: float | None = None) -> float:
    """Seconds a ``flush=True`` call waits; times four, the bound of the flush at a flow's end."""
    return resolve(arg, ev.KITARU_FLUSH_TIMEOUT, parse_positive_number, DEFAULT_FLUSH_TIMEOUT)


def max_workers(arg: int | None = None) -> int:
    """Concurrency bound of fan-out."""
    return resolve(arg, ev.KITARU_MAX_WORKERS, parse_positive_int, DEFAULT_MAX_WORKERS)


def heartbeat_interval(arg: float | None = None) -> float:
    """Seconds between execution heartbeats (they also carry cancel requests to the producer)."""
    return resolve(
        arg, ev.KITARU_HEARTBEAT_INTERVAL, parse_positive_number, DEFAULT_HEARTBEAT_INTERVAL
    )


def record_retry_seconds(arg: float | None = None) -> float:
    """How long durable-record writes to the server are retried."""
    return resolve(
        arg, ev.KITARU_RECORD_RETRY_SECONDS, parse_positive_number, DEFAULT_RECORD_RETRY_SECONDS
    )


def trace_url_template(arg: str | None = None) -> str | None:
    """Trace viewer URL template with ``{trace_id}``, or ``None``."""
    tpl = arg if arg is not None else os.environ.get(ev.KITARU_TRACE_URL_TEMPLATE, "").strip()
    return tpl or None


ERROR_DETAIL_MODES = ("full", "type")
"""Values of ``KITARU_ERROR_DETAIL``."""


def _error_detail(raw: str) -> str:
    value = raw.lower()
    if value not in ERROR_DETAIL_MODES:
        raise ValueError("expected 'full' or 'type'")
    return value


def error_detail(arg: str | None = None) -> str:
    """What the durable record keeps of a failure: ``full`` or ``type`` (type only)."""
    if arg is not None:
        return _error_detail(arg)
    return resolve(None, ev.KITARU_ERROR_DETAIL, _error_detail, "full")
