"""Resume through a proxy that cuts the stream every few hundred events (real server)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from _kitaru_server import new_execution, start, wire_event
from _proxy import CuttingProxy

from kitaru import KitaruClient
from kitaru.remote import HttpStore, HttpTransport

pytestmark = pytest.mark.server

TOTAL = 10_000
BATCH = 250


def produce(url: str, exec_id: str, corr: str, started: threading.Event) -> None:
    """Post TOTAL events in batches while the watcher reads, then end the execution."""
    store = HttpStore(url, retry_seconds=10)
    transport = HttpTransport(url)
    try:
        started.wait(10)
        for first in range(0, TOTAL, BATCH):
            transport.send([wire_event(exec_id, i, corr=corr) for i in range(first, first + BATCH)])
        store.finish_execution(exec_id, "completed")
    finally:
        transport.shutdown()
        store.close()


def test_every_event_exactly_once_in_cursor_order_across_cuts(tmp_path: Path) -> None:
    server = start(tmp_path)
    exec_id = str(uuid.uuid4())
    corr = f"kitaru.checkpoint:producer:{uuid.uuid4().hex}"
    store = HttpStore(server.url)
    new_execution(store, exec_id)
    started = threading.Event()
    producer = threading.Thread(target=produce, args=(server.url, exec_id, corr, started))
    try:
        with CuttingProxy(server.port, cut_every=(200, 400)) as proxy:
            producer.start()
            watcher = KitaruClient(proxy.url).executions.events(
                exec_id, backoff_initial=0.01, backoff_max=0.05, max_outage=30
            )
            started.set()
            seen = []
            for event in watcher:
                seen.append(event)
            producer.join(30)
            assert watcher.final_status == "completed"
            # Every event exactly once, in order, and cursors never repeat.
            assert [e.index for e in seen] == list(range(TOTAL))
            cursors = [e.cursor for e in seen]
            assert len(set(cursors)) == TOTAL and None not in cursors
            # Live delivery really was cut many times, and every reconnect resumed from a
            # cursor the watcher had seen (never from the start, never from an index).
            assert proxy.cuts >= 10
            resumes = proxy.last_event_ids()
            assert len(resumes) == proxy.cuts + 1
            assert resumes[0] is None
            position = {c: i for i, c in enumerate(cursors)}
            resumed_at = [position[c] for c in resumes[1:]]  # KeyError: an unknown cursor
            assert resumed_at == sorted(resumed_at)
    finally:
        producer.join(30)
        store.close()
        server.stop()


def test_resume_in_a_new_watch_with_since(tmp_path: Path) -> None:
    server = start(tmp_path)
    exec_id = str(uuid.uuid4())
    corr = f"kitaru.checkpoint:producer:{uuid.uuid4().hex}"
    store = HttpStore(server.url)
    transport = HttpTransport(server.url)
    try:
        new_execution(store, exec_id)
        transport.send([wire_event(exec_id, i, corr=corr) for i in range(20)])
        store.finish_execution(exec_id, "completed")
        client = KitaruClient(server.url)
        first = client.executions.events(exec_id)
        head = [next(first) for _ in range(7)]
        first.close()
        rest = list(client.executions.events(exec_id, since=head[-1].cursor))
        assert [e.index for e in head + rest] == list(range(20))
    finally:
        transport.shutdown()
        store.close()
        server.stop()
