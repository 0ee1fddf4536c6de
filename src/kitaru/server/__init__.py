"""The kitaru server: durable execution records and live checkpoint events over SSE.

Needs the ``server`` extra (``pip install 'kitaru[server]'``). Run it with
``kitaru server start``, or in-process::

    from kitaru.server import serve_in_thread

    with serve_in_thread(db="server.db") as server:
        print(server.url)

The wire protocol is described in ``docs/protocol.md``.
"""

from kitaru._public import publish_names
from kitaru.server._app import create_app
from kitaru.server._run import RunningServer, check_bind_address, serve, serve_in_thread
from kitaru.server._settings import DEFAULT_HOST, DEFAULT_PORT, ServerSettings
from kitaru.server._state import ServerState, ServerStore

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "RunningServer",
    "ServerSettings",
    "ServerState",
    "ServerStore",
    "check_bind_address",
    "create_app",
    "serve",
    "serve_in_thread",
]

publish_names(__name__, globals(), __all__)
