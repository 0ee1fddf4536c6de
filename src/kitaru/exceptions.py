"""The kitaru error tree.

Every error kitaru raises on purpose derives from :class:`KitaruError`. The classes defined
here are the branches; the leaves live next to the code that raises them (public path given)::

    KitaruError
    ├── KitaruUsageError (ValueError)        misuse: a bad argument, named in the message
    │   ├── KitaruOutputError                a checkpoint output or flow input cannot be stored
    │   └── kitaru.backends.CursorInvalidError        a malformed or unknown stream cursor
    ├── KitaruContextError (RuntimeError)    called outside the scope it needs (a checkpoint)
    ├── KitaruFeatureNotAvailableError       the active backend cannot do this (e.g. watching
    │   │                                    live events in local database mode)
    │   └── kitaru.adapters.MissingExtraError (ImportError)   an adapter's framework is missing
    ├── KitaruBackendError                   server, transport or stream failures
    │   ├── kitaru.store.StoreUnavailableError        the store's database cannot be reached
    │   ├── kitaru.backends.EventLogError             the event log's storage failed
    │   │   └── kitaru.backends.EventLogUnavailableError   ... and cannot be reached right now
    │   ├── kitaru.client.StreamGapError              events a watcher asked for are gone
    │   ├── kitaru.client.StreamDisconnectedError (httpx.TransportError)   stream given up
    │   ├── kitaru.events.TransportDisabledError      a backend refuses live events for good
    │   └── kitaru.events.TransportRejectedError      a backend refused some events of a batch
    ├── KitaruStateError                     the stored state does not allow this (e.g. an
    │   │                                    ambiguous replay selector, an unknown execution)
    │   └── kitaru.store.ExecutionExistsError         an execution ID that is already stored
    ├── KitaruCancelledError                 raised inside a running flow at its next
    │                                        cancellation point once it was cancelled
    ├── kitaru.adapters.claude_agent_sdk.ClaudeResultMessageError (RuntimeError)
    │                                        Claude finished with an error result
    └── kitaru.server._errors.ApiError       inside the server: an error answer (status, kind,
                                             message), turned into an HTTP response

Exceptions whose names start with ``_`` are signals inside one module and never leave it.

Misuse is loud, transport is quiet: publishing live events raises only
:class:`KitaruUsageError` and :class:`KitaruContextError`; a missing, slow or failing backend
never raises into user code.
"""

from __future__ import annotations

__all__ = [
    "KitaruBackendError",
    "KitaruCancelledError",
    "KitaruContextError",
    "KitaruError",
    "KitaruFeatureNotAvailableError",
    "KitaruOutputError",
    "KitaruStateError",
    "KitaruUsageError",
]


class KitaruError(Exception):
    """Base class of every error kitaru raises on purpose."""


class KitaruUsageError(KitaruError, ValueError):
    """An API was called with a bad argument; the message names the parameter and value."""


class KitaruOutputError(KitaruUsageError):
    """A checkpoint output (or a flow input) cannot be stored durably.

    The message names the checkpoint and the Python type that could not be stored.
    """


class KitaruContextError(KitaruError, RuntimeError):
    """An API that needs checkpoint scope was called outside a running ``@checkpoint`` body."""


class KitaruFeatureNotAvailableError(KitaruError):
    """The active backend does not support the requested feature.

    Raised, for example, when watching live events in local database mode or against a server
    whose streaming is disabled.
    """


class KitaruBackendError(KitaruError):
    """A server, transport or stream failure that kitaru could not recover from."""


class KitaruStateError(KitaruError):
    """The recorded state does not allow the operation (unknown execution, ambiguous selector)."""


class KitaruCancelledError(KitaruError):
    """The execution was cancelled; raised at its next cancellation point.

    Cancellation points are the start of a checkpoint call (and of each retry),
    ``kitaru.progress()`` and ``kitaru.events.publish()`` (see ``docs/outcomes.md``). A
    checkpoint body that catches it and goes on is stopped at the next point again; it is never
    retried.
    """
