"""Server mode's durable records: :class:`HttpStore` keeps them on a kitaru server over REST.

The endpoints are the ones named in :mod:`kitaru._wire` (described in ``docs/protocol.md``).

Failure policy (``docs/architecture.md``, "Server mode"): durable record writes (and the reads
a running flow depends on) are retried with capped, jittered backoff for
``KITARU_RECORD_RETRY_SECONDS`` (default 30 s), so a server restart does not fail a running
flow; after that they raise :class:`~kitaru.KitaruBackendError` naming the server and the
operation. A 4xx answer other than 408/425/429 is not retried.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from kitaru import _config, _wire
from kitaru._backoff import Backoff
from kitaru._http import RETRYABLE_STATUSES, auth_headers, error_detail
from kitaru.exceptions import KitaruBackendError
from kitaru.store._logs import LogLine
from kitaru.store._queries import ExecutionQuery, LogQuery, QueryingStore
from kitaru.store._records import CheckpointRecord, ExecutionRecord
from kitaru.store._values import StoredValue

__all__ = ["DEFAULT_RECORD_TIMEOUT", "HttpStore", "auth_message", "segment", "unreachable"]

logger = logging.getLogger("kitaru")

DEFAULT_RECORD_TIMEOUT = 10.0
"""Seconds one record request may take before it counts as failed (and is retried)."""

_HEARTBEAT_TIMEOUT = 2.0
_BACKOFF_START = 0.1
_BACKOFF_CAP = 2.0


def segment(value: str) -> str:
    """One URL path segment (IDs are opaque: never let one add a path level)."""
    return quote(value, safe="")


def auth_message(server: str, status: int) -> str:
    return (
        f"authorization failed: the kitaru server at {server} refused the request "
        f"(HTTP {status}); check KITARU_API_TOKEN"
    )


class HttpStore(QueryingStore):
    """The :class:`~kitaru.store.Store` of server mode: records live on a kitaru server.

    Safe to call from many threads at once (one pooled ``httpx.Client``).

    Args:
        url: The server's base URL.
        token: Bearer token sent with every request.
        retry_seconds: How long record writes are retried. Default: ``KITARU_RECORD_RETRY_SECONDS``.
        timeout: Seconds one request may take.
        transport: An ``httpx`` transport to use instead of the network (tests).
        fail_fast: For readers (``KitaruClient``, the CLI), not running flows: a refused
            connection or a request that times out raises at once, naming the server and
            the time it took, instead of being retried for ``retry_seconds``.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        retry_seconds: float | None = None,
        timeout: float = DEFAULT_RECORD_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        fail_fast: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_seconds = _config.record_retry_seconds(retry_seconds)
        self.fail_fast = fail_fast
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

    def _finish_execution(
        self, exec_id: str, status: str, output: StoredValue | None, error_type: str | None
    ) -> None:
        # Retried, like every record write (see the module docstring).
        body = {
            "status": status,
            "output": dataclasses.asdict(output) if output is not None else None,
            "error_type": error_type,
        }
        self._request(
            f"finish execution {exec_id}", "POST", _wire.path_finish(segment(exec_id)), json=body
        )

    def heartbeat(self, exec_id: str) -> bool:
        """Tell the server the execution's producer is alive (one short attempt, no retry).

        Returns:
            True when the server's answer says a cancel of the execution was requested.
        """
        resp = self._request(
            f"heartbeat of execution {exec_id}",
            "POST",
            _wire.path_heartbeat(segment(exec_id)),
            retry=False,
            timeout=_HEARTBEAT_TIMEOUT,
        )
        try:
            answer = resp.json() if resp is not None else None
        except ValueError:
            return False
        return isinstance(answer, dict) and answer.get("cancel_requested") is True

    def request_cancel(self, exec_id: str) -> None:
        """Ask the server to have the execution's producer stop (retried; idempotent)."""
        self._request(f"cancel execution {exec_id}", "POST", _wire.path_cancel(segment(exec_id)))

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        """The execution with its checkpoint records, or ``None`` when the server has none."""
        resp = self._request(
            f"get execution {exec_id}",
            "GET",
            _wire.path_execution(segment(exec_id)),
            none_on_404=True,
        )
        if resp is None:
            return None
        record = ExecutionRecord.from_dict(self._json(resp, "get execution"))
        # Exact IDs only: a record with another ID is not this execution.
        return record if record.exec_id == exec_id else None

    def _list_executions(self, query: ExecutionQuery) -> list[ExecutionRecord]:
        params: dict[str, str | int] = {"limit": query.limit}
        if query.flow_name is not None:
            params["flow"] = query.flow_name
        if query.status is not None:
            params["status"] = query.status
        if query.id_prefix:
            params["id_prefix"] = query.id_prefix
        if query.offset:
            params["offset"] = query.offset
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
            _wire.path_checkpoint(segment(record.exec_id), segment(record.checkpoint_id)),
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

    # -- runtime logs and flow-body metadata (docs/runtime-logs-and-metadata.md) ----------

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Post captured log lines (one attempt: the log shipper retries on its own)."""
        by_exec: dict[str, list[dict[str, Any]]] = {}
        for line in lines:
            body = line.to_dict()
            body.pop("cursor", None)
            by_exec.setdefault(line.exec_id, []).append(body)
        for exec_id, items in by_exec.items():
            self._request(
                f"store log lines of execution {exec_id}",
                "POST",
                _wire.path_logs(segment(exec_id)),
                json_list=items,
                retry=False,
            )

    def _read_logs(self, query: LogQuery) -> list[LogLine]:
        params: dict[str, str | int] = {"limit": query.limit}
        if query.after is not None:
            params["after"] = str(query.after)
        if query.checkpoint is not None:
            params["checkpoint"] = query.checkpoint
        if query.correlation_id is not None:
            params["correlation_id"] = query.correlation_id
        exec_id = query.exec_id
        op = f"read log lines of execution {exec_id}"
        resp = self._request(op, "GET", _wire.path_logs(segment(exec_id)), params=params)
        assert resp is not None
        body = self._json(resp, op)
        return [LogLine.from_dict(item) for item in body.get("lines") or []]

    def save_execution_metadata(
        self, exec_id: str, metadata: Mapping[str, Any], usage: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Store the flow-body metadata and usage of an execution on the server (retried)."""
        self._request(
            f"save metadata of execution {exec_id}",
            "PUT",
            _wire.path_execution_metadata(segment(exec_id)),
            json={"metadata": dict(metadata), "usage": [dict(u) for u in usage]},
        )

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
        json_list: list[Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        none_on_404: bool = False,
        retry: bool = True,
        timeout: float | None = None,
    ) -> httpx.Response | None:
        """Send one request, retrying transient failures within :attr:`retry_seconds`."""
        deadline = time.monotonic() + self.retry_seconds
        backoff = Backoff(_BACKOFF_START, _BACKOFF_CAP)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        body: Any = json if json_list is None else json_list
        while True:
            sent = time.monotonic()
            try:
                resp = self._client.request(method, path, json=body, params=params, **extra)
            except httpx.TransportError as exc:
                if self.fail_fast:
                    raise unreachable(self.url, exc, time.monotonic() - sent) from None
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
                    raise KitaruBackendError(f"{op}: {auth_message(self.url, status)}")
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
                    "kitaru: the server at %s is unavailable (%s: %s); the running flow "
                    "retries its record writes for up to %g s (KITARU_RECORD_RETRY_SECONDS)",
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


def unreachable(url: str, exc: httpx.TransportError, elapsed: float) -> KitaruBackendError:
    """The one-line error of a server that could not be reached.

    Never the exception's text, which may carry a URL with credentials.
    """
    if isinstance(exc, httpx.ConnectTimeout):
        return KitaruBackendError(
            f"cannot reach the kitaru server at {url}: no connection after {elapsed:.1f} s"
        )
    if isinstance(exc, httpx.TimeoutException):
        return KitaruBackendError(
            f"the kitaru server at {url} accepted the connection but did not answer "
            f"within {elapsed:.1f} s"
        )
    if isinstance(exc, httpx.ConnectError):
        cause = exc.__cause__ or exc.__context__
        refused = isinstance(cause, ConnectionRefusedError) or "refused" in str(exc).lower()
        reason = "connection refused" if refused else "cannot connect"
        return KitaruBackendError(f"cannot reach the kitaru server at {url}: {reason}")
    return KitaruBackendError(
        f"lost the connection to the kitaru server at {url} after {elapsed:.1f} s "
        f"({type(exc).__name__})"
    )
