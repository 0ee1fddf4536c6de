"""What one stored event costs: bytes on disk (SQLite), bytes of memory (Redis).

A kitaru server in a subprocess; ``--events`` (50,000; 3,000 with ``--smoke``) progress events
encoded exactly as the publisher encodes ``kitaru.progress("Processing item", percent=...,
item=i)`` are posted to one execution in batches of 500, then the execution is finished and one
raw reader catches up on the whole stream (frames counted on the socket, so client parsing does
not cap the figure). Backends (``--backends``): ``sqlite`` (the server's database file, with its
write-ahead log folded in after the server stopped) and ``redis`` (the Redis event log, a Redis
started for the run from ``scripts/services/``: ``used_memory`` before and after).

Reported per backend: stored bytes per event next to the mean size of the event's JSON as the
producer sent it, and their ratio; the catch-up rate of the stored events and the server's CPU
time per event during it (steadier than the rate on a shared machine). Checked: the reader
received every event.

Target: at most 1.5x the event's JSON.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ROOT,
    KitaruServer,
    Result,
    batches,
    header,
    parser,
    proc_cpu_seconds,
    run_main,
    tempdir,
    wire_events,
)

from kitaru import _wire

TARGET_RATIO = 1.5


def _service(name: str, folder: Path, *, stop: bool = False) -> str:
    """Start (or stop) a service from ``scripts/services/`` in ``folder``; its URL."""
    script = ROOT / "scripts" / "services" / f"{'stop' if stop else 'start'}-{name}.sh"
    done = subprocess.run(
        ["bash", str(script), "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0 and not stop:
        raise RuntimeError(f"{script.name} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _files_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def _read_all(port: int, exec_id: str) -> tuple[int, float]:
    """Frames of the whole stream of a finished execution, and the seconds it took."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    t0 = time.perf_counter()
    sock.sendall(f"GET {_wire.path_stream(exec_id)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    frames = 0
    tail = b""
    while True:
        data = sock.recv(1 << 20)
        if not data:
            break
        chunk = tail + data
        frames += chunk.count(b"\nid: ") - tail.count(b"\nid: ")
        if b"event: end\n" in chunk:
            break
        tail = chunk[-16:]
    elapsed = time.perf_counter() - t0
    sock.close()
    return frames, elapsed


def _fill(server: KitaruServer, n: int) -> tuple[str, float]:
    """Post ``n`` events to a new execution and finish it; the mean event JSON size."""
    exec_id = str(uuid.uuid4())
    with httpx.Client(base_url=server.url, timeout=120) as c:
        c.post(
            _wire.PATH_EXECUTIONS,
            json={
                "exec_id": exec_id,
                "flow_name": "bench",
                "flow_ref": None,
                "status": "running",
                "created_at": time.time(),
            },
        ).raise_for_status()
        events = wire_events(exec_id, n)
        for body in batches(events):
            c.post(_wire.path_events(exec_id), content=body).raise_for_status()
        c.post(
            _wire.path_finish(exec_id),
            json={"status": "completed", "output": None, "error_type": None},
        ).raise_for_status()
    return exec_id, sum(len(e) for e in events) / n


def measure_sqlite(home: Path, n: int, res: Result) -> dict[str, Any]:
    """Bytes per stored event in the server's SQLite file."""
    db = home / "server.db"
    server = KitaruServer(db)
    try:
        before = _files_size(db)
        exec_id, json_size = _fill(server, n)
        cpu0 = proc_cpu_seconds(server.pid)
        frames, seconds = _read_all(server.port, exec_id)
        cpu = proc_cpu_seconds(server.pid) - cpu0
    finally:
        server.stop()
    with sqlite3.connect(db) as conn:  # fold the write-ahead log into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try:  # where the bytes are: pages per table and index (SQLite's dbstat table)
            parts = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
        except sqlite3.Error:
            parts = {}
    after = _files_size(db)
    breakdown = {name: size / n for name, size in parts.items() if size >= 16 * 4096}
    if breakdown:
        res.note(
            "SQLite bytes per event by table/index: "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(breakdown.items(), key=lambda x: -x[1]))
        )
    if frames != n:
        res.fail(f"sqlite: the catch-up reader got {frames} of {n} events")
    return {
        "bytes_per_event": (after - before) / n,
        "json_bytes_per_event": json_size,
        "catchup_events_per_s": n / seconds,
        "catchup_server_cpu_us": cpu / n * 1e6,
        "file_bytes": after,
        "bytes_per_event_by_table": breakdown,
    }


def measure_redis(home: Path, n: int, res: Result) -> dict[str, Any]:
    """Bytes of Redis memory per stored event (``used_memory`` before and after)."""
    import redis

    services = Path(tempfile.mkdtemp(prefix="kitaru-bench-services-"))
    services.chmod(0o755)
    server = None
    try:
        url = _service("redis", services / "redis")
        client = redis.Redis.from_url(url)
        server = KitaruServer(home / "server.db", extra=["--event-log", url])
        before = int(client.info("memory")["used_memory"])
        exec_id, json_size = _fill(server, n)
        after = int(client.info("memory")["used_memory"])
        cpu0 = proc_cpu_seconds(server.pid)
        frames, seconds = _read_all(server.port, exec_id)
        cpu = proc_cpu_seconds(server.pid) - cpu0
        client.close()
    finally:
        if server is not None:
            server.stop()
        _service("redis", services / "redis", stop=True)
        shutil.rmtree(services, ignore_errors=True)
    if frames != n:
        res.fail(f"redis: the catch-up reader got {frames} of {n} events")
    return {
        "bytes_per_event": (after - before) / n,
        "json_bytes_per_event": json_size,
        "catchup_events_per_s": n / seconds,
        "catchup_server_cpu_us": cpu / n * 1e6,
    }


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    p.add_argument("--backends", default="sqlite,redis", help="comma list of sqlite, redis")
    args = p.parse_args()
    n = args.events or (3_000 if args.smoke else 50_000)
    backends = args.backends.split(",")
    res = Result("storage", args.smoke, params={"events": n, "backends": backends})
    header(f"storage per event, {n:,} progress events", res)
    for backend in backends:
        with tempdir() as home:
            if backend == "sqlite":
                figures = measure_sqlite(home, n, res)
                label = "SQLite bytes on disk"
            elif backend == "redis":
                figures = measure_redis(home, n, res)
                label = "Redis bytes of memory"
            else:
                raise SystemExit(f"unknown backend {backend!r} (sqlite, redis)")
        res.figures[backend] = figures
        per, js = figures["bytes_per_event"], figures["json_bytes_per_event"]
        res.row(
            f"{label} per event",
            per,
            "B",
            baseline=js,
            baseline_name="event JSON",
            target=f"≤ {TARGET_RATIO:g}x the JSON",
            met=per <= TARGET_RATIO * js,
        )
        res.row(
            f"catch-up of the stored events ({backend})", figures["catchup_events_per_s"], "ev/s"
        )
        res.row(
            f"catch-up server CPU per event ({backend})", figures["catchup_server_cpu_us"], "µs"
        )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
