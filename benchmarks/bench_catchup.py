"""Catch-up, one watcher reading the retained events of a finished execution.

A kitaru server in a subprocess holds ``--events`` retained events (200,000; 10,000 with
``--smoke``) of a finished execution, ingested through its own endpoint beforehand. The figure:
events per second for ``KitaruClient().executions.events(exec_id)`` in this process to yield
every event as an ``ExecutionEvent`` and stop at ``end``. All must arrive, in order, once.

Baseline, same run: the same events as precomputed SSE frames, 100 frames per write, served by
a minimal endpoint (``_raw_server.py``) and read with httpx-sse's ``EventSource.iter_sse()``
(frames only, no JSON decoding). Also reported, for scale: the same raw read plus
``orjson.loads`` of every frame's data.

A third comparison needs no server and no network, so the machine's load hardly moves its
ratio: the watcher and httpx-sse each parse the same stream bytes (kitaru's frames, 100 per
chunk) from an in-memory ``httpx.MockTransport``: what kitaru's client adds per event on top of
SSE parsing (JSON decoding, ``ExecutionEvent``, cursor bookkeeping, the client-side filter).

Targets: ≥ 200,000 events/s and ≥ 0.6 of the raw read.
"""

from __future__ import annotations

import time
import uuid

import httpx
import orjson
from _common import (
    KitaruServer,
    RawServer,
    Result,
    batches,
    header,
    new_running_execution,
    parser,
    run_main,
    tempdir,
    wire_events,
)
from httpx_sse import EventSource

from kitaru import KitaruClient

TARGET_RATE = 200_000
TARGET_RATIO = 0.6


def raw_read(url: str, decode: bool) -> tuple[float, int]:
    """Events per second reading ``/frames`` with httpx-sse, and how many were read."""
    count = 0
    with httpx.Client(base_url=url, timeout=60.0) as client:
        t0 = time.perf_counter()
        with client.stream("GET", "/frames") as resp:
            for sse in EventSource(resp).iter_sse():
                if sse.event == "end":
                    break
                if decode:
                    orjson.loads(sse.data)
                count += 1
        elapsed = time.perf_counter() - t0
    return count / elapsed, count


def _memory_stream(exec_id: str, n: int) -> list[bytes]:
    frames = [
        b"id: %012d\nevent: kitaru.checkpoint.progress\ndata: %b\n\n" % (i + 1, ev)
        for i, ev in enumerate(wire_events(exec_id, n))
    ]
    chunks = [b"retry: 2000\n\n"]
    chunks += [b"".join(frames[i : i + 100]) for i in range(0, n, 100)]
    chunks.append(b'event: end\ndata: {"status":"completed"}\n\n')
    return chunks


def memory_reads(n: int) -> tuple[float, float]:
    """Events per second parsing the same in-memory stream: kitaru's watcher, httpx-sse."""
    exec_id = str(uuid.uuid4())
    chunks = _memory_stream(exec_id, n)

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/info"):
            return httpx.Response(200, json={"streaming": True})
        if path.endswith(exec_id):
            return httpx.Response(200, json={"exec_id": exec_id, "status": "completed"})
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
        )

    transport = httpx.MockTransport(handler)
    client = KitaruClient(server_url="http://127.0.0.1:9")
    t0 = time.perf_counter()
    count = sum(1 for _ in client.executions.events(exec_id, transport=transport))
    kitaru_rate = count / (time.perf_counter() - t0)
    if count != n:
        raise RuntimeError(f"in-memory watch got {count} events, expected {n}")
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as http:
        t0 = time.perf_counter()
        with http.stream("GET", "/stream") as resp:
            count = sum(1 for sse in EventSource(resp).iter_sse() if sse.event != "end")
        raw_rate = count / (time.perf_counter() - t0)
    return kitaru_rate, raw_rate


def kitaru_read(url: str, exec_id: str) -> tuple[float, int, bool, str | None]:
    """Events per second of kitaru's watcher; count, in-order flag and final status."""
    client = KitaruClient(server_url=url)
    count = 0
    in_order = True
    expect = 0
    t0 = time.perf_counter()
    with client.executions.events(exec_id) as watcher:
        for event in watcher:
            if event.index != expect:
                in_order = False
            expect += 1
            count += 1
        status = watcher.final_status
    elapsed = time.perf_counter() - t0
    return count / elapsed, count, in_order, status


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    args = p.parse_args()
    n = args.events or (10_000 if args.smoke else 200_000)
    repeat = 1 if args.smoke else 3
    res = Result("catchup", args.smoke, params={"events": n, "repeat": repeat})
    header("catch-up: one watcher reading a finished execution", res)

    with tempdir() as home:
        raw = RawServer("--frames", str(n))
        server = KitaruServer(home / "server.db")
        try:
            from kitaru.remote import HttpStore

            store = HttpStore(server.url)
            exec_id = new_running_execution(store, "bench_catchup")
            with httpx.Client(base_url=server.url, timeout=60.0) as http:
                for body in batches(wire_events(exec_id, n)):
                    http.post(
                        f"/api/v1/executions/{exec_id}/events",
                        content=body,
                        headers={"content-type": "application/json"},
                    ).raise_for_status()
            store.finish_execution(exec_id, "completed")
            store.close()

            raw_rates, decoded_rates, kitaru_rates = [], [], []
            for _ in range(repeat):
                rate, count = raw_read(raw.url, decode=False)
                raw_rates.append(rate)
                if count != n:
                    res.fail(f"raw read got {count} events, expected {n}")
                rate, count, in_order, status = kitaru_read(server.url, exec_id)
                kitaru_rates.append(rate)
                if count != n or not in_order or status != "completed":
                    res.fail(
                        f"kitaru watcher got {count} events (expected {n}), in order: "
                        f"{in_order}, final status {status!r}"
                    )
                decoded_rates.append(raw_read(raw.url, decode=True)[0])
            memory = [memory_reads(min(n, 50_000)) for _ in range(repeat)]
        finally:
            server.stop()
            raw.stop()

    # Medians of the alternating runs.
    raw_rate = sorted(raw_rates)[len(raw_rates) // 2]
    kitaru_rate = sorted(kitaru_rates)[len(kitaru_rates) // 2]
    decoded = sorted(decoded_rates)[len(decoded_rates) // 2]
    mem_kitaru = sorted(m[0] for m in memory)[len(memory) // 2]
    mem_raw = sorted(m[1] for m in memory)[len(memory) // 2]
    res.figures.update(
        {
            "memory_kitaru_rates": [m[0] for m in memory],
            "memory_raw_rates": [m[1] for m in memory],
            "raw_rates": raw_rates,
            "raw_decoded_rates": decoded_rates,
            "kitaru_rates": kitaru_rates,
        }
    )
    res.row(
        "catch-up, kitaru watcher",
        kitaru_rate,
        "ev/s",
        baseline=raw_rate,
        baseline_name="raw httpx-sse",
        target=f"≥ {TARGET_RATE:,} ev/s and ≥ {TARGET_RATIO:g}x raw",
        met=kitaru_rate >= TARGET_RATE and kitaru_rate / raw_rate >= TARGET_RATIO,
    )
    res.row(
        "raw httpx-sse + orjson.loads per frame",
        decoded,
        "ev/s",
        baseline=raw_rate,
        baseline_name="raw httpx-sse",
    )
    res.row(
        "in-memory parse, kitaru watcher (client CPU only)",
        mem_kitaru,
        "ev/s",
        baseline=mem_raw,
        baseline_name="httpx-sse",
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
