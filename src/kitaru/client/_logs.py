"""Reading and following runtime log lines (``KitaruClient().executions.logs``/``follow_logs``).

Server mode follows over the server's SSE logs stream: one ``log`` frame per line, its ``id:``
the line's cursor, ``end`` once the execution ended and every line was sent. A dropped
connection (a server restart) is resumed with ``Last-Event-ID`` set to the last cursor seen, so
no line is repeated or skipped. Local database mode polls the embedded store instead.
See ``docs/runtime-logs-and-metadata.md``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from httpx_sse import EventSource

from kitaru import _wire
from kitaru._backoff import Backoff
from kitaru._http import RETRYABLE_STATUSES, auth_headers, error_detail
from kitaru.exceptions import KitaruBackendError, KitaruStateError
from kitaru.store._logs import LogLine

if TYPE_CHECKING:
    from kitaru.client._client import KitaruClient

__all__ = ["follow_logs", "read_all_logs"]

_PAGE = 1000
_LOCAL_POLL = 0.2
DEFAULT_GIVE_UP = 60.0
"""Seconds a follow keeps reconnecting to an unreachable server before it fails."""


def _store_logs(client: KitaruClient) -> Any:
    store = client.store
    if not hasattr(store, "read_logs"):
        raise KitaruBackendError(f"the store {store!r} keeps no runtime logs")
    return store


def read_all_logs(
    client: KitaruClient,
    exec_id: str,
    *,
    checkpoint: str | None = None,
    correlation_id: str | None = None,
) -> list[LogLine]:
    """Every stored line of one execution (filtered), in store order."""
    store = _store_logs(client)
    out: list[LogLine] = []
    after: int | None = None
    while True:
        page: list[LogLine] = store.read_logs(
            exec_id, after=after, checkpoint=checkpoint, correlation_id=correlation_id, limit=_PAGE
        )
        out.extend(page)
        if len(page) < _PAGE:
            return out
        after = page[-1].cursor


def follow_logs(
    client: KitaruClient,
    exec_id: str,
    *,
    checkpoint: str | None = None,
    since: int | None = None,
    give_up_after: float = DEFAULT_GIVE_UP,
) -> Iterator[LogLine]:
    """Lines of one execution as they are stored; ends after the execution ended."""
    if client.is_local:
        return _follow_local(client, exec_id, checkpoint, since)
    return _follow_server(client, exec_id, checkpoint, since, give_up_after)


def _follow_local(
    client: KitaruClient, exec_id: str, checkpoint: str | None, since: int | None
) -> Iterator[LogLine]:
    store = _store_logs(client)
    after = since
    while True:
        record = store.get_execution(exec_id)
        if record is None:
            raise KitaruStateError(f"no execution with ID {exec_id!r}")
        ended = record.is_terminal
        while True:
            page: list[LogLine] = store.read_logs(
                exec_id, after=after, checkpoint=checkpoint, limit=_PAGE
            )
            yield from page
            if page:
                after = page[-1].cursor
            if len(page) < _PAGE:
                break
        if ended:
            return
        time.sleep(_LOCAL_POLL)


def _follow_server(
    client: KitaruClient,
    exec_id: str,
    checkpoint: str | None,
    since: int | None,
    give_up_after: float,
) -> Iterator[LogLine]:
    url = client.server_url
    assert url is not None
    path = _wire.path_logs_stream(exec_id.replace("/", "%2F"))
    params: dict[str, str] = {}
    if checkpoint is not None:
        params["checkpoint"] = checkpoint
    cursor: str | None = None if since is None else str(since)
    backoff = Backoff(0.1, 2.0)
    failing_since: float | None = None
    with httpx.Client(
        base_url=url,
        headers=auth_headers(client.api_token),
        timeout=httpx.Timeout(10.0, read=None),
    ) as http:
        while True:
            headers = {"Accept": "text/event-stream"}
            if cursor is not None:
                headers[_wire.HEADER_LAST_EVENT_ID] = cursor
            failure: str
            try:
                with http.stream("GET", path, params=params, headers=headers) as resp:
                    status = resp.status_code
                    if status != 200:
                        resp.read()
                        _kind, detail = error_detail(resp)
                        if status == 404:
                            raise KitaruStateError(f"no execution with ID {exec_id!r} ({detail})")
                        if status not in RETRYABLE_STATUSES:
                            raise KitaruBackendError(
                                f"follow logs of {exec_id}: the kitaru server at {url} refused "
                                f"(HTTP {status}: {detail})"
                            )
                        failure = f"HTTP {status}"
                    else:
                        failing_since = None
                        backoff.reset()
                        for sse in EventSource(resp).iter_sse():
                            if sse.event == _wire.LOG_EVENT:
                                line = LogLine.from_dict(orjson.loads(sse.data))
                                cursor = sse.id or cursor
                                yield line
                            elif sse.event == _wire.CONTROL_END:
                                return
                            elif sse.event == _wire.CONTROL_ERROR:
                                raise KitaruBackendError(
                                    f"follow logs of {exec_id}: the server reported {sse.data}"
                                )
                        failure = "the stream closed without end"
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            now = time.monotonic()
            if failing_since is None:
                failing_since = now
            elif now - failing_since > give_up_after:
                raise KitaruBackendError(
                    f"follow logs of {exec_id}: the kitaru server at {url} did not answer for "
                    f"{give_up_after:g} s (last error: {failure})"
                )
            time.sleep(backoff.next())
