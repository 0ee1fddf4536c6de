"""The publisher's counters tell the truth, and ``flush()`` waits for what it should."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import thread_servers
from kitaru import _wire
from kitaru.events._codec import EncodedEvent
from kitaru.events._models import EventRecord
from kitaru.events._publisher import Publisher
from kitaru.remote import HttpTransport

CORR = "kitaru.checkpoint:cp:" + "0" * 32


class _Source:
    checkpoint_id = "cp-1"
    name = "cp"
    step_name = "cp"

    def __init__(self, exec_id: str) -> None:
        self.exec_id = exec_id
        self.meta = {"source": "kitaru", "correlation_id": CORR}


def _record(exec_id: str, i: int, body: dict[str, Any] | None = None) -> EventRecord:
    return EventRecord(
        _Source(exec_id), "custom.note", CORR, i, body or {"message": f"m{i}"}, 0.0, False
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    make = thread_servers(tmp_path, ping_interval=0.5)
    start = next(make)
    yield start()
    next(make, None)


@pytest.mark.server
def test_events_a_server_refuses_for_good_are_counted_rejected_not_sent(server: Any) -> None:
    known = "known-execution"
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post(
            _wire.PATH_EXECUTIONS,
            json={"exec_id": known, "flow_name": "f", "status": "running", "created_at": 1.0},
        )
        assert r.status_code == 201, r.text
    pub = Publisher(HttpTransport(server.url))
    try:
        # An execution the server does not know: 404, a permanent refusal of every batch.
        for i in range(10):
            pub.submit(_record("unknown-execution", i))
        for i in range(5):
            pub.submit(_record(known, i))
        assert pub.flush(10)
        stats = pub.stats()
    finally:
        pub.shutdown(1)
    assert stats.rejected == 10
    assert stats.sent == 5
    assert stats.dropped == 0
    with httpx.Client(base_url=server.url, timeout=10) as c:
        snap = c.get(_wire.path_snapshot(known)).json()
    assert len(snap["timeline"]) == 5


def test_unencodable_events_are_counted_as_such_not_as_oversize() -> None:
    class Keep:
        def __init__(self) -> None:
            self.sent: list[EncodedEvent] = []

        def send(self, batch: Sequence[EncodedEvent]) -> None:
            self.sent.extend(batch)

        def shutdown(self) -> None:
            pass

    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    transport = Keep()
    pub = Publisher(transport)
    try:
        pub.submit(_record("e", 0, {"data": deep}))
        pub.submit(_record("e", 1, {"message": "x" * 100_000}))
        pub.submit(_record("e", 2))
        assert pub.flush(5)
        stats = pub.stats()
    finally:
        pub.shutdown(1)
    assert (stats.dropped_unencodable, stats.dropped_oversize, stats.sent) == (1, 1, 1)
    assert [e.data["index"] for e in transport.sent] == [2]


def test_flush_never_returns_before_the_events_it_waits_for() -> None:
    delivered: set[int] = set()
    lock = threading.Lock()

    class Slowish:
        def send(self, batch: Sequence[EncodedEvent]) -> None:
            with lock:
                delivered.update(int(e.data["index"]) for e in batch)

        def shutdown(self) -> None:
            pass

    pub = Publisher(Slowish())
    failures: list[int] = []
    threads_n, rounds = 8, 150

    def worker(t: int) -> None:
        for k in range(rounds):
            i = t * rounds + k
            pub.submit(_record("e", i))
            if not pub.flush(10):
                failures.append(-i)
                continue
            with lock:
                if i not in delivered:
                    failures.append(i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    pub.shutdown(1)
    assert failures == []
    assert len(delivered) == threads_n * rounds
