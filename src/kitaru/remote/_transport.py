"""Server mode's live events: :class:`HttpTransport` posts them to a kitaru server.

Failure policy (``docs/architecture.md``, "Server mode"): the transport never raises into user
code. It raises to the publisher's sender thread, which keeps the batch queued and retries with
backoff. A server that answers 501 (streaming disabled) or refuses the token turns publishing
off for the process with one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import httpx

from kitaru import _wire
from kitaru._http import RETRYABLE_STATUSES, auth_headers, error_detail
from kitaru.events._transport import EncodedEvent, TransportDisabledError, TransportRejectedError
from kitaru.exceptions import KitaruBackendError
from kitaru.remote._store import auth_message, segment

__all__ = ["DEFAULT_EVENT_TIMEOUT", "HttpTransport"]

logger = logging.getLogger("kitaru")

DEFAULT_EVENT_TIMEOUT = 5.0
"""Seconds one live-event batch request may take (the sender thread absorbs it)."""

_MAX_REQUEST_BYTES = 1024 * 1024


class HttpTransport:
    """The live-event :class:`~kitaru.events._transport.Transport` of server mode.

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
                    _wire.path_events(segment(exec_id)), content=b"[" + b",".join(chunk) + b"]"
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
            raise TransportDisabledError(auth_message(self.url, status))
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
