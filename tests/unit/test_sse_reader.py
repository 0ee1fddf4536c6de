"""The watcher's SSE reader (``kitaru.events._frames.SSEReader``) against the reference parser.

The reader cuts the server's own data frames (``encode_frame``) out whole and hands every other
block to its general parser. Whatever the stream, the frames it reports must be exactly those
of httpx-sse (the reference reader the watcher used before), on the same text pieces: line
endings of every kind, pieces split anywhere (inside a CRLF, a UTF-8 character, a field name),
comments, ``retry:``, multi-line data, unknown fields, ids with NUL, blank-line runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitaru import ExecutionEvent
from kitaru.events import _codec, _frames
from kitaru.events._frames import SSEFrame, SSEReader, encode_frame, iter_frame_lists, iter_frames
from kitaru.events._models import server_event

Frame = tuple[str, str, str, int | None]


def _response(chunks: list[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


def reference(chunks: list[bytes]) -> list[Frame]:
    """The frames httpx-sse reports for a stream arriving in these byte pieces."""
    return [(s.event, s.data, s.id, s.retry) for s in EventSource(_response(chunks)).iter_sse()]


def ours(chunks: list[bytes]) -> list[Frame]:
    """The frames the watcher's reader reports for the same pieces (same text decoding)."""
    return [(f.event, f.data, f.id, f.retry) for f in iter_frames(_response(chunks).iter_text())]


def watcher_view(chunks: list[bytes]) -> list[Frame]:
    """The frames the watchers read: the byte pieces as they come, decoded by the reader's
    loop, the server's data frames as ``(event, data, id)`` tuples (``retry`` None)."""
    out: list[Frame] = []
    for frames in iter_frame_lists(chunks):
        for f in frames:
            if isinstance(f, SSEFrame):
                out.append((f.event, f.data, f.id, f.retry))
            else:
                assert f[0] and f[0] not in _frames.CONTROL_EVENTS
                out.append((f[0], f[1], f[2], None))
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        if p > last:
            out.append(data[last:p])
            last = p
    out.append(data[last:])
    return [c for c in out if c]


def _server_frame(i: int, kind: str = "kitaru.checkpoint.progress") -> bytes:
    body = orjson.dumps({"exec_id": "e", "kind": kind, "index": i, "payload": {"x": "é✓"}})
    return encode_frame(f"{i:012d}", kind, body)


# -- generated streams ---------------------------------------------------------------------------

_text = st.lists(
    st.sampled_from([*'abc :{}"0123é✓\0\t-', "id", "data", "event", "retry"]), max_size=8
).map("".join)
_field_line = st.one_of(
    st.tuples(st.sampled_from(["id", "event", "data", "retry", "foo", ""]), _text).map(
        lambda t: f"{t[0]}: {t[1]}"
    ),
    st.tuples(st.sampled_from(["id", "event", "data", "retry"]), _text).map(
        lambda t: f"{t[0]}:{t[1]}"  # no space after the colon
    ),
    st.sampled_from(
        ["data", "id", "event", ":", ": ping", ":comment", "retry: 2000", "retry: -1", "retry: 1x"]
    ),
    st.just(""),  # a blank line inside: dispatches
)
_block = st.one_of(
    st.integers(0, 10**6).map(lambda i: ("server", _server_frame(i).decode())),
    st.lists(_field_line, min_size=0, max_size=5).map(lambda ls: ("lines", "\n".join(ls))),
    st.sampled_from(
        [
            ("raw", 'event: end\ndata: {"status":"completed"}\n\n'),
            ("raw", "id: 7\nevent: cursor\ndata: {}\n\n"),
            ("raw", ":\n\n"),
            ("raw", "retry: 2000\n\n"),
            ("raw", "\n\n\n"),
            ("raw", "id: 1\nevent: k\ndata: a\ndata: b\n\n"),  # multi-line data
            ("raw", "id: 1\nevent: k\ndata: x\nfoo: y\n\n"),  # unknown field after data
            ("raw", "id: a\0b\nevent: k\ndata: {}\n\n"),  # NUL: the id is ignored
            ("raw", "id: 9\nevent: \ndata: {}\n\n"),  # empty event name
            ("raw", "id: 9\nevent: k\ndata: \n\n"),  # empty data
            ("raw", "id:  2\nevent: k\ndata:  {}\n\n"),  # two spaces: one stays
            ("raw", "data: only\n\n"),
            ("raw", "\ufeffid: 3\nevent: k\ndata: {}\n\n"),  # BOM: an unknown field name
        ]
    ),
)


