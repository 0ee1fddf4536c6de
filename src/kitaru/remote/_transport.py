"""Server mode's live events: :class:`HttpTransport` posts them to a kitaru server.

Failure policy (``docs/architecture.md``, "Server mode"): the transport never raises into user
code. It raises to the publisher's sender thread, which keeps the batch queued and retries with
backoff. A server that answers 501 (streaming disabled) or refuses the token turns publishing
off for the process with one warning.
"""

from __future__ import annotations

import logging
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from operator import attrgetter
from urllib.parse import urlsplit

import httpx
import orjson

from kitaru import _wire
from kitaru._http import RETRYABLE_STATUSES, auth_headers, error_detail
from kitaru.events._transport import EncodedEvent, TransportDisabledError, TransportRejectedError
from kitaru.exceptions import KitaruBackendError
from kitaru.remote._post import PostConnection
from kitaru.remote._store import auth_message, segment

__all__ = ["DEFAULT_EVENT_TIMEOUT", "HttpTransport"]

logger = logging.getLogger("kitaru")

DEFAULT_EVENT_TIMEOUT = 5.0
"""Seconds one live-event batch request may take (the sender thread absorbs it)."""

_MAX_REQUEST_BYTES = 1024 * 1024
_JSON = attrgetter("json")
_EXEC_ID = attrgetter("exec_id")


class HttpTransport:
    """The live-event :class:`~kitaru.events._transport.Transport` of server mode.

    Called only from the publisher's sender thread. A batch goes out as JSON arrays of at most
    about 1 MiB, each one request to ``POST /api/v1/events`` carrying the events of every
    execution in it, answered per execution (``docs/protocol.md``, "Ingest of several
    executions"). A server without that route (it answers 404 or 405, or an answer this
    transport does not understand) gets one request per execution on
    ``POST /api/v1/executions/{exec_id}/events`` from then on. The server stores each event
    once per ``(exec_id, correlation_id, index)``, so retried batches are harmless.

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
        # The batches go over one plain kept-alive connection where that means the same as
        # the client above (kitaru/remote/_post.py says why); the client serves the rest.
        self._conn: PostConnection | None = None
        if transport is None and _direct(self.url):
            try:
                self._conn = PostConnection(
                    self.url,
                    headers,
                    timeout=timeout,
                    connect_timeout=min(timeout, 2.0),
                    tls=httpx.create_ssl_context() if self.url.startswith("https:") else None,
                )
            except ValueError:  # a URL this parser refuses: the httpx client posts
                logger.debug("kitaru: live events go through httpx", exc_info=True)
        self._rejected: set[int] = set()
        self._multi = True

    def __repr__(self) -> str:
        return f"<HttpTransport {self.url}>"

    @property
    def multi_execution(self) -> bool:
        """False once the server turned out not to have the multi-execution route."""
        return self._multi

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        """Post ``batch``; raise to have it retried, or :class:`TransportDisabledError`."""
        if self._multi:
            if self._send_many(batch):
                return
            self._multi = False
            logger.info(
                "kitaru: the server at %s has no multi-execution ingest; posting live events "
                "per execution",
                self.url,
            )
        self._send_each(batch)

    def shutdown(self) -> None:
        """Close the connection pool."""
        if self._conn is not None:
            self._conn.close()
        self._client.close()

    def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (a JSON array) to ``path``: the answer's status and body."""
        if self._conn is not None:
            return self._conn.post(path, body)
        resp = self._client.post(path, content=body)
        return resp.status_code, resp.content

    def _send_many(self, batch: Sequence[EncodedEvent]) -> bool:
        """Post ``batch`` to the multi-execution route; False when the server lacks it."""
        rejected = 0
        reason = ""
        # The events' JSON, sizes and execution IDs taken by C-level loops (no Python statement
        # per event): this runs on the sender between the server's answer and the next request,
        # where the server waits (docs/performance.md).
        events = list(batch)
        jsons = list(map(_JSON, events))
        for start, end in _spans(list(map(len, jsons)), _MAX_REQUEST_BYTES):
            chunk = events[start:end]
            status, content = self._post(
                _wire.PATH_EVENTS, b"[" + b",".join(jsons[start:end]) + b"]"
            )
            if status in (404, 405):
                return False
            if not 200 <= status < 300:
                # Refused as a whole (malformed, too large, streaming off, token, backend).
                refusal = self._check(status, content, "(several)", len(chunk))
                if refusal is not None:
                    rejected += len(chunk)
                    reason = refusal
                continue
            answers = _answers(content)
            if answers is None:
                return False
            counts = Counter(map(_EXEC_ID, chunk))
            for exec_id, count in counts.items():
                answer = answers.get(exec_id)
                if not isinstance(answer, dict):
                    return False
                error = answer.get("error")
                if error is None:
                    continue
                if not isinstance(error, dict) or type(error.get("status")) is not int:
                    return False
                kind, message = error.get("kind"), error.get("message")
                refusal = self._refusal(
                    error["status"],
                    kind if isinstance(kind, str) else None,
                    message if isinstance(message, str) else "",
                    exec_id,
                    count,
                )
                if refusal is not None:
                    rejected += count
                    reason = refusal
        if rejected:
            raise TransportRejectedError(rejected, reason)
        return True

    def _send_each(self, batch: Sequence[EncodedEvent]) -> None:
        """Post ``batch`` one request per execution (servers without the multi route)."""
        groups: dict[str, list[bytes]] = {}
        for event in batch:
            groups.setdefault(event.exec_id, []).append(event.json)
        rejected = 0
        reason = ""
        for exec_id, items in groups.items():
            for start, end in _spans(list(map(len, items)), _MAX_REQUEST_BYTES):
                chunk = items[start:end]
                status, content = self._post(
                    _wire.path_events(segment(exec_id)), b"[" + b",".join(chunk) + b"]"
                )
                refusal = self._check(status, content, exec_id, len(chunk))
                if refusal is not None:
                    rejected += len(chunk)
                    reason = refusal
        if rejected:
            # Reported once the whole batch was tried, so a retry of a later chunk never
            # counts the same refusal twice.
            raise TransportRejectedError(rejected, reason)

    def _check(self, status: int, content: bytes, exec_id: str, count: int) -> str | None:
        """``None`` when the chunk was stored, the refusal when it was refused for good."""
        if 200 <= status < 300:
            return None
        kind, detail = error_detail(httpx.Response(status, content=content))
        return self._refusal(status, kind, detail, exec_id, count)

    def _refusal(self, status: int, kind: str | None, detail: str, exec_id: str, count: int) -> str:
        """The refusal of ``count`` events for good, or raise for the publisher to act on."""
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


