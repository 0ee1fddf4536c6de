"""Server mode: durable records and live events over HTTP.

:class:`HttpStore` keeps records on the server over REST, :class:`HttpTransport` posts live
events to it, and :func:`build_server_runtime` wires both into a runtime.

The endpoints are the ones named in :mod:`kitaru._wire` (described in ``docs/protocol.md``).

Failure policy (CONTRACT §4.21):

* Durable record writes (and the reads a running flow depends on) are retried with capped,
  jittered backoff for ``KITARU_RECORD_RETRY_SECONDS`` (default 30 s), so a server restart does
  not fail a running flow; after that they raise :class:`~kitaru.KitaruBackendError` naming the
  server and the operation. A 4xx answer other than 408/425/429 is not retried.
* The live-event transport never raises into user code: it raises to the publisher's sender
  thread, which keeps the batch queued and retries with backoff. A server that answers 501
  (streaming disabled) turns publishing off for the process with one warning.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from kitaru import _config, _wire
from kitaru.client._http import RETRYABLE_STATUSES, Backoff, auth_headers, error_detail
from kitaru.events._transport import (
    EncodedEvent,
    TransportDisabledError,
    TransportRejectedError,
)
from kitaru.exceptions import KitaruBackendError
from kitaru.runtime._runtime import Runtime
from kitaru.store._records import CheckpointRecord, ExecutionRecord
from kitaru.store._values import StoredValue

__all__ = ["HttpStore", "HttpTransport", "build_server_runtime"]

logger = logging.getLogger("kitaru")

DEFAULT_RECORD_TIMEOUT = 10.0
"""Seconds one record request may take before it counts as failed (and is retried)."""

DEFAULT_EVENT_TIMEOUT = 5.0
"""Seconds one live-event batch request may take (the sender thread absorbs it)."""

_HEARTBEAT_TIMEOUT = 2.0
_MAX_REQUEST_BYTES = 1024 * 1024
_BACKOFF_START = 0.1
_BACKOFF_CAP = 2.0


def _seg(value: str) -> str:
    """One URL path segment (IDs are opaque: never let one add a path level)."""
    return quote(value, safe="")


def _auth_message(server: str, status: int) -> str:
    return (
        f"authorization failed: the kitaru server at {server} refused the request "
        f"(HTTP {status}); check KITARU_API_TOKEN"
    )


class HttpStore:
    """The :class:`~kitaru.store.Store` of server mode: records live on a kitaru server.

    Safe to call from many threads at once (one pooled ``httpx.Client``).

    Args:
        url: The server's base URL.
        token: Bearer token sent with every request.
        retry_seconds: How long record writes are retried. Default: ``KITARU_RECORD_RETRY_SECONDS``.
        timeout: Seconds one request may take.
        transport: An ``httpx`` transport to use instead of the network (tests).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        retry_seconds: float | None = None,
        timeout: float = DEFAULT_RECORD_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_seconds = _config.record_retry_seconds(retry_seconds)
        self._client = httpx.Client(
            base_url=self.url,
            headers=auth_headers(token),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,
        )
        self._warned = threading.Event()

    def __repr__(self) -> str:
        return f"<HttpStore {self.url}>"

    # -- Store protocol -------------------------------------------------------------------

    def create_execution(self, record: ExecutionRecord) -> None:
        """Record a new, running execution on the server (retried; idempotent)."""
        body = record.to_dict()
        body.pop("checkpoints", None)
        self._request("create execution", "POST", _wire.PATH_EXECUTIONS, json=body)

    def finish_execution(
        self,
        exec_id: str,
        status: str,
        *,
        output: StoredValue | None = None,
        error_type: str | None = None,
    ) -> None:
        """Mark an execution terminal on the server (retried)."""
        body = {
            "status": status,
            "output": dataclasses.asdict(output) if output is not None else None,
            "error_type": error_type,
        }
        self._request(
            f"finish execution {exec_id}", "POST", _wire.path_finish(_seg(exec_id)), json=body
        )

    def heartbeat(self, exec_id: str) -> None:
        """Tell the server the execution's producer is alive (one short attempt, no retry)."""
        self._request(
            f"heartbeat of execution {exec_id}",
            "POST",
            _wire.path_heartbeat(_seg(exec_id)),
            retry=False,
            timeout=_HEARTBEAT_TIMEOUT,
        )

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        """The execution with its checkpoint records, or ``None`` when the server has none."""
        resp = self._request(
            f"get execution {exec_id}",
            "GET",
            _wire.path_execution(_seg(exec_id)),
            none_on_404=True,
        )
        if resp is None:
            return None
        record = ExecutionRecord.from_dict(self._json(resp, "get execution"))
        # Exact IDs only: a record with another ID is not this execution.
        return record if record.exec_id == exec_id else None

    def list_executions(
        self, *, flow_name: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[ExecutionRecord]:
        """Executions, newest first (without checkpoint records)."""
        params: dict[str, str | int] = {"limit": limit}
        if flow_name is not None:
            params["flow"] = flow_name
        if status is not None:
            params["status"] = status
        resp = self._request("list executions", "GET", _wire.PATH_EXECUTIONS, params=params)
        assert resp is not None
        rows = self._json(resp, "list executions")
        if not isinstance(rows, list):
            raise KitaruBackendError(
                f"list executions: the kitaru server at {self.url} answered with "
                f"{type(rows).__name__}, expected a JSON list"
            )
        return [ExecutionRecord.from_dict(r) for r in rows]

    def save_checkpoint(self, record: CheckpointRecord) -> None:
        """Create or replace a checkpoint record on the server (retried; idempotent)."""
        self._request(
            f"save checkpoint {record.step_name!r} of execution {record.exec_id}",
            "PUT",
            _wire.path_checkpoint(_seg(record.exec_id), _seg(record.checkpoint_id)),
            json=record.to_dict(),
        )

    def find_cached(self, cache_key: str) -> CheckpointRecord | None:
        """The newest completed checkpoint record with this cache key, or ``None``."""
        resp = self._request(
            "look up a cached checkpoint",
            "GET",
            _wire.path_cached_checkpoint(),
            params={"key": cache_key},
            none_on_404=True,
        )
        if resp is None:
            return None
        return CheckpointRecord.from_dict(self._json(resp, "look up a cached checkpoint"))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # -- internals ------------------------------------------------------------------------

    def _json(self, resp: httpx.Response, op: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise KitaruBackendError(
                f"{op}: the kitaru server at {self.url} answered HTTP {resp.status_code} "
                "without valid JSON"
            ) from None

    def _request(
        self,
        op: str,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        none_on_404: bool = False,
        retry: bool = True,
        timeout: float | None = None,
    ) -> httpx.Response | None:
        """Send one request, retrying transient failures within :attr:`retry_seconds`."""
        deadline = time.monotonic() + self.retry_seconds
        backoff = Backoff(_BACKOFF_START, _BACKOFF_CAP)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        while True:
            try:
                resp = self._client.request(method, path, json=json, params=params, **extra)
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    self._recovered(op)
                    return resp
                if status == 404 and none_on_404:
                    self._recovered(op)
                    return None
                if status in (401, 403):
                    raise KitaruBackendError(f"{op}: {_auth_message(self.url, status)}")
                if status not in RETRYABLE_STATUSES:
                    _, detail = error_detail(resp)
                    raise KitaruBackendError(
                        f"{op}: the kitaru server at {self.url} refused the request "
                        f"(HTTP {status}: {detail})"
                    )
                failure = f"HTTP {status}"
            delay = backoff.next()
            if not retry or time.monotonic() + delay > deadline:
                within = f" within {self.retry_seconds:g} s of retries" if retry else ""
                raise KitaruBackendError(
                    f"{op}: the kitaru server at {self.url} did not answer{within} "
                    f"(last error: {failure})"
                )
            if not self._warned.is_set():
                self._warned.set()
                logger.warning(
                    "kitaru: the server at %s is unavailable (%s: %s); retrying record writes "
                    "for up to %g s",
                    self.url,
                    op,
                    failure,
                    self.retry_seconds,
                )
            time.sleep(delay)

    def _recovered(self, op: str) -> None:
        if self._warned.is_set():
            self._warned.clear()
            logger.info("kitaru: the server at %s answers again (%s)", self.url, op)


class HttpTransport:
    """The live-event :class:`~kitaru.events.Transport` of server mode.

    Called only from the publisher's sender thread. A batch is grouped by execution and posted
    as JSON arrays (at most about 1 MiB per request); the server stores each event once per
    ``(exec_id, correlation_id, index)``, so retried batches are harmless.

    Args:
        url: The server's base URL.
        token: Bearer token sent with every request.
        timeout: Seconds one request may take (short: a slow server must not hold the queue).
        transport: An ``httpx`` transport to use instead of the network (tests).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_EVENT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = auth_headers(token)
        headers["Content-Type"] = "application/json"
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            transport=transport,
        )
        self._rejected: set[int] = set()

    def __repr__(self) -> str:
        return f"<HttpTransport {self.url}>"

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        """Post ``batch``; raise to have it retried, or :class:`TransportDisabledError`."""
        groups: dict[str, list[bytes]] = {}
        for event in batch:
            groups.setdefault(str(event.data["exec_id"]), []).append(event.json)
        rejected = 0
        reason = ""
        for exec_id, items in groups.items():
            for chunk in _chunks(items, _MAX_REQUEST_BYTES):
                resp = self._client.post(
                    _wire.path_events(_seg(exec_id)), content=b"[" + b",".join(chunk) + b"]"
                )
                refusal = self._check(resp, exec_id, len(chunk))
                if refusal is not None:
                    rejected += len(chunk)
                    reason = refusal
        if rejected:
            # Reported once the whole batch was tried, so a retry of a later chunk never
            # counts the same refusal twice.
            raise TransportRejectedError(rejected, reason)

    def shutdown(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _check(self, resp: httpx.Response, exec_id: str, count: int) -> str | None:
        """``None`` when the chunk was stored, the refusal when it was refused for good."""
        status = resp.status_code
        if 200 <= status < 300:
            return None
        kind, detail = error_detail(resp)
        if status == 501:
            raise TransportDisabledError(
                f"the kitaru server at {self.url} has streaming disabled ({detail})"
            )
        if status in (401, 403):
            raise TransportDisabledError(_auth_message(self.url, status))
        if status in RETRYABLE_STATUSES or status >= 500:
            # The publisher keeps the batch and retries with backoff.
            raise KitaruBackendError(f"the kitaru server at {self.url} answered HTTP {status}")
        # Any other 4xx is a permanent refusal of this chunk: retrying would block every
        # later event behind it, so it is reported as rejected (one warning per status code).
        if status not in self._rejected:
            self._rejected.add(status)
            logger.warning(
                "kitaru: the server at %s refused %d live events of execution %s (HTTP %d: %s); "
                "they are dropped",
                self.url,
                count,
                exec_id,
                status,
                kind or detail,
            )
        return f"HTTP {status}: {kind or detail}"


def _chunks(items: list[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 2
    for item in items:
        if chunk and size + len(item) + 1 > max_bytes:
            yield chunk
            chunk, size = [], 2
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield chunk


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
