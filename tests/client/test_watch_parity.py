"""The sync and async watchers against a slow model of the protocol, on generated streams.

The watchers read the server's own data frames on a fast path (``SSEReader.feed_split``,
``WatchSession.on_frame``) and everything else through the general SSE parser. The model here
uses neither: it parses with httpx-sse (the reference reader) and builds every event with
``ExecutionEvent.from_wire``. On streams mixing server frames, foreign frames, control frames
and comments, cut into byte pieces anywhere (inside a frame, a CRLF or a UTF-8 character),
both watchers must yield the model's events, with the model's cursor after each one.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import ssl
from typing import Any

import httpx
import orjson
import pytest
from _client_fake import EXEC_ID, URL, FakeServer, end_frame, event_frame, frame, sse_response
from httpx_sse import EventSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitaru import ExecutionEvent, KitaruClient

FAST = {"backoff_initial": 0.001, "backoff_max": 0.01}
Seen = list[tuple[dict[str, Any], str | None]]


def model(body: bytes, kinds: list[str] | None) -> tuple[Seen, str | None]:
    """The events (wire form) and the cursor after each, as the protocol defines them."""
    resp = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    cursor: str | None = None
    seen: Seen = []
    status = None
    for sse in EventSource(resp).iter_sse():
        if sse.event in ("cursor", "gap", "end", "error"):
            if sse.event == "end":
                status = orjson.loads(sse.data)["status"]
                break
            if sse.event == "cursor" and sse.id:
                cursor = sse.id
            continue
        if not sse.data:
            continue
        data = orjson.loads(sse.data)
        data.setdefault("exec_id", EXEC_ID)
        data.setdefault("kind", sse.event)
        event = ExecutionEvent.from_wire(data, sse.id or None)
        if event.cursor:
            cursor = event.cursor
        if kinds is None or event.kind in kinds:
            seen.append((event.to_wire(), cursor))
    return seen, status


def _pieces(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points) if b > a]


def _watchers(body: bytes, cuts: list[int], kinds: list[str] | None) -> tuple[Seen, Seen]:
    def server() -> FakeServer:
        return FakeServer([sse_response(_pieces(body, cuts))], status="completed")

    client = KitaruClient(URL)
    options: dict[str, Any] = {**FAST, "reconnect": False}
    if kinds is not None:
        options["kinds"] = kinds
    sync_seen: Seen = []
    with client.executions.events(EXEC_ID, transport=server().transport, **options) as w:
        for event in w:
            sync_seen.append((event.to_wire(), w.cursor))
        assert w.final_status == "completed"

    async def run() -> Seen:
        seen: Seen = []
        watcher = client.executions.aevents(EXEC_ID, transport=server().transport, **options)
        async with watcher as w:
            async for event in w:
                seen.append((event.to_wire(), w.cursor))
            assert w.final_status == "completed"
        return seen

    return sync_seen, asyncio.run(run())


_KINDS = ["kitaru.checkpoint.progress", "kitaru.checkpoint.started", "custom"]
_block = st.one_of(
    st.tuples(st.integers(0, 50), st.sampled_from(_KINDS), st.booleans()).map(
        lambda t: event_frame(t[0], kind=t[1], crlf=t[2])
    ),
    st.integers(0, 50).map(lambda i: frame(id=f"k{i}", event="cursor", data={})),
    st.sampled_from(
        [
            b": ping\n\n",
            b"retry: 3000\n\n",
            b"\n\n",
            frame(event="custom", data={"index": 7, "payload": {"t": "\u00e9\u2713"}}),
            frame(id="f1", data={"kind": "custom", "index": 2}),  # no event: line
            frame(id="", event="custom", data={"index": 3, "cursor": "in-data"}),
            b'id: m1\nevent: custom\ndata: {"index": 4,\ndata: "payload": {}}\n\n',
            b'id: x1\nevent: custom\nfoo: bar\ndata: {"index": 5}\n\n',
            b"id: e1\nevent: custom\ndata: \n\n",  # empty data: no event
            '{"index": 6, "payload": {"s": "\u2713"}}'.join(
                ["id: u1\nevent: custom\ndata: ", "\n\n"]
            ).encode(),
        ]
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks=st.lists(_block, max_size=10),
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
    kinds=st.one_of(st.none(), st.just(["custom"]), st.just(_KINDS[:2])),
)
def test_sync_and_async_watchers_follow_the_model(
    blocks: list[bytes], cuts: list[int], kinds: list[str] | None
) -> None:
    body = b"".join(blocks) + end_frame("completed") + event_frame(99)
    expected, status = model(body, kinds)
    assert status == "completed"
    sync_seen, async_seen = _watchers(body, cuts, kinds)
    assert sync_seen == expected
    assert async_seen == expected


def test_a_chunk_that_ends_inside_a_utf8_character_and_at_the_streams_end() -> None:
    event = event_frame(1).replace(b'"event 1"', '"\u00e9v\u2713nt"'.encode())
    body = event + b"id: c2\nevent: custom\ndata: {}\n\n" + end_frame("completed")
    at = event.index("\u2713".encode()) + 1  # inside the three bytes of one character
    sync_seen, async_seen = _watchers(body, [at, len(body) - 1], None)
    assert [e["payload"].get("message") for e, _ in sync_seen] == ["\u00e9v\u2713nt", None]
    assert [c for _, c in sync_seen] == ["c1", "c2"]
    assert async_seen == sync_seen


def test_a_compressed_stream_is_decoded_before_parsing() -> None:
    body = b"".join(event_frame(i) for i in range(3)) + end_frame("completed")
    packed = gzip.compress(body)
    resp = httpx.Response(
        200,
        headers={"content-type": "text/event-stream", "content-encoding": "gzip"},
        stream=httpx.ByteStream(packed),
    )
    server = FakeServer([resp], status="completed")
    events = list(KitaruClient(URL).executions.events(EXEC_ID, transport=server.transport, **FAST))
    assert [e.index for e in events] == [0, 1, 2]


@pytest.mark.parametrize("charset", ["utf-8", "latin-1"])
def test_the_declared_charset_decodes_the_stream(charset: str) -> None:
    text = event_frame(1).decode().replace("event 1", "caf\u00e9") + end_frame().decode()
    resp = httpx.Response(
        200,
        headers={"content-type": f"text/event-stream; charset={charset}"},
        stream=httpx.ByteStream(text.encode(charset)),
    )
    server = FakeServer([resp], status="completed")
    events = list(KitaruClient(URL).executions.events(EXEC_ID, transport=server.transport, **FAST))
    assert [e.message for e in events] == ["caf\u00e9"]


def test_watchers_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the CA bundle is the costliest part of a new HTTP client: once per process."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    client = KitaruClient("https://kitaru.invalid")
    watchers = [client.executions.aevents(EXEC_ID) for _ in range(3)]
    assert len(loads) <= 1
    for watcher in watchers:
        asyncio.run(watcher.aclose())
