"""The baseline server: the least a server can do for the same traffic, on the same stack.

A bare ASGI app on uvicorn (the same uvicorn, event loop and HTTP parser kitaru's server gets),
with no framework, no validation and no cursors:

* ``GET /health``: ``ok`` (the floor of one HTTP exchange, for the latency benchmark);
* ``POST /ingest`` (with ``--db``): parse the JSON array with orjson and insert every event
  into SQLite (WAL, ``synchronous=NORMAL``, one transaction per request, as kitaru does):
  the raw ingest path of bench_throughput.py;
* ``GET /frames`` (with ``--frames N``): ``N`` precomputed SSE data frames, 100 per write: the
  raw read path of bench_catchup.py.

Run as ``python benchmarks/_raw_server.py --port P [--db PATH] [--frames N]``.
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Any

import orjson
import uvicorn
from _common import wire_events

CHUNK_FRAMES = 100


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
    chunks: list[bytes] = []
    if frames:
        events = wire_events("raw-exec", frames)
        out = [
            b"id: %012d\nevent: kitaru.checkpoint.progress\ndata: %b\n\n" % (i + 1, ev)
            for i, ev in enumerate(events)
        ]
        chunks = [b"".join(out[i : i + CHUNK_FRAMES]) for i in range(0, len(out), CHUNK_FRAMES)]
        chunks.append(b'event: end\ndata: {"status":"completed"}\n\n')

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
            body = bytearray()
            while True:
                msg = await receive()
                body += msg.get("body", b"")
                if not msg.get("more_body"):
                    break
            items = orjson.loads(body)
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
