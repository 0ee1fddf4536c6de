"""The baseline server: the least a server can do for the same traffic, on the same stack.

A bare ASGI app on uvicorn (the same uvicorn, event loop and HTTP parser kitaru's server gets),
with no framework, no validation and no cursors:

* ``GET /health``: ``ok`` (the floor of one HTTP exchange, for the latency benchmark);
* ``POST /ingest`` (with ``--db``): parse the JSON array with orjson and insert every event
  into SQLite (WAL, ``synchronous=NORMAL``, one transaction per request, as kitaru does):
  the raw ingest path of bench_throughput.py;
* ``GET /frames`` (with ``--frames N``): ``N`` precomputed SSE data frames, 100 per write: the
  raw read path of bench_catchup.py.

The raw live path (with ``--db``; bench_load.py and bench_throughput.py):

* ``POST /ingest/<stream>`` (the events of one stream) and ``POST /events`` (events of several
  streams, each event's ``exec_id`` naming its stream, as kitaru's several-executions ingest):
  as ``/ingest``, then each event's SSE frame (``id``, ``event``, ``data`` lines; the data is
  the event's JSON as stored) is built once, the request's new frames of a stream are appended
  to that stream's in-memory tail as one chunk, and its readers are woken;
* ``POST /end/<stream>``: appends an ``end`` frame and closes the stream;
* ``GET /live/<stream>``: an SSE response writing everything in the stream's tail, then each
  new chunk (or the chunks added since the last write, joined) as one write, until the stream
  is closed (the last reader of a closed stream frees its tail);
* ``GET /stats``: ``{"requests": ingest requests, "events": events ingested}``.

Run as ``python benchmarks/_raw_server.py --port P [--db PATH] [--frames N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from typing import Any

import orjson
import uvicorn
from _common import wire_events

CHUNK_FRAMES = 100
END_FRAME = b'event: end\ndata: {"status":"completed"}\n\n'
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class Tail:
    """One stream's frames in memory, in chunks as they were ingested, and its readers' wake-up."""

    __slots__ = ("_waiter", "chunks", "closed", "readers", "seq")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False
        self.seq = 0
        self.readers = 0
        self._waiter: asyncio.Future[None] | None = None

    def append(self, chunk: bytes, *, close: bool = False) -> None:
        """Add ``chunk`` and wake every reader waiting for more."""
        self.chunks.append(chunk)
        self.closed = self.closed or close
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the next :meth:`append`."""
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter


def build_app(db: str | None, frames: int) -> Any:
    """The ASGI app."""
    conn: sqlite3.Connection | None = None
    if db:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (exec_id TEXT NOT NULL, seq INTEGER NOT NULL, "
            "correlation_id TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, "
            "data BLOB NOT NULL, PRIMARY KEY (exec_id, seq)) WITHOUT ROWID"
        )
    seq = [0]
    counts = {"requests": 0, "events": 0}
    tails: dict[str, Tail] = {}
    chunks: list[bytes] = []
    if frames:
        events = wire_events("raw-exec", frames)
        out = [
            b"id: %012d\nevent: kitaru.checkpoint.progress\ndata: %b\n\n" % (i + 1, ev)
            for i, ev in enumerate(events)
        ]
        chunks = [b"".join(out[i : i + CHUNK_FRAMES]) for i in range(0, len(out), CHUNK_FRAMES)]
        chunks.append(END_FRAME)

    def tail_of(stream: str) -> Tail:
        tail = tails.get(stream)
        if tail is None:
            tail = tails[stream] = Tail()
        return tail

    def ingest_live(items: list[dict[str, Any]], stream: str | None) -> int:
        """Insert ``items`` in one transaction, then append their frames to their tails."""
        assert conn is not None
        rows = []
        new: dict[str, list[bytes]] = {}
        for item in items:
            name = stream or item["exec_id"]
            tail = tail_of(name)
            tail.seq += 1
            data = orjson.dumps(item)
            kind = item["kind"]
            rows.append((name, tail.seq, item["correlation_id"], item["index"], kind, data))
            frame = b"id: %d\nevent: %b\ndata: %b\n\n" % (tail.seq, kind.encode(), data)
            found = new.get(name)
            if found is None:
                new[name] = [frame]
            else:
                found.append(frame)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")
        for name, out in new.items():
            tails[name].append(b"".join(out))
        return len(rows)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if path == "/ingest" and conn is not None:
            items = orjson.loads(await _body(receive))
            rows = []
            for item in items:
                seq[0] += 1
                rows.append(
                    (
                        item["exec_id"],
                        seq[0],
                        item["correlation_id"],
                        item["index"],
                        item["kind"],
                        orjson.dumps(item),
                    )
                )
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?)", rows)
            conn.execute("COMMIT")
            await _respond(send, b'{"stored":%d}' % len(rows), b"application/json")
        elif (path == "/events" or path.startswith("/ingest/")) and conn is not None:
            stream = path[len("/ingest/") :] if path != "/events" else None
            stored = ingest_live(orjson.loads(await _body(receive)), stream)
            counts["requests"] += 1
            counts["events"] += stored
            await _respond(send, b'{"stored":%d}' % stored, b"application/json")
        elif path.startswith("/end/"):
            await _body(receive)
            tail_of(path[len("/end/") :]).append(END_FRAME, close=True)
            await _respond(send, b"{}", b"application/json")
        elif path.startswith("/live/"):
            stream = path[len("/live/") :]
            tail = tail_of(stream)
            tail.readers += 1
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            pos = 0
            while True:
                have = tail.chunks
                n = len(have)
                if pos < n:
                    body = have[pos] if n - pos == 1 else b"".join(have[pos:n])
                    pos = n
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                elif tail.closed:
                    break
                else:
                    await tail.wait()
            tail.readers -= 1
            if not tail.readers and tails.get(stream) is tail:
                del tails[stream]  # the last reader of a closed stream: free its frames
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif path == "/stats":
            await _respond(send, orjson.dumps(counts), b"application/json")
        elif path == "/frames" and chunks:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await _respond(send, b"ok", b"text/plain")

    return app


async def _body(receive: Any) -> bytes:
    body = bytearray()
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return bytes(body)


async def _respond(send: Any, body: bytes, ctype: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", ctype), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    """Parse arguments and serve until interrupted."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", default=None)
    p.add_argument("--frames", type=int, default=0)
    args = p.parse_args()
    uvicorn.run(
        build_app(args.db, args.frames),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
