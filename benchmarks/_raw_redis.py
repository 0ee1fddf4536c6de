"""The bare Redis path of ``bench_redis.py``: a plain writer and a plain reader of one stream.

``python benchmarks/_raw_redis.py write --url U --stream P:log:X --events N [--kitaru]``
``python benchmarks/_raw_redis.py read --url U --stream KEY --events N``

Each runs in its own process, as kitaru's server and the benchmark's reader do. The writer
builds the same batches as ``quick_stream_throughput.bodies`` (500 events each), prints
``ready``, waits for a line on stdin, then per batch parses the JSON array with orjson and
appends every event to the stream as the entry ``<n>-0`` with its idempotency key and its
JSON, plus the keys in one ``HSET``, all in one ``MULTI``/``EXEC`` pipeline (one round trip
per batch), then ends the stream with one ``<n>-1`` entry carrying ``e`` (as kitaru's end entry
does). With ``--kitaru`` it appends each batch with kitaru's own ``RedisEventLog.append``
(prefix ``P``, execution ``X``: the idempotency check, numbering and sources included) and
ends it with ``mark_ended``, so the Redis side is kitaru's exactly and only the kitaru server
is missing.

The reader blocks in ``XREAD`` (``COUNT 1000``) from the start of the stream until the end
entry, counting entries and checking that they are numbered 1, 2, 3, ... with none missing or
repeated, then prints one JSON line: ``time.monotonic()`` at the end entry (comparable across
processes on Linux), the events read, whether they were in order, and its CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import orjson
import redis
from quick_stream_throughput import bodies

from kitaru.backends._base import NewEvent
from kitaru.backends._redis import RedisEventLog


def _raw(response: Any, **_: Any) -> Any:
    return response


def write(url: str, stream: str, n: int, kitaru: bool) -> dict[str, Any]:
    """Append the batches when told to; the seconds it took."""
    payloads = bodies(stream, n)
    if kitaru:
        return asyncio.run(_write_kitaru(url, stream, payloads))
    r = redis.Redis.from_url(url)
    r.ping()
    keys = f"{stream}:keys"
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    seq = 0
    for body in payloads:
        pipe = r.pipeline(transaction=True)
        mapping: dict[str, int] = {}
        for ev in orjson.loads(body):
            seq += 1
            key = f"{ev['correlation_id']}:{ev['index']}"
            mapping[key] = seq
            pipe.execute_command("XADD", stream, f"{seq}-0", "k", key, "d", orjson.dumps(ev))
        pipe.execute_command("HSET", keys, *[x for kv in mapping.items() for x in kv])
        pipe.execute()
    r.execute_command("XADD", stream, f"{seq}-1", "e", "completed")
    return {"seconds": time.perf_counter() - t0, "last": seq}


async def _write_kitaru(url: str, stream: str, payloads: list[bytes]) -> dict[str, Any]:
    prefix, _, exec_id = stream.rpartition(":log:")
    log = RedisEventLog(url, prefix=prefix)
    try:
        await log.read(exec_id, None, 1)  # connected
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        t0 = time.perf_counter()
        last = 0
        for body in payloads:
            events = [
                NewEvent(
                    ev["kind"],
                    ev["correlation_id"],
                    ev["index"],
                    ev["checkpoint_id"],
                    ev["checkpoint_name"],
                    ev["step_name"],
                    orjson.dumps(ev),
                )
                for ev in orjson.loads(body)
            ]
            last = int((await log.append(exec_id, events)).last_cursor or 0)
        await log.mark_ended(exec_id, "completed")
        return {"seconds": time.perf_counter() - t0, "last": last}
    finally:
        await log.close()


def read(url: str, stream: str, n: int) -> dict[str, Any]:
    """Read the stream until its end entry; when that came and what was read."""
    r = redis.Redis.from_url(url, socket_timeout=60)
    r.set_response_callback("XREAD", _raw)
    r.ping()
    print("ready", flush=True)
    last = b"0-0"
    count = 0
    in_order = True
    while True:
        reply = r.xread({stream: last}, count=1000, block=2000)
        if not reply:
            continue
        entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        for entry_id, fields in entries:
            if fields[0] == b"e":
                return {
                    "end": time.monotonic(),
                    "events": count,
                    "in_order": in_order and count == n,
                }
            count += 1
            if entry_id != b"%d-0" % count:
                in_order = False
        last = entries[-1][0]


def main() -> int:
    """Run one side; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", choices=["write", "read"])
    p.add_argument("--url", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--kitaru", action="store_true", help="kitaru's RedisEventLog.append")
    args = p.parse_args()
    if args.role == "write":
        out = write(args.url, args.stream, args.events, args.kitaru)
    else:
        out = read(args.url, args.stream, args.events)
    out["cpu_s"] = time.process_time()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