def _join(blocks: list[tuple[str, str]], newlines: list[str]) -> bytes:
    """The blocks as one stream; ``lines`` blocks end with a blank line, lines end in
    ``newlines`` (cycled), so CR, LF and CRLF mix within a stream."""
    text = "".join(b if kind != "lines" else b + "\n\n" for kind, b in blocks)
    if newlines != ["\n"]:
        lines = text.split("\n")
        text = "".join(
            line + (newlines[i % len(newlines)] if i < len(lines) - 1 else "")
            for i, line in enumerate(lines)
        )
    return text.encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks=st.lists(_block, max_size=12),
    newlines=st.sampled_from([["\n"], ["\r\n"], ["\r"], ["\n", "\r\n", "\r"], ["\r", "\n"]]),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    tail=st.sampled_from(["", "\r", "\n", "data: partial", "\r\r", "id: 5\r"]),
)
def test_generated_streams_parse_as_the_reference_does(
    blocks: list[tuple[str, str]], newlines: list[str], cuts: list[int], tail: str
) -> None:
    data = _join(blocks, newlines) + tail.encode()
    chunks = _split(data, cuts)
    expected = reference(chunks)
    assert ours(chunks) == expected
    assert watcher_view(chunks) == expected


@settings(max_examples=150, deadline=None)
@given(
    ids=st.lists(st.integers(0, 10**9), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 100_000), max_size=20),
)
def test_server_frames_split_anywhere_parse_as_the_reference_does(
    ids: list[int], cuts: list[int]
) -> None:
    data = b"retry: 2000\n\n" + b"".join(_server_frame(i) for i in ids) + b":\n\n"
    chunks = _split(data, cuts)
    got = ours(chunks)
    assert got == reference(chunks)
    assert watcher_view(chunks) == got
    assert [f[2] for f in got if f[1]] == [f"{i:012d}" for i in ids]


# -- awkward streams, one by one -----------------------------------------------------------------


def test_awkward_streams_parse_as_the_reference_does() -> None:
    frame = _server_frame(1)
    streams = [
        [frame.replace(b"\n", b"\r\n")],
        [frame.replace(b"\n", b"\r")],
        [frame[:-1], frame[-1:]],  # the blank line split off
        [frame.replace(b"\n", b"\r\n")[:-1], b"\n"],  # CR | LF across pieces
        [frame + b"\r"],  # a trailing CR at the end of the stream is a line end
        [frame + b"\r\r"],
        [b"\n\n", frame, b"\n"],  # leading blank lines, then a trailing one
        [frame, b"\n\n\n\n", frame],
        [b"id: 1\nevent: k\ndata: {}"],  # never terminated: nothing dispatched
        [frame, b": ping\n\n", b"event: end\ndata: {}\n\n"],  # id carried to later frames
        [b"retry: 1500\n", b"\n", frame],
        [frame[:3], frame[3:9], frame[9:]],  # inside the field names
        [frame.replace(b"\xc3", b"\xff")],  # invalid UTF-8 is replaced, as by the reference
        # A server frame right after lines of an unfinished block belongs to that block.
        [b"retry: 1500\n" + frame + frame],
        [b"data: a\n" + frame + _server_frame(2)],
        [b": c\n" + frame + b": ping\n\n" + _server_frame(2)],
        [frame + b"id: 5\nevent: cursor\ndata: {}\n\n" + _server_frame(6) + b"\n" + frame],
        [_server_frame(1, "end") + frame + _server_frame(2, "endx")],  # a control name: general
        [
            "id: 1\nevent: k\ndata: é✓\n\n".encode()[:-5],
            "id: 1\nevent: k\ndata: é✓\n\n".encode()[-5:],
        ],
    ]
    for chunks in streams:
        assert ours(chunks) == reference(chunks), chunks
        assert watcher_view(chunks) == reference(chunks), chunks


