"""Server mode, producer side: a flow's durable records and live events sent to a kitaru server.

:class:`HttpStore` is the :class:`~kitaru.store.Store` that keeps records on the server;
:class:`HttpTransport` is the live-event transport that posts events to it. The default
runtime of server mode (``KITARU_SERVER_URL`` set) is built from both by
:func:`kitaru.runtime.get_runtime`; build one yourself with :class:`kitaru.runtime.Runtime`.
"""

from kitaru._public import publish_names
from kitaru.remote._store import HttpStore
from kitaru.remote._transport import HttpTransport

__all__ = ["HttpStore", "HttpTransport"]

publish_names(__name__, globals(), __all__)