def _direct(url: str) -> bool:
    """Whether a plain connection to ``url`` means what ``httpx``'s default client does.

    Only a plain ``http``/``https`` URL without credentials, query or fragment, and no proxy
    for its scheme in the environment (``httpx`` would use it; ``NO_PROXY`` is not weighed
    here: any proxy setting keeps the ``httpx`` client).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.username is not None or parts.query or parts.fragment:
        return False
    proxies = urllib.request.getproxies()
    return parts.scheme not in proxies and "all" not in proxies


def _answers(content: bytes) -> dict[str, object] | None:
    """The per-execution answers of the multi-execution route, or ``None`` if not understood."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    answers = body.get("executions") if isinstance(body, dict) else None
    return answers if isinstance(answers, dict) else None


def _spans(sizes: list[int], max_bytes: int) -> Iterator[tuple[int, int]]:
    """Runs ``(start, end)`` of items whose JSON array stays within ``max_bytes``.

    ``sizes`` are the items' JSON sizes; an item larger than ``max_bytes`` is a run of its
    own. One run at once when everything fits, the usual case.
    """
    if sum(sizes) + len(sizes) + 1 <= max_bytes:
        if sizes:
            yield 0, len(sizes)
        return
    start = 0
    size = 1  # "[" so far; each item adds its bytes and the "," or "]" after it
    for i, n in enumerate(sizes):
        if i > start and size + n + 1 > max_bytes:
            yield start, i
            start, size = i, 1
        size += n + 1
    if start < len(sizes):
        yield start, len(sizes)
