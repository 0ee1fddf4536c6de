"""``KitaruClient().executions.snapshot(exec_id)``: the folded live state from the server.

A snapshot is a read: transient failures (connection refused while the server restarts, 502,
503, ...) are retried with backoff for :data:`SNAPSHOT_RETRY_SECONDS`, then reported as
:class:`~kitaru.KitaruBackendError`.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx

from kitaru import _wire
from kitaru._backoff import Backoff
from kitaru._http import RETRYABLE_STATUSES, auth_headers, error_detail
from kitaru._snapshot import ExecutionSnapshot
from kitaru.exceptions import (
    KitaruBackendError,
    KitaruFeatureNotAvailableError,
    KitaruStateError,
)

__all__ = ["SNAPSHOT_RETRY_SECONDS", "fetch_snapshot"]

SNAPSHOT_RETRY_SECONDS = 10.0
"""How long a snapshot request is retried on transient failures."""

_TIMEOUT = 30.0


def fetch_snapshot(
    server_url: str,
    token: str | None,
    exec_id: str,
    *,
    retry_seconds: float = SNAPSHOT_RETRY_SECONDS,
    transport: httpx.BaseTransport | None = None,
) -> ExecutionSnapshot:
    """Ask the server at ``server_url`` for the snapshot of ``exec_id``.

    Raises:
        KitaruStateError: The server has no execution with this ID.
        KitaruFeatureNotAvailableError: The server has streaming disabled, or predates
            snapshots.
        KitaruBackendError: Authorization failed, or the server did not answer in time.
    """
    base = server_url.rstrip("/")
    path = _wire.path_snapshot(quote(exec_id, safe=""))
    deadline = time.monotonic() + retry_seconds
    backoff = Backoff(0.1, 1.0)
    with httpx.Client(
        base_url=base, headers=auth_headers(token), timeout=_TIMEOUT, transport=transport
    ) as http:
        while True:
            try:
                resp = http.get(path)
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            else:
                if resp.status_code == 200:
                    return _parse(resp, base)
                failure = f"HTTP {resp.status_code}"
                if resp.status_code not in RETRYABLE_STATUSES:
                    raise _error(resp, base, exec_id)
            delay = backoff.next()
            if time.monotonic() + delay > deadline:
                raise KitaruBackendError(
                    f"snapshot of execution {exec_id}: the kitaru server at {base} did not "
                    f"answer within {retry_seconds:g} s of retries (last error: {failure})"
                )
            time.sleep(delay)


def _parse(resp: httpx.Response, base: str) -> ExecutionSnapshot:
    try:
        return ExecutionSnapshot.from_dict(resp.json())
    except (ValueError, TypeError, AttributeError) as exc:
        raise KitaruBackendError(
            f"the kitaru server at {base} answered a snapshot this client cannot read ({exc})"
        ) from None


def _error(resp: httpx.Response, base: str, exec_id: str) -> Exception:
    status = resp.status_code
    kind, detail = error_detail(resp)
    if status in (401, 403):
        return KitaruBackendError(
            f"authorization failed: the kitaru server at {base} refused the snapshot request "
            f"(HTTP {status}: {detail}); check KITARU_API_TOKEN"
        )
    if status == 501 or kind == _wire.ERROR_STREAMING_DISABLED:
        return KitaruFeatureNotAvailableError(
            f"live events are disabled on the kitaru server at {base}, so it has no "
            f"snapshots ({detail})"
        )
    if status == 404 and kind == _wire.ERROR_EXECUTION_UNKNOWN:
        return KitaruStateError(f"no execution with ID {exec_id!r} on the server at {base}")
    if status == 404:
        return KitaruFeatureNotAvailableError(
            f"the kitaru server at {base} has no snapshot endpoint (HTTP 404: {detail}); "
            "upgrade the server"
        )
    return KitaruBackendError(
        f"snapshot of execution {exec_id}: the kitaru server at {base} refused the request "
        f"(HTTP {status}: {detail})"
    )
