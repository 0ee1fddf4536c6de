"""A scripted fake kitaru server on ``httpx.MockTransport`` for watcher and store tests."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson

EXEC_ID = "3f1c2a9e-0d7b-4c6e-9a51-2b8e7f4d6c10"
URL = "http://kitaru.test"


def frame(
    *,
    event: str | None = None,
    data: Any = None,
    id: str | None = None,
    retry: int | None = None,
    crlf: bool = False,
) -> bytes:
    """One SSE frame."""
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    if data is not None:
        lines.append("data: " + (data if isinstance(data, str) else orjson.dumps(data).decode()))
    sep = "\r\n" if crlf else "\n"
    return (sep.join(lines) + sep + sep).encode()


def event_frame(
    n: int,
    *,
    kind: str = "kitaru.checkpoint.progress",
    checkpoint: str = "build_report",
    exec_id: str = EXEC_ID,
    crlf: bool = False,
) -> bytes:
    """A data frame for the ``n``-th event (cursor ``c<n>``)."""
    corr = f"kitaru.checkpoint:{checkpoint}:{'a' * 32}"
    data = {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr,
        "index": n,
        "checkpoint_id": "cp-1",
        "checkpoint_name": checkpoint,
        "step_name": checkpoint,
        "payload": {"kitaru": {"source": "kitaru"}, "message": f"event {n}"},
        "cursor": f"c{n}",
    }
    return frame(id=f"c{n}", event=kind, data=data, crlf=crlf)


PING = b": ping\n\n"


def end_frame(status: str = "completed") -> bytes:
    return frame(event="end", data={"status": status})


def split_every(data: bytes, size: int) -> list[bytes]:
    """Cut ``data`` into chunks of ``size`` bytes (frames end up split across chunks)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class ScriptedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Yields its chunks, then optionally raises (a dropped or stalled connection)."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.closed = False
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        if self.error is not None:
            raise self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


StreamScript = Callable[[int, httpx.Request], httpx.Response]


def sse_response(chunks: list[bytes], error: Exception | None = None) -> httpx.Response:
    stream = ScriptedStream(chunks, error)
    resp = httpx.Response(
        200, headers={"content-type": "text/event-stream; charset=utf-8"}, stream=stream
    )
    resp.extensions["scripted"] = stream
    return resp


def json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


class FakeServer:
    """Routes ``/info``, the execution lookup and the stream; records every request."""

    def __init__(
        self,
        streams: list[httpx.Response | Exception] | StreamScript | None = None,
        *,
        status: str = "running",
        streaming: bool = True,
        token: str | None = None,
    ) -> None:
        self.streams = streams if streams is not None else []
        self.executions = {EXEC_ID: {"exec_id": EXEC_ID, "flow_name": "f", "status": status}}
        self.streaming = streaming
        self.token = token
        self.requests: list[httpx.Request] = []
        self.stream_requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.lock = threading.Lock()
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return json_response(401, {"detail": "missing or wrong token"})
        path = request.url.path
        if path == "/api/v1/info":
            return json_response(200, {"version": "test", "streaming": self.streaming})
        if path.endswith("/events/stream"):
            with self.lock:
                attempt = len(self.stream_requests)
                self.stream_requests.append(request)
            if callable(self.streams):
                resp = self.streams(attempt, request)
            else:
                if attempt >= len(self.streams):
                    raise AssertionError(f"unexpected stream request #{attempt + 1}")
                item = self.streams[attempt]
                if isinstance(item, Exception):
                    raise item
                resp = item
            self.responses.append(resp)
            return resp
        if path.startswith("/api/v1/executions/"):
            exec_id = path.rsplit("/", 1)[1]
            record = self.executions.get(exec_id)
            if record is None:
                return json_response(404, {"detail": f"no execution {exec_id}"})
            return json_response(200, record)
        return json_response(404, {"detail": "not found"})

    def stream_of(self, n: int) -> ScriptedStream:
        return self.responses[n].extensions["scripted"]

    def last_event_ids(self) -> list[str | None]:
        return [r.headers.get("last-event-id") for r in self.stream_requests]
