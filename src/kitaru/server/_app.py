"""The app factory: builds one server's state and includes the routers.

The routes live in module-level routers split by concept (``_routes_meta``, ``_routes_records``,
``_routes_events``, ``_routes_ingest``, ``_routes_logs``, ``_routes_ui``); their handlers get
this app's state through the dependencies of :mod:`kitaru.server._deps` (see
``docs/server-architecture.md``, "Routes").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from kitaru import _config
from kitaru._version import __version__
from kitaru.backends import EventLog
from kitaru.exceptions import KitaruUsageError
from kitaru.server import (
    _routes_events,
    _routes_ingest,
    _routes_logs,
    _routes_meta,
    _routes_records,
    _routes_ui,
)
from kitaru.server._backends import open_event_log, open_store
from kitaru.server._deps import attach
from kitaru.server._errors import install_error_handlers
from kitaru.server._hot import HotRoutes
from kitaru.server._settings import ServerSettings
from kitaru.server._state import ServerState, ServerStore
from kitaru.server._web import WebAssets, WebConfig

__all__ = ["create_app"]


def create_app(
    settings: ServerSettings | None = None,
    *,
    store: ServerStore | None = None,
    event_log: EventLog | None = None,
    **options: Any,
) -> FastAPI:
    """Build the kitaru server app (for ``kitaru server start``, embedding, or tests).

    Args:
        settings: The server settings; or pass them as keyword ``options`` (the fields of
            :class:`ServerSettings`, e.g. ``db=``, ``token=``, ``streaming=``). Without
            either, ``token`` defaults to ``KITARU_API_TOKEN``.
        store: Where durable records live. Default: the store ``settings.db`` names (a
            :class:`~kitaru.store.SqliteStore`, or a PostgreSQL store for a
            ``postgresql://`` URL).
        event_log: Where live events live. Default: the log ``settings.event_log_url`` names, or
            a :class:`~kitaru.backends.SqliteEventLog` on the ``db`` file (none when
            streaming is off).
        **options: Settings fields, when ``settings`` is not given.

    Returns:
        The ASGI app. Its ``state.kitaru`` is the :class:`ServerState`; serve it with
        :func:`kitaru.server.serve` or :func:`kitaru.server.serve_in_thread` so open streams
        close promptly on shutdown.
    """
    if settings is None:
        if "token" not in options:
            options["token"] = _config.api_token()
        settings = ServerSettings.from_options(**options)
    elif options:
        raise KitaruUsageError(
            f"pass either settings or keyword options, not both (got {', '.join(options)})"
        )
    log: EventLog | None = None
    if settings.streaming:
        # The log first: a bad event-log setting is refused before the store opens anything.
        log = event_log or open_event_log(settings)
    if store is None:
        store = open_store(settings)
    state = ServerState(settings, store, log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title="kitaru server",
        version=__version__,
        description="Durable execution records and live checkpoint events (SSE). "
        "See docs/protocol.md.",
        lifespan=lifespan,
    )
    attach(app, state, WebConfig.from_env(), WebAssets.load())
    install_error_handlers(app)
    # Ingest and heartbeats skip FastAPI's routing (same handlers; see server/_hot.py).
    app.add_middleware(HotRoutes)
    # No two API paths overlap, so this order only shapes the OpenAPI document.
    app.include_router(_routes_meta.open_router)
    app.include_router(_routes_meta.router)
    app.include_router(_routes_records.router)
    app.include_router(_routes_events.router)
    app.include_router(_routes_ingest.router)
    app.include_router(_routes_logs.router)
    app.include_router(_routes_events.stream_router)
    app.include_router(_routes_logs.stream_router)
    app.include_router(_routes_ui.router)
    return app
