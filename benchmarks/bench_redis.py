"""The Redis event log end to end, against the SQLite log end to end and the bare Redis path.

Two kitaru servers in subprocesses, one with its default SQLite store and log (the baseline),
one with a Redis event log (a Redis started for the run from ``scripts/services/``) and the
same kind of SQLite store. Each time one raw reader opens the stream of a running execution,
``--events`` (50,000; 5,000 with ``--smoke``) progress events are posted in batches of 500 by
one client, the execution is finished, and the reader is timed until ``end`` (frames counted on
the socket, so client parsing does not cap the figure). This is ``quick_stream_throughput.py``'s
"live" figure. Also reported: the kitaru server's CPU seconds meanwhile, and with Redis's own
added (what the Redis log costs the machine in all).

The raw bound, same run (``_raw_redis.py``): the same batches appended to a Redis stream by a
plain writer process (orjson, one ``MULTI``/``EXEC`` pipeline of ``XADD`` per event and one
``HSET`` of the idempotency keys per batch), read by a plain reader process blocking in
``XREAD``; and the same writer appending with kitaru's own ``RedisEventLog.append`` instead
(the Redis side of kitaru exactly, without the kitaru server). Timed from the first append to
the reader's end entry.

The four runs alternate (SQLite, Redis, raw pipeline, raw kitaru append) ``--pairs`` times
(3; 1 with ``--smoke``); the table's row is the median of the Redis/SQLite ratios and every round's
figures are rows too (``_pairs.py``). Checked in every run: the reader received every event
once, numbered 1, 2, 3, ... in order (a lost, repeated or unaccounted event fails the run).

Target: the Redis log at ≥ 0.8x the SQLite log's end-to-end rate.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _common import (
    HERE,
    KitaruServer,
    Process,
    Result,
    child_env,
    header,
    parser,
    proc_cpu_seconds,
    read_line,
    run_main,
    tempdir,
)
from _pairs import pair_rows
from bench_storage import _service
from quick_stream_throughput import bodies, new_execution, post_all, read_stream

from kitaru import _wire

TARGET = 0.8
_EVENT_ID = re.compile(rb"\nid: (\d+)\nevent: (?!end\n)")


def check_ids(data: bytes, n: int) -> str | None:
    """What is wrong with the event frames of a stream read whole, if anything."""
    ids = [int(x) for x in _EVENT_ID.findall(data)]
    if ids == list(range(1, n + 1)):
        return None
    unique = len(set(ids))
    return (
        f"{len(ids)} event frames ({unique} distinct, {len(ids) - unique} repeated), "
        f"expected 1..{n} in order"
    )


def live(
    server: KitaruServer, n: int, res: Result, label: str, redis_pid: int | None = None
) -> dict[str, Any]:
    """Events per second from the first post until the reader had ``end``.

    Also the CPU seconds of the kitaru server and of Redis (``redis_pid``) meanwhile.
    """
    with httpx.Client(base_url=server.url, timeout=120) as c:
        exec_id = new_execution(c)
        payloads = bodies(exec_id, n)
        got: dict[str, float] = {}
        chunks: list[bytes] = []
        reader = threading.Thread(
            target=read_stream, args=(server.port, exec_id, got), kwargs={"keep": chunks}
        )
        reader.start()
        time.sleep(0.3)  # let the stream reach its wait
        cpu0, t0 = proc_cpu_seconds(server.pid), time.perf_counter()
        redis0 = proc_cpu_seconds(redis_pid) if redis_pid else 0.0
        post_all(server.url, exec_id, payloads, 1)
        c.post(
            _wire.path_finish(exec_id),
            json={"status": "completed", "output": None, "error_type": None},
        ).raise_for_status()
        reader.join(300)
    problem = check_ids(b"".join(chunks), n)
    if problem:
        res.fail(f"{label}: the reader got {problem}")
    elapsed = got["end"] - t0
    return {
        "events_per_s": n / elapsed,
        "server_cpu_s": proc_cpu_seconds(server.pid) - cpu0,
        "redis_cpu_s": proc_cpu_seconds(redis_pid) - redis0 if redis_pid else 0.0,
    }


def raw(url: str, n: int, res: Result, label: str, redis_pid: int, kitaru: bool) -> dict[str, Any]:
    """The bare Redis path: events per second from the first append to the reader's end."""
    stream = f"kitaru-bench-raw:log:{uuid.uuid4()}"
    argv = [sys.executable, str(HERE / "_raw_redis.py")]
    common = ["--url", url, "--stream", stream, "--events", str(n)]
    reader = Process([*argv, "read", *common], env=child_env())
    writer = Process(
        [*argv, "write", *common, *(["--kitaru"] if kitaru else [])], env=child_env(), stdin=True
    )
    try:
        for proc in (reader, writer):
            if (line := read_line(proc, 120.0)) != "ready":
                raise RuntimeError(f"unexpected output of _raw_redis.py: {line!r}")
        time.sleep(0.3)  # let the reader reach its blocking read
        redis0, t0 = proc_cpu_seconds(redis_pid), time.monotonic()
        writer.send_line("go")
        out_r = read_line(reader, 300.0)
        redis_cpu = proc_cpu_seconds(redis_pid) - redis0
        out_w = read_line(writer, 60.0)
    finally:
        for proc in (reader, writer):
            proc.stop()
    got, wrote = json.loads(out_r), json.loads(out_w)
    if not got["in_order"] or got["events"] != n:
        res.fail(f"{label}: the raw reader got {got['events']} of {n} events (in order: no)")
    return {
        "events_per_s": n / (got["end"] - t0),
        "redis_cpu_s": redis_cpu,
        "writer_cpu_s": wrote["cpu_s"],
        "reader_cpu_s": got["cpu_s"],
    }


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    p.add_argument("--pairs", type=int, default=None, help="rounds (default 3; 1 with --smoke)")
    args = p.parse_args()
    n = args.events or (5_000 if args.smoke else 50_000)
    rounds = args.pairs or (1 if args.smoke else 3)
    res = Result("redis", args.smoke, params={"events": n, "pairs": rounds})
    header(f"Redis log vs SQLite log, end to end, {n:,} events, {rounds} rounds", res)
    runs: list[dict[str, dict[str, Any]]] = []
    with tempdir() as home:
        services = Path(tempfile.mkdtemp(prefix="kitaru-bench-services-"))
        services.chmod(0o755)
        try:
            url = _service("redis", services / "redis")
            redis_pid = int((services / "redis" / "redis.pid").read_text())
            sqlite = KitaruServer(home / "sqlite.db")
            red = KitaruServer(home / "store.db", extra=["--event-log", url])
            try:
                for i in range(rounds):
                    r = {
                        "sqlite": live(sqlite, n, res, f"sqlite {i + 1}"),
                        "redis": live(red, n, res, f"redis {i + 1}", redis_pid),
                        "raw": raw(url, n, res, f"raw {i + 1}", redis_pid, kitaru=False),
                        "raw_script": raw(url, n, res, f"raw kitaru {i + 1}", redis_pid, True),
                    }
                    runs.append(r)
                    print(
                        f"  round {i + 1}: "
                        + ", ".join(f"{k} {v['events_per_s']:,.0f} ev/s" for k, v in r.items()),
                        flush=True,
                    )
            finally:
                sqlite.stop()
                red.stop()
        finally:
            _service("redis", services / "redis", stop=True)
            shutil.rmtree(services, ignore_errors=True)
    res.figures["rounds"] = runs
    rate = [(r["sqlite"]["events_per_s"], r["redis"]["events_per_s"]) for r in runs]
    m = pair_rows(
        res,
        "live end to end, Redis log",
        "ev/s",
        rate,
        baseline_name="SQLite log",
        target=f"≥ {TARGET:g}x SQLite",
        at_least=TARGET,
    )
    pair_rows(
        res,
        "raw Redis path: pipelined XADD, blocking XREAD",
        "ev/s",
        [(r["sqlite"]["events_per_s"], r["raw"]["events_per_s"]) for r in runs],
        baseline_name="SQLite log",
    )
    pair_rows(
        res,
        "raw Redis path: kitaru's RedisEventLog.append, blocking XREAD",
        "ev/s",
        [(r["sqlite"]["events_per_s"], r["raw_script"]["events_per_s"]) for r in runs],
        baseline_name="SQLite log",
    )
    pair_rows(
        res,
        "live end to end, Redis log, vs the raw Redis path",
        "ev/s",
        [(r["raw"]["events_per_s"], r["redis"]["events_per_s"]) for r in runs],
        baseline_name="raw pipeline",
    )
    base, sub = runs[m]["sqlite"], runs[m]["redis"]
    res.row(
        "server CPU, Redis log",
        sub["server_cpu_s"],
        "s",
        baseline=base["server_cpu_s"],
        baseline_name="SQLite log",
    )
    res.row(
        "server + Redis CPU, Redis log",
        sub["server_cpu_s"] + sub["redis_cpu_s"],
        "s",
        baseline=base["server_cpu_s"],
        baseline_name="SQLite log",
    )
    for key, name in (
        ("redis", "kitaru"),
        ("raw", "raw pipeline"),
        ("raw_script", "raw kitaru append"),
    ):
        res.row(
            f"Redis CPU per event, {name}",
            runs[m][key]["redis_cpu_s"] / n * 1e6,
            "µs",
        )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