def test_server_frames_take_the_fast_path(monkeypatch: Any) -> None:
    """The server's own data frames never reach the general parser; other blocks do."""
    seen: list[str] = []
    general = SSEReader._line

    def spy(self: SSEReader, line: str, add: Any) -> None:
        seen.append(line)
        general(self, line, add)

    monkeypatch.setattr(SSEReader, "_line", spy)
    reader = SSEReader()
    frames = reader.feed(b"".join(_server_frame(i) for i in range(50)).decode())
    assert len(frames) == 50
    assert seen == []
    frames = reader.feed("retry: 2000\n\n:\n\n")
    assert seen == ["retry: 2000", "", ":", ""]
    assert [(f.event, f.retry) for f in frames] == [("message", 2000), ("message", None)]


def test_a_piece_of_server_frames_is_cut_in_one_pass(monkeypatch: Any) -> None:
    """The block loop never sees the server's frames of a piece, only what follows them."""
    seen: list[str] = []
    blocks = SSEReader._blocks

    def spy(self: SSEReader, text: str, pos: int, out: list[Any]) -> int:
        seen.append(text[pos:])
        return blocks(self, text, pos, out)

    monkeypatch.setattr(SSEReader, "_blocks", spy)
    reader = SSEReader()
    text = b"".join(_server_frame(i) for i in range(50)).decode()
    frames = reader.feed_split(text + "id: 5")
    assert [f[2] for f in frames] == [f"{i:012d}" for i in range(50)]
    assert seen == []  # an unfinished block after them is kept for the next piece
    frames = reader.feed_split("\nevent: k\ndata: 1\n\n" + text + ": ping\n\nid: 6")
    # the comment's blank line dispatches a frame with the last id (as the reference does)
    assert frames[-1] == SSEFrame("", "", f"{49:012d}")
    assert [f[2] for f in frames if type(f) is tuple] == ["5"] + [f"{i:012d}" for i in range(50)]
    assert seen == [": ping\n\nid: 6"]
    seen.clear()
    control = "id: 7\nevent: cursor\ndata: {}\n\n"
    frames = SSEReader().feed_split(
        _server_frame(50).decode() + control + _server_frame(51).decode()
    )
    assert seen == [control, ""]  # the control frame between them, then nothing after them
    assert [f[2] if type(f) is tuple else f.event for f in frames] == [
        f"{50:012d}",
        "cursor",
        f"{51:012d}",
    ]


def test_frames_compare_by_value() -> None:
    assert SSEFrame("", "d", "1") == SSEFrame("message", "d", "1", None)
    assert SSEFrame("k", "d", "1") != SSEFrame("k", "d", "2")
    assert "SSEFrame('k'" in repr(SSEFrame("k", "d", "1"))


# -- the cheap ExecutionEvent -------------------------------------------------------------------

_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@given(
    data=st.dictionaries(
        st.sampled_from([*_codec.WIRE_FIELDS, "cursor", "other"]), _value, max_size=10
    ),
    cursor=st.one_of(st.none(), st.text(max_size=4)),
)
def test_server_event_equals_from_wire(data: dict[str, Any], cursor: str | None) -> None:
    try:
        expected: ExecutionEvent | type[Exception] = ExecutionEvent.from_wire(data, cursor)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        got: ExecutionEvent | type[Exception] = server_event(data, cursor)
    except (TypeError, ValueError) as exc:
        got = type(exc)
    assert got == expected
    if isinstance(got, ExecutionEvent):
        assert isinstance(expected, ExecutionEvent)
        for f in dataclasses.fields(ExecutionEvent):
            assert type(getattr(got, f.name)) is type(getattr(expected, f.name)), f.name


def test_server_event_of_a_server_frame_is_a_full_event() -> None:
    data = orjson.loads(
        b'{"exec_id":"e","kind":"k","correlation_id":"c","index":3,"checkpoint_id":null,'
        b'"checkpoint_name":"n","step_name":"s","payload":{"message":"hi"},"cursor":"9"}'
    )
    event = server_event(data, "10")
    assert event == ExecutionEvent("e", "k", {"message": "hi"}, "c", 3, "10", None, "n", "s")
    assert event.message == "hi"
    assert server_event(data, None).cursor == "9"
    assert dataclasses.replace(event) == event
    try:
        event.kind = "other"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("ExecutionEvent must stay frozen")
