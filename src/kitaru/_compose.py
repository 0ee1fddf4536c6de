"""The composition root: the one place that builds the process's default runtime.

Every other package knows only the layers below it (``docs/architecture.md``); this module
knows them all. It chooses the mode from configuration (``KITARU_SERVER_URL`` set: server
mode, records and live events go to that server; unset: local database mode, the SQLite store
under ``KITARU_HOME``, no live-event publishing), builds the store and the transport, and
installs the default observers (the OpenTelemetry bridge when OpenTelemetry is set up).

``import kitaru`` calls :func:`install`, so :func:`kitaru.runtime.get_runtime` builds its
runtime here on first use.
"""

from __future__ import annotations

import logging

from kitaru import _config
from kitaru.exceptions import KitaruUsageError
from kitaru.otel._auto import install_default as install_otel_bridge
from kitaru.remote import HttpStore, HttpTransport
from kitaru.runtime._runtime import Runtime, set_runtime_factory
from kitaru.store._sqlite import SqliteStore

__all__ = [
    "build_default_runtime",
    "build_local_runtime",
    "build_server_runtime",
    "install",
    "install_default_observers",
]

logger = logging.getLogger("kitaru")


def build_server_runtime(url: str, token: str | None) -> Runtime:
    """The runtime of server mode: records on the server, live events published to it.

    Args:
        url: The server's base URL (``KITARU_SERVER_URL``).
        token: Bearer token (``KITARU_API_TOKEN``), or ``None``.
    """
    return Runtime(
        HttpStore(url, token),
        HttpTransport(url, token),
        mode="server",
        server_url=url,
        api_token=token,
        heartbeat_interval=_config.heartbeat_interval(),
    )


def build_local_runtime() -> Runtime:
    """The runtime of local database mode: SQLite under ``KITARU_HOME``, no live events.

    It sends heartbeats to the database too: their answer carries cancel requests made from
    another process (``docs/outcomes.md``).
    """
    return Runtime(
        SqliteStore(_config.home_dir() / "kitaru.db"),
        None,
        mode="local",
        heartbeat_interval=_config.heartbeat_interval(),
    )


def install_default_observers(runtime: Runtime) -> None:
    """Add the observers every default runtime gets.

    The OpenTelemetry bridge joins only when OpenTelemetry is set up; setting it up must never
    break a run, so a failure is logged and the runtime goes on without it.
    """
    try:
        install_otel_bridge(runtime)
    except ImportError:  # OpenTelemetry is an optional dependency
        logger.debug("kitaru: OpenTelemetry is not installed; no spans", exc_info=True)
    except KitaruUsageError as exc:
        # A setting such as an OTLP endpoint without http://: one line that names it.
        logger.warning("kitaru: OpenTelemetry is off: %s", exc)
    except Exception:
        logger.warning("kitaru: OpenTelemetry setup failed; continuing without it", exc_info=True)


def build_default_runtime() -> Runtime:
    """The runtime configuration asks for (server or local database mode), with its observers."""
    url = _config.server_url()
    runtime = (
        build_server_runtime(url, _config.api_token()) if url is not None else build_local_runtime()
    )
    install_default_observers(runtime)
    return runtime


def install() -> None:
    """Make :func:`build_default_runtime` the factory of :func:`kitaru.runtime.get_runtime`."""
    set_runtime_factory(build_default_runtime)
