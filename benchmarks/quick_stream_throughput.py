"""Quick figures of the server's SSE throughput: catch-up read and live delivery.

Runs ``kitaru server start`` in a subprocess (so the measuring process does not share its
interpreter lock with the server), then:

* ingest: posts N events in batches of 500 (pre-encoded bodies);
* catch-up: reads the whole stream of the finished execution from the start;
* live: opens a stream on a running execution, posts N events, finishes it, and times the
  stream until ``end`` arrives.

The reader is a raw socket counting frames, so client-side parsing does not cap the figure.

    .venv/bin/python benchmarks/quick_stream_throughput.py [--events 200000]

Against the scale-out backends (docs/deployment.md), e.g. with servers from ``scripts/services/``:

    ... quick_stream_throughput.py --db postgresql://kitaru@127.0.0.1:PORT/kitaru \
        --event-log redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson

from kitaru import _wire

BATCH = 500


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def post_all(url: str, exec_id: str, payloads: list[bytes], producers: int) -> None:
    """Post every batch, from ``producers`` concurrent clients (in order within each)."""

    def work(part: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for body in part:
                c.post(_wire.path_events(exec_id), content=body).raise_for_status()

    threads = [
        threading.Thread(target=work, args=(payloads[i::producers],)) for i in range(producers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    db: Path | str, port: int, event_log: str | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitaru.cli",
            "server",
            "start",
            "--port",
            str(port),
            "--db",
            str(db),
            *(["--event-log", event_log] if event_log else []),
            "--log-level",
            "warning",
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(url + _wire.PATH_HEALTH, timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def bodies(exec_id: str, n: int) -> list[bytes]:
    out = []
    for start in range(0, n, BATCH):
        events = []
        for i in range(start, min(n, start + BATCH)):
            corr = f"kitaru.checkpoint:step:{i // 1000:032x}"
            events.append(
                {
                    "exec_id": exec_id,
                    "kind": "kitaru.checkpoint.progress",
                    "correlation_id": corr,
                    "index": i % 1000,
                    "checkpoint_id": "cp-1",
                    "checkpoint_name": "step",
                    "step_name": "step",
                    "ts": time.time(),
                    "payload": {
                        "kitaru": {
                            "source": "kitaru",
                            "checkpoint_name": "step",
                            "correlation_id": corr,
                        },
                        "message": "working",
                        "data": {"percent": (i % 1000) / 1000, "rows": i},
                    },
                }
            )
        out.append(orjson.dumps(events))
    return out


def new_execution(c: httpx.Client) -> str:
    exec_id = str(uuid.uuid4())
    body = {
        "exec_id": exec_id,
        "flow_name": "bench",
        "flow_ref": None,
        "status": "running",
        "created_at": time.time(),
    }
    c.post(_wire.PATH_EXECUTIONS, json=body).raise_for_status()
    return exec_id


def read_stream(
    port: int, exec_id: str, result: dict[str, float], keep: list[bytes] | None = None
) -> None:
    """Read raw bytes until the end frame; count data frames and bytes.

    With ``keep``, every chunk read is appended to it as well (checked after the clock).
    """
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.sendall(f"GET {_wire.path_stream(exec_id)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    frames = 0
    size = 0
    tail = b""
    first = None
    while True:
        data = sock.recv(1 << 20)
        if not data:
            break
        if first is None:
            first = time.perf_counter()
        size += len(data)
        if keep is not None:
            keep.append(data)
        chunk = tail + data
        frames += chunk.count(b"\nid: ") - tail.count(b"\nid: ")
        if b"event: end\n" in chunk:
            break
        tail = chunk[-16:]
    result["end"] = time.perf_counter()
    result["first"] = first or result["end"]
    result["frames"] = frames
    result["bytes"] = size
    sock.close()


def report(label: str, n: int, wall: float, cpu: float, extra: str = "") -> None:
    # Wall-clock rates depend on how busy the machine is; events per server CPU-second is
    # what one dedicated core would sustain (the server also uses a few SQLite threads).
    print(
        f"{label:9}: {n / wall:9,.0f} events/s wall ({wall:.2f} s), "
        f"{n / max(cpu, 1e-9):9,.0f} events per server CPU-second{extra}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--producers", type=int, default=1, help="concurrent posting clients")
    p.add_argument("--db", default=None, help="server --db (default: a fresh SQLite file)")
    p.add_argument("--event-log", default=None, help="server --event-log (e.g. redis://...)")
    args = p.parse_args()
    n = args.events
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {n} events")
    backends = f"db={'postgresql' if str(args.db).startswith('postgres') else 'sqlite'}"
    print(f"{backends}, event log={(args.event_log or 'the sqlite db').split('://')[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_server(args.db or Path(tmp) / "server.db", port, args.event_log)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as c:
                # ingest + catch-up
                exec_id = new_execution(c)
                payloads = bodies(exec_id, n)
                cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                post_all(url, exec_id, payloads, args.producers)
                ingest = time.perf_counter() - t0
                ingest_cpu = cpu_seconds(proc.pid) - cpu0
                c.post(
                    _wire.path_finish(exec_id),
                    json={"status": "completed", "output": None, "error_type": None},
                )
                res: dict[str, float] = {}
                cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                read_stream(port, exec_id, res)
                catchup = res["end"] - t0
                catchup_cpu = cpu_seconds(proc.pid) - cpu0
                assert res["frames"] == n, res
                report("ingest", n, ingest, ingest_cpu)
                report(
                    "catch-up",
                    n,
                    catchup,
                    catchup_cpu,
                    f", {res['bytes'] / catchup / 1e6:.0f} MB/s",
                )
                # live
                exec_id = new_execution(c)
                payloads = bodies(exec_id, n)
                live: dict[str, float] = {}
                reader = threading.Thread(target=read_stream, args=(port, exec_id, live))
                reader.start()
                time.sleep(0.3)  # let the stream reach its wait
                cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                post_all(url, exec_id, payloads, args.producers)
                c.post(
                    _wire.path_finish(exec_id),
                    json={"status": "completed", "output": None, "error_type": None},
                )
                reader.join(120)
                elapsed = live["end"] - t0
                live_cpu = cpu_seconds(proc.pid) - cpu0
                assert live["frames"] == n, live
                report("live", n, elapsed, live_cpu, " (ingest + delivery, end to end)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
