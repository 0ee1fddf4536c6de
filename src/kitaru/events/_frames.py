"""The SSE frame codec: an event's frame written by the server, and frames read by the watcher.

The event logs write a stored event's frame (:func:`new_event_frame`, :func:`encode_frame`,
:func:`frame_data`), the server's web stream an unnamed one (:func:`unnamed_frame`), and the
watcher reads frames back (:class:`SSEReader`, :func:`iter_frame_lists`,
:func:`aiter_frame_lists`). The frame's data is the event's JSON of :mod:`kitaru.events._codec`;
the layout is described in ``docs/protocol.md``, "The event stream (SSE)".
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Iterable,
    Iterator,
)

from kitaru import _wire

__all__ = [
    "CONTROL_EVENTS",
    "DataFrame",
    "SSEFrame",
    "SSEReader",
    "aiter_frame_lists",
    "encode_frame",
    "frame_data",
    "iter_frame_lists",
    "iter_frames",
    "new_event_frame",
    "unnamed_frame",
]


# -- SSE frames ---------------------------------------------------------------------------------
# A kind has no line breaks (ingest refuses them) and the data is compact JSON, which has none
# either, so no frame needs escaping. The event logs store each event's JSON once and build its
# frame here on read (docs/server-architecture.md, "Event log storage").


def encode_frame(cursor: str, kind: str, data: bytes) -> bytes:
    """The SSE data frame of one event: ``id:``, ``event:`` and ``data:`` lines."""
    return b"id: %b\nevent: %b\ndata: %b\n\n" % (cursor.encode(), kind.encode(), data)


def new_event_frame(cursor: str, kind: str, body: bytes) -> bytes:
    """The frame of a logged event: :func:`encode_frame` with ``"cursor"`` added to ``body``.

    One formatting step, no JSON re-encoding: the cursor is spliced in before the closing
    brace of ``body`` (cursors need no JSON escaping).
    """
    c = cursor.encode()
    if body == b"{}":
        return b'id: %b\nevent: %b\ndata: {"cursor":"%b"}\n\n' % (c, kind.encode(), c)
    return b'id: %b\nevent: %b\ndata: %b,"cursor":"%b"}\n\n' % (
        c,
        kind.encode(),
        memoryview(body)[:-1],  # type: ignore[str-format]  # %b takes any buffer
        c,
    )


def unnamed_frame(cursor: str, data: bytes) -> bytes:
    """A data frame without the ``event:`` line (a browser's ``EventSource`` ``onmessage``)."""
    return b"id: %b\ndata: %b\n\n" % (cursor.encode(), data)


def frame_data(frame: bytes) -> bytes:
    """The JSON object (with ``"cursor"``) of a frame made by :func:`new_event_frame`."""
    return frame[frame.index(b"\ndata: ") + 7 : -2]


# -- reading SSE frames -------------------------------------------------------------------------
# The watcher's reader (docs/protocol.md, "The event stream"). Data frames the server writes
# (encode_frame: one ``id:``, one ``event:`` and one ``data:`` line, nothing else) are cut out
# of the text whole, all of a piece's by one regular-expression split; any other block of lines
# (control frames, heartbeat comments, ``retry:``, multi-line data, unknown fields, a missing
# space after the colon...) goes line by line, in stream order, through the general parser
# below, which follows the parse of the SSE reference reader the watcher used before (httpx-sse;
# tests compare the two on generated streams): lines end at CR, LF or CRLF, a blank line
# dispatches, ``id:`` is kept across frames and ignored when it holds NUL, a bad
# ``retry:`` is ignored.


CONTROL_EVENTS = frozenset(
    {_wire.CONTROL_CURSOR, _wire.CONTROL_GAP, _wire.CONTROL_END, _wire.CONTROL_ERROR}
)
"""The ``event:`` names of the stream's control frames (``docs/protocol.md``)."""
_CONTROL_NAMES = CONTROL_EVENTS

_split_server_frames = re.compile(
    # encode_frame's layout: an id without NUL, a kind that names no control frame, one data
    # line; "." is any character but LF (the reader has turned CR and CRLF into LF already).
    # Possessive repeats: a line is read once, never given back (an unfinished frame at the
    # end of a piece fails at once instead of trying every shorter data line).
    "id: ([^\n\0]*+)\nevent: (?!(?:"
    + "|".join(sorted(map(re.escape, CONTROL_EVENTS)))
    + ")\n)([^\n]++)\ndata: (.*+)\n\n"
).split
_FRAME_FIXED = len("id: \nevent: \ndata: \n\n")


class SSEFrame:
    """One dispatched SSE frame.

    Its ``event`` name (``"message"`` when none), ``data``, the last ``id`` seen on the stream,
    and its ``retry`` hint in milliseconds (or ``None``): what the reference reader reports.
    """

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, event: str, data: str, id: str, retry: int | None = None) -> None:
        self.event = event or "message"
        self.data = data
        self.id = id
        self.retry = retry

    def __repr__(self) -> str:
        return f"SSEFrame({self.event!r}, {self.data!r}, {self.id!r}, {self.retry!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SSEFrame):
            return NotImplemented
        return (self.event, self.data, self.id, self.retry) == (
            other.event,
            other.data,
            other.id,
            other.retry,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


DataFrame = tuple[str, str, str]
"""A data frame in the server's own layout, as ``(event, data, id)``: see
:meth:`SSEReader.feed_split`."""


class SSEReader:
    """Incremental SSE parser: :meth:`feed` it the stream's text, :meth:`close` it at the end."""

    __slots__ = ("_cr", "_data", "_event", "_id", "_parts", "_retry")

    def __init__(self) -> None:
        self._parts: list[str] = []  # text of an unfinished frame (never holds a blank line)
        self._cr = False  # a CR ended the last text: it may be the first half of a CRLF
        self._event = ""
        self._data: list[str] = []
        self._id = ""
        self._retry: int | None = None

    def feed(self, text: str) -> list[SSEFrame]:
        """The frames completed by ``text``, in order."""
        return [f if isinstance(f, SSEFrame) else SSEFrame(*f) for f in self.feed_split(text)]

    def feed_split(self, text: str) -> list[SSEFrame | DataFrame]:
        """:meth:`feed`, with the server's own data frames as :data:`DataFrame` tuples.

        A tuple ``(event, data, id)`` holds the arguments of the frame's :class:`SSEFrame`
        (whose ``retry`` is ``None``): what the watcher reads per event is then made by one C
        call, not an object's ``__init__``.

        The ``event`` of a tuple is never empty and never names a control frame
        (``docs/protocol.md``: those go through :class:`SSEFrame` like any other block).
        """
        if self._cr:
            text = "\r" + text
            self._cr = False
        if "\r" in text:
            if text[-1] == "\r":
                self._cr = True
                text = text[:-1]
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        parts = self._parts
        if parts:
            if "\n" not in text:  # no line ends here: nothing can complete
                if text:
                    parts.append(text)
                return []
            parts.append(text)
            text = "".join(parts)
            parts.clear()
        # One C pass cuts every server data frame out of the text: ``split`` holds, per frame,
        # the text before it, its id, kind and data, and then the text after the last one.
        split = _split_server_frames(text)
        if len(split) == 1:
            out: list[SSEFrame | DataFrame] = []
            pos = 0
        elif not any(split[0:-1:4]):  # nothing between the frames: the stream's usual piece
            out = list(zip(split[2::4], split[3::4], split[1::4], strict=True))
            self._id = split[-4]
            rest = split[-1]
            if not rest:
                return out
            if rest[0] != "\n" and "\n\n" not in rest:
                parts.append(rest)  # an unfinished block: the block loop would stop at once
                return out
            pos = len(text) - len(rest)
        else:
            out = []
            pos = self._between(split, out)
        pos = self._blocks(text, pos, out)
        if pos < len(text):
            parts.append(text[pos:])
        return out

    def _between(self, split: list[str], out: list[SSEFrame | DataFrame]) -> int:
        """The frames of a text with other blocks between the server's frames, in order.

        Returns where the block loop goes on: the end of the last server frame, or the start
        of a text that does not end with a blank line (the frame after it would be part of its
        block, so the block loop reads both).
        """
        pos = 0
        add = out.append
        for i in range(0, len(split) - 1, 4):
            between = split[i]
            if between:
                if between[-2:] != "\n\n" and between.strip("\n"):
                    return pos
                self._blocks(between, 0, out)  # whole blocks (or blank lines): all read
            ident, kind, data = split[i + 1 : i + 4]
            add((kind, data, ident))
            self._id = ident
            pos += len(between) + len(ident) + len(kind) + len(data) + _FRAME_FIXED
        return pos

    def _blocks(self, text: str, pos: int, out: list[SSEFrame | DataFrame]) -> int:
        """Read ``text`` from ``pos`` (a block's start) block by block.

        Returns where the last complete block ends.
        """
        # Only single-character searches (memchr) touch the data: the text is read about once.
        find = text.find
        startswith = text.startswith
        line = self._line
        add = out.append
        end = len(text)
        while pos < end:
            # The server's data frame, "id: C\nevent: K\ndata: D\n\n" (encode_frame); the
            # checked prefixes also mean the blank line after D is the block's first one.
            if startswith("id: ", pos):
                i = find("\n", pos)
                if startswith("\nevent: ", i):
                    j = find("\n", i + 8)
                    if startswith("\ndata: ", j):
                        k = find("\n", j + 7)
                        if startswith("\n\n", k):
                            ident = text[pos + 4 : i]
                            kind = text[i + 8 : j]
                            if "\0" not in ident and kind and kind not in _CONTROL_NAMES:
                                self._id = ident
                                add((kind, text[j + 7 : k], ident))
                                pos = k + 2
                                continue
            if text[pos] == "\n":
                line("", add)  # a blank line dispatches at once
                pos += 1
                continue
            stop = find("\n\n", pos)
            if stop < 0:
                break  # an unfinished block: wait for more text
            for field in text[pos:stop].split("\n"):
                line(field, add)
            line("", add)
            pos = stop + 2
        return pos

    def close(self) -> list[SSEFrame]:
        """The frames the end of the stream completes (only a last blank line can)."""
        text = "".join(self._parts) + ("\n" if self._cr else "")
        self._parts.clear()
        self._cr = False
        out: list[SSEFrame] = []
        lines = text.split("\n")
        partial = lines.pop()
        for field in lines:
            self._line(field, out.append)
        if partial:
            self._line(partial, out.append)
        return out

    def _line(self, line: str, add: Callable[[SSEFrame], object]) -> None:
        """The general parser: one line (without its line break); ``add`` takes a frame."""
        if not line:
            # Like the reference reader, a blank line dispatches once anything was set, the
            # stream's last id included (the watcher ignores frames without data).
            if self._event or self._data or self._id or self._retry is not None:
                add(SSEFrame(self._event, "\n".join(self._data), self._id, self._retry))
                self._event = ""
                self._data = []
                self._retry = None
            return
        if line[0] == ":":
            return  # a comment (the server's heartbeat)
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            with contextlib.suppress(ValueError):
                self._retry = int(value)
        # any other field is ignored


def iter_frames(texts: Iterable[str]) -> Iterator[SSEFrame]:
    """The SSE frames of a stream given as pieces of text (``httpx.Response.iter_text()``)."""
    reader = SSEReader()
    for text in texts:
        yield from reader.feed(text)
    yield from reader.close()


def iter_frame_lists(
    pieces: Iterable[bytes], encoding: str = "utf-8"
) -> Iterator[list[SSEFrame | DataFrame]]:
    """The frames of each received piece of a stream, then of its end (the watcher's loop).

    One generator step per piece rather than per frame (:meth:`SSEReader.feed_split`).

    The pieces are bytes, decoded here as ``httpx.Response.iter_text()`` would (``encoding``,
    invalid bytes replaced, characters split across pieces joined): the text and byte
    iterators of httpx are a generator layer each, paid per piece.
    """
    reader = SSEReader()
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    feed = reader.feed_split
    decode = decoder.decode
    for piece in pieces:
        yield feed(decode(piece))
    yield [*feed(decode(b"", True)), *reader.close()]


async def aiter_frame_lists(
    pieces: AsyncIterable[bytes], encoding: str = "utf-8"
) -> AsyncGenerator[list[SSEFrame | DataFrame], None]:
    """The async twin of :func:`iter_frame_lists`."""
    reader = SSEReader()
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    feed = reader.feed_split
    decode = decoder.decode
    async for piece in pieces:
        yield feed(decode(piece))
    yield [*feed(decode(b"", True)), *reader.close()]
