"""The watcher's protocol logic without I/O: one :class:`WatchSession` per watch.

The sync and async drivers in :mod:`kitaru.client._watcher` do the HTTP calls and the sleeping;
everything they decide (what to request, what a response or a frame means, how long to wait
before reconnecting, when to give up) is decided here, once, for both.

Resume rules (``docs/live-events.md``, "Watching"):

* The resume position is the last ``id:`` the watcher saw on a data frame or a ``cursor``
  control frame. ``index`` and ``correlation_id`` are never used as resume markers.
* The position only moves when a frame carries an ``id:``, so a resumed stream that drops
  before any new event reconnects with the same cursor.
* Heartbeats are SSE comments with no ``id:``; they only keep the read timeout from expiring.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from kitaru import _wire
from kitaru._backoff import Backoff
from kitaru._http import RETRYABLE_STATUSES, error_detail
from kitaru.client._errors import StreamDisconnectedError, StreamGapError
from kitaru.client._watch_options import WatchOptions, WatchRequest
from kitaru.events._frames import CONTROL_EVENTS, DataFrame, SSEFrame
from kitaru.events._models import ExecutionEvent, server_event
from kitaru.exceptions import (
    KitaruBackendError,
    KitaruFeatureNotAvailableError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.store._records import TERMINAL_EXECUTION_STATUSES

__all__ = ["WatchSession"]

logger = logging.getLogger("kitaru.client")

DEFAULT_BACKOFF_INITIAL = 0.5
_MIN_RETRY_HINT = 0.05


_loads = orjson.loads


def _quote(value: str) -> str:
    return quote(value, safe="")


def _frame_json(sse: SSEFrame) -> dict[str, Any]:
    if not sse.data:
        return {}
    try:
        value = orjson.loads(sse.data)
    except orjson.JSONDecodeError:
        return {"message": sse.data[:300]}
    return value if isinstance(value, dict) else {"value": value}


class WatchSession:
    """State and decisions of one watch.

    Args:
        request: The validated arguments.
        options: The validated options.
        server_url: The server's base URL (used in messages).
    """

    def __init__(self, request: WatchRequest, options: WatchOptions, server_url: str) -> None:
        self.request = request
        self.options = options
        self.server_url = server_url
        self.cursor: str | None = request.since
        self._exec_id = request.exec_id
        self.final_status: str | None = None
        self.finished = False
        self.terminal_at_start = False
        self._backoff = Backoff(
            options.backoff_initial or DEFAULT_BACKOFF_INITIAL, options.backoff_max
        )
        self._outage_start: float | None = None
        self._streamed = False
        self._moved = False
        self._fresh = False  # no frame yet on the current stream: the first resets the backoff
        self._filtered = (
            request.kinds is not None
            or request.correlation_ids is not None
            or request.checkpoint is not None
        )

    @property
    def exec_id(self) -> str:
        """The watched execution's ID."""
        return self.request.exec_id

    # -- requests -------------------------------------------------------------------------

    def lookup_path(self) -> str:
        """Path of the exact-ID execution lookup."""
        return _wire.path_execution(_quote(self.exec_id))

    def stream_path(self) -> str:
        """Path of the SSE stream."""
        return _wire.path_stream(_quote(self.exec_id))

    def stream_request(self) -> dict[str, Any]:
        """The arguments of ``httpx.Client.stream()`` (or the async client's) for the stream."""
        return {
            "method": "GET",
            "url": self.stream_path(),
            "params": self.stream_params(),
            "headers": self.stream_headers(),
            "timeout": self.stream_timeout(),
        }

    def stream_params(self) -> list[tuple[str, str | int | float | bool | None]]:
        """Server-side filters (the client filters again on every frame)."""
        params: list[tuple[str, str | int | float | bool | None]] = []
        for kind in self.request.kinds or ():
            params.append((_wire.QUERY_KINDS, kind))
        for corr in self.request.correlation_ids or ():
            params.append((_wire.QUERY_CORRELATION_ID, corr))
        # The checkpoint filter goes to the server only for executions that had already ended
        # when the watch started: for a live one the matching checkpoint may not exist yet
        # (product page, "Watch events from Python"), so it is applied here only.
        if self.request.checkpoint is not None and self.terminal_at_start:
            params.append((_wire.QUERY_CHECKPOINT, self.request.checkpoint))
        return params

    def stream_headers(self) -> dict[str, str]:
        """Headers of a stream request; ``Last-Event-ID`` carries the resume cursor."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.cursor is not None:
            headers[_wire.HEADER_LAST_EVENT_ID] = self.cursor
        return headers

    def request_timeout(self) -> httpx.Timeout:
        """Timeout of the lookup requests."""
        return httpx.Timeout(self.options.timeout)

    def stream_timeout(self) -> httpx.Timeout:
        """Timeout of the stream: a read that sees no byte for ``heartbeat_timeout`` stalls."""
        t = self.options.timeout
        return httpx.Timeout(connect=t, read=self.options.heartbeat_timeout, write=t, pool=t)

    # -- responses ------------------------------------------------------------------------

    def _auth_error(self, status: int) -> KitaruBackendError:
        return KitaruBackendError(
            f"authorization failed: the kitaru server at {self.server_url} refused to show "
            f"execution {self.exec_id} (HTTP {status}); check KITARU_API_TOKEN or "
            "KitaruClient(api_token=...)"
        )

    def _disabled_error(self, detail: str) -> KitaruFeatureNotAvailableError:
        return KitaruFeatureNotAvailableError(
            f"live events are not available: the kitaru server at {self.server_url} has "
            f"streaming disabled ({detail}); enable streaming on the server to watch events"
        )

    def _retry_status(self, status: int) -> str | None:
        """Raise for a refused token; the failure to retry for a retryable status, else None."""
        if status in (401, 403):
            raise self._auth_error(status)
        return f"HTTP {status}" if status in RETRYABLE_STATUSES else None

    def check_info(self, resp: httpx.Response) -> str | None:
        """Read ``GET /info``; ``None`` to go on, a failure to retry, or raise."""
        status = resp.status_code
        failure = self._retry_status(status)
        if failure is not None or status != 200:
            return failure  # None: older servers without /info, the stream request decides
        try:
            info = resp.json()
        except ValueError:
            return None
        if isinstance(info, dict) and info.get("streaming") is False:
            raise self._disabled_error("it reports streaming: false")
        return None

    def check_lookup(self, resp: httpx.Response) -> str | None:
        """Read the exact-ID lookup; ``None`` when the execution exists, a failure, or raise."""
        status = resp.status_code
        failure = self._retry_status(status)
        if failure is not None:
            return failure
        if status == 404:
            raise KitaruStateError(
                f"no execution with ID {self.exec_id!r} on the kitaru server at "
                f"{self.server_url}; live events need the exact, full execution ID "
                "(prefixes and names are not accepted)"
            )
        if status != 200:
            _, detail = error_detail(resp)
            raise KitaruBackendError(
                f"looking up execution {self.exec_id} failed: the kitaru server at "
                f"{self.server_url} answered HTTP {status} ({detail})"
            )
        try:
            record = resp.json()
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise KitaruBackendError(
                f"looking up execution {self.exec_id} failed: the kitaru server at "
                f"{self.server_url} did not answer with an execution record"
            )
        if record.get("exec_id") != self.exec_id:
            raise KitaruStateError(
                f"no execution with ID {self.exec_id!r}: the server matched "
                f"{record.get('exec_id')!r}; live events need the exact, full execution ID "
                "(prefixes are not accepted)"
            )
        self.terminal_at_start = record.get("status") in TERMINAL_EXECUTION_STATUSES
        return None

    def check_stream(self, resp: httpx.Response) -> str | None:
        """Read the stream response's status; ``None`` to read frames, a failure, or raise.

        For a non-200 answer the body must already be read.
        """
        status = resp.status_code
        if status == 200:
            ctype = resp.headers.get("content-type", "").partition(";")[0].strip()
            if ctype != "text/event-stream":
                raise KitaruBackendError(
                    f"the server at {self.server_url} answered the live-event stream of "
                    f"execution {self.exec_id} with content type {ctype!r}, not an event "
                    "stream; is KITARU_SERVER_URL the address of a kitaru server?"
                )
            self._connected()
            return None
        kind, detail = error_detail(resp)
        if status in (401, 403):
            raise self._auth_error(status)
        if status == 501 or kind == _wire.ERROR_STREAMING_DISABLED:
            raise self._disabled_error(detail)
        if status == 404:
            if kind == _wire.ERROR_EXECUTION_UNKNOWN:
                raise KitaruStateError(
                    f"no execution with ID {self.exec_id!r} on the kitaru server at "
                    f"{self.server_url} ({detail})"
                )
            # No stream route at all: a server without live-event streaming.
            raise KitaruFeatureNotAvailableError(
                f"live events are not available: the server at {self.server_url} has no "
                f"live-event stream endpoint (HTTP 404: {detail})"
            )
        if status in (400, 422):
            raise self._bad_request(kind, detail)
        if status in RETRYABLE_STATUSES:
            return f"HTTP {status}"
        raise KitaruBackendError(
            f"the kitaru server at {self.server_url} refused the live-event stream of "
            f"execution {self.exec_id} (HTTP {status}: {detail})"
        )

    def _bad_request(self, kind: str | None, detail: str) -> Exception:
        if kind == _wire.ERROR_CURSOR_INVALID and not self._moved and self.request.since:
            return KitaruUsageError(
                f"since={self.request.since!r} is not a valid cursor of execution "
                f"{self.exec_id} ({detail}); pass the cursor of an event of this execution"
            )
        if kind == _wire.ERROR_CURSOR_INVALID:
            return KitaruBackendError(
                f"the kitaru server at {self.server_url} no longer accepts cursor "
                f"{self.cursor!r} of execution {self.exec_id} ({detail})"
            )
        return KitaruUsageError(
            f"the kitaru server at {self.server_url} refused the watch of execution "
            f"{self.exec_id}: {detail}"
        )

    # -- frames ---------------------------------------------------------------------------

    def on_frame(self, frame: SSEFrame | DataFrame) -> ExecutionEvent | None:
        """Handle one frame of ``SSEReader.feed_split``; returns the event to yield, if any.

        The server's own data frames arrive as ``(event, data, id)`` tuples and are decoded
        right here: this runs once per event (``docs/protocol.md``, "The event stream"); any
        other frame goes through :meth:`on_sse`.
        """
        if type(frame) is not tuple or self._fresh:
            return self.on_sse(frame if isinstance(frame, SSEFrame) else SSEFrame(*frame))
        kind, raw, ident = frame
        if not raw:
            return None  # a frame with only a retry: hint, or an empty one
        try:
            data = _loads(raw)
            if type(data) is not dict:
                raise TypeError(type(data).__name__)
            # A frame without "exec_id" or "kind" takes the watched execution's and the
            # frame's event name (server_event fills them in only when one is missing).
            event = server_event(data, ident or None, self._exec_id, kind)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            raise KitaruBackendError(
                f"the kitaru server at {self.server_url} sent a malformed event frame on the "
                f"stream of execution {self.exec_id} ({type(exc).__name__})"
            ) from None
        cursor = event.cursor
        if cursor and cursor != self.cursor:  # _move, inlined: this runs once per event
            self.cursor = cursor
            self._moved = True
        return event if not self._filtered or self._wanted(event) else None

    def on_sse(self, sse: SSEFrame) -> ExecutionEvent | None:
        """Handle one frame; returns the event to yield, if any (``finished`` after ``end``)."""
        if self._fresh:
            self._fresh = False
            self._backoff.reset()
        if sse.retry is not None and self.options.backoff_initial is None and sse.retry >= 0:
            hint = min(max(sse.retry / 1000, _MIN_RETRY_HINT), self.options.backoff_max)
            self._backoff = Backoff(hint, self.options.backoff_max)
        name = sse.event or ""
        if name in CONTROL_EVENTS:
            self._on_control(name, sse)
            return None
        return self.on_frame((name, sse.data, sse.id))

    def _move(self, cursor: str) -> None:
        if cursor and cursor != self.cursor:
            self.cursor = cursor
            self._moved = True

    def _on_control(self, name: str, sse: SSEFrame) -> None:
        data = _frame_json(sse)
        if name == _wire.CONTROL_CURSOR:
            self._move(sse.id)
        elif name == _wire.CONTROL_END:
            status = data.get("status")
            self.final_status = status if isinstance(status, str) else None
            self.finished = True
        elif name == _wire.CONTROL_GAP:
            self._on_gap(sse, data)
        else:
            raise self._error_frame(data)
        return None

    def _on_gap(self, sse: SSEFrame, data: dict[str, Any]) -> None:
        reason = data.get("reason") or "unknown reason"
        missing = {k: v for k, v in data.items() if k not in ("reason", "message")}
        message = (
            f"events of execution {self.exec_id} before the requested position are no longer "
            f"on the kitaru server at {self.server_url}: {reason}"
            + (f" (missing: {orjson.dumps(missing).decode()})" if missing else "")
        )
        if self.options.on_gap == "raise":
            raise StreamGapError(
                message + "; pass on_gap='continue' to watch on after a gap",
                exec_id=self.exec_id,
                details=data,
            )
        logger.warning("kitaru: %s; continuing (on_gap='continue')", message)
        self._move(sse.id)

    def _error_frame(self, data: dict[str, Any]) -> Exception:
        raw_kind = data.get("kind") or data.get("error")
        kind = raw_kind if isinstance(raw_kind, str) else None
        raw_msg = data.get("message") or data.get("detail") or kind or "no detail"
        detail = str(raw_msg)[:300]
        if kind == _wire.ERROR_STREAMING_DISABLED:
            return self._disabled_error(detail)
        if kind == _wire.ERROR_EXECUTION_UNKNOWN:
            return KitaruStateError(
                f"no execution with ID {self.exec_id!r} on the kitaru server at "
                f"{self.server_url} ({detail})"
            )
        if kind == _wire.ERROR_CURSOR_INVALID:
            return self._bad_request(kind, detail)
        return KitaruBackendError(
            f"the kitaru server at {self.server_url} ended the live-event stream of execution "
            f"{self.exec_id} with an error: {kind + ': ' if kind else ''}{detail}"
        )

    def _wanted(self, event: ExecutionEvent) -> bool:
        req = self.request
        if req.kinds is not None and event.kind not in req.kinds:
            return False
        if req.correlation_ids is not None and event.correlation_id not in req.correlation_ids:
            return False
        # Always applied here, even where the server filtered too (docs/live-events.md). Like the
        # server's filter, it matches the checkpoint name, the step name or the checkpoint ID,
        # so a live watch and a watch of a completed execution deliver the same events.
        cp = req.checkpoint
        return cp is None or cp in (event.checkpoint_name, event.step_name, event.checkpoint_id)

    # -- connection life ------------------------------------------------------------------

    @property
    def reconnecting(self) -> bool:
        """True while the stream is down and the watcher is trying to get it back."""
        return self._outage_start is not None

    def _connected(self) -> None:
        self._streamed = True
        self._fresh = True
        if self._outage_start is not None:
            logger.info("kitaru: live-event stream of execution %s is back", self.exec_id)
        self._outage_start = None

    def prepared(self) -> None:
        """The call-time lookups succeeded: the outage clock starts afresh."""
        self._outage_start = None
        self._backoff.reset()

    def closed_without_end(self) -> str:
        """The failure of a stream that ended without an ``end`` frame (a disconnect)."""
        return "the stream closed before the execution ended"

    def transport_failure(self, exc: httpx.TransportError) -> str:
        """Describe a transport error (never its text: it may carry a URL with secrets)."""
        if isinstance(exc, httpx.ReadTimeout):
            return (
                f"stalled: no event or heartbeat for {self.options.heartbeat_timeout:g} s "
                "(ReadTimeout)"
            )
        return f"connection failed ({type(exc).__name__})"

    def failed(self, failure: str) -> float:
        """Record one failed attempt; returns the delay before the next, or raises.

        Raises:
            StreamDisconnectedError: ``reconnect=False`` and an open stream dropped, or the
                server stayed unreachable for ``max_outage`` seconds.
        """
        resume = f"; resume later with since={self.cursor!r}" if self.cursor else ""
        if self._streamed and not self.request.reconnect:
            raise StreamDisconnectedError(
                f"lost the live-event stream of execution {self.exec_id} from the kitaru "
                f"server at {self.server_url}: {failure} (reconnect=False){resume}",
                exec_id=self.exec_id,
                cursor=self.cursor,
            )
        now = time.monotonic()
        if self._outage_start is None:
            self._outage_start = now
            logger.info(
                "kitaru: live-event stream of execution %s interrupted (%s); reconnecting",
                self.exec_id,
                failure,
            )
        elapsed = now - self._outage_start
        max_outage = self.options.max_outage
        if elapsed >= max_outage:
            raise StreamDisconnectedError(
                f"lost the live-event stream of execution {self.exec_id}: the kitaru server at "
                f"{self.server_url} could not be reached for {max_outage:g} s "
                f"(last failure: {failure}){resume}",
                exec_id=self.exec_id,
                cursor=self.cursor,
            )
        # The last attempt lands right at the deadline, so a server that comes back within
        # max_outage is always found.
        return max(0.0, min(self._backoff.next(), max_outage - elapsed + 1e-3))
