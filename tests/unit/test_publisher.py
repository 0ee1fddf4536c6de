"""The publisher: bounded, non-blocking, never breaks a checkpoint."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Sequence

import pytest

import kitaru
from kitaru import checkpoint, flow
from kitaru.events import InMemoryTransport, TransportDisabledError
from kitaru.events._codec import EncodedEvent
from kitaru.events._models import EventRecord
from kitaru.events._publisher import Publisher
from kitaru.runtime import Runtime, set_runtime
from kitaru.store import SqliteStore


class BlockingTransport:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.sent: list[dict] = []

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        self.entered.set()
        self.release.wait(30)
        self.sent.extend(e.data for e in batch)

    def shutdown(self) -> None:
        self.release.set()


class RaisingTransport:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        self.calls += 1
        raise ConnectionError("backend down")

    def shutdown(self) -> None:
        pass


class _Source:
    exec_id = "e"
    checkpoint_id = None
    name = "cp"
    step_name = "cp"
    meta = {"source": "kitaru", "correlation_id": "c"}


def _record(i: int, *, lifecycle: bool = False, kind: str = "k.progress") -> EventRecord:
    return EventRecord(_Source(), kind, "c", i, {"message": f"m{i}"}, 0.0, lifecycle)


@pytest.fixture
def runtime_with(tmp_path):
    made: list[Runtime] = []

    def make(transport, **kw) -> Runtime:
        rt = Runtime(SqliteStore(tmp_path / f"db{len(made)}.sqlite"), transport, **kw)
        made.append(rt)
        set_runtime(rt)
        return rt

    yield make
    set_runtime(None)
    for rt in made:
        rt.shutdown(timeout=0.1)


@checkpoint
def chatty(n: int) -> str:
    for i in range(n):
        kitaru.progress(f"step {i}", percent=i / max(1, n))
    return "done"


@flow
def chatty_flow(n: int) -> str:
    return chatty(n)


def test_blocking_transport_never_delays_beyond_the_bounded_flush(runtime_with, monkeypatch):
    monkeypatch.setenv("KITARU_FLUSH_TIMEOUT", "0.2")
    transport = BlockingTransport()
    rt = runtime_with(transport, queue_size=100)
    start = time.monotonic()
    assert chatty_flow(1000) == "done"
    elapsed = time.monotonic() - start
    # Only the pre-finish flush (0.8 s) waits; generous slack.
    assert elapsed < 10
    stats = rt.publisher.stats()
    assert stats.queued <= 100
    assert stats.dropped_overflow > 0
    assert rt.publisher.flush(timeout=0.05) is False
    transport.release.set()
    assert rt.publisher.flush(timeout=10) is True
    kinds = [d["kind"] for d in transport.sent]
    # Lifecycle events survive a burst of progress.
    assert kinds[-1] == "kitaru.checkpoint.returned"
    assert "kitaru.checkpoint.started" in kinds


def test_checkpoints_never_wait_for_their_terminal_events(runtime_with, monkeypatch):
    # A per-checkpoint wait would cost each of these checkpoints the whole flush timeout while
    # the transport hangs; only the flow's end waits (once, bounded), and it is timed apart.
    monkeypatch.setenv("KITARU_FLUSH_TIMEOUT", "0.5")
    transport = BlockingTransport()
    rt = runtime_with(transport)
    inside: list[float] = []

    @checkpoint
    def quick() -> None:
        pass

    @flow
    def many() -> None:
        for _ in range(20):
            quick()
        assert transport.entered.wait(5)  # the sender is stuck in a send
        start = time.monotonic()
        for _ in range(20):
            quick()
        inside.append(time.monotonic() - start)

    many()
    assert inside[0] < 5.0  # 20 waits of 0.5 s would be 10 s
    transport.release.set()
    assert rt.publisher.flush(timeout=10)
    kinds = [d["kind"] for d in transport.sent]
    assert kinds.count("kitaru.checkpoint.returned") == 40


def test_raising_transport_keeps_results_and_skips_flush_when_unhealthy(runtime_with, caplog):
    transport = RaisingTransport()
    rt = runtime_with(transport, queue_size=50)
    with caplog.at_level(logging.WARNING, logger="kitaru"):
        assert chatty_flow(200) == "done"
        deadline = time.monotonic() + 5
        while rt.publisher.healthy and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not rt.publisher.healthy
        start = time.monotonic()
        assert chatty_flow(10) == "done"
        # A checkpoint never waits for its events, and a failing backend is given one try.
        assert time.monotonic() - start < rt.flush_timeout * 4
    assert transport.calls >= 1
    assert rt.publisher.stats().send_failures >= 1
    assert rt.publisher.stats().queued <= 50
    warnings = [r for r in caplog.records if "delivery failed" in r.getMessage()]
    assert len(warnings) == 1  # one warning, not one per retry


def test_queue_bound_and_drop_policy():
    transport = BlockingTransport()
    pub = Publisher(transport, max_queue=10)
    pub.submit(_record(0, lifecycle=True, kind="kitaru.checkpoint.started"))
    assert transport.entered.wait(5)  # the sender holds record 0 in flight
    for i in range(1, 20):
        pub.submit(_record(i))
    pub.submit(_record(20, lifecycle=True, kind="kitaru.checkpoint.returned"))
    stats = pub.stats()
    assert stats.queued == 10
    assert stats.dropped_overflow == 10
    assert stats.dropped_lifecycle == 0
    transport.release.set()
    assert pub.flush(5)
    indexes = [d["index"] for d in transport.sent]
    assert indexes[0] == 0
    assert indexes[-1] == 20
    assert indexes == sorted(indexes)
    assert pub.stats().dropped == 10
    pub.shutdown(1)


def test_lifecycle_dropped_only_when_nothing_else_is_left():
    transport = BlockingTransport()
    pub = Publisher(transport, max_queue=3)
    pub.submit(_record(0, lifecycle=True))
    assert transport.entered.wait(5)
    for i in range(1, 5):
        pub.submit(_record(i, lifecycle=True))
    stats = pub.stats()
    assert stats.queued == 3
    assert stats.dropped_lifecycle == 1
    transport.release.set()
    pub.shutdown(5)


def test_concurrent_submitters_into_a_full_queue_account_for_every_event():
    # A backend that is down: every submit finds the queue full and drops the oldest
    # non-lifecycle event. Threads switching every microsecond interleave their submits.
    transport = BlockingTransport()
    pub = Publisher(transport, max_queue=50)
    pub.submit(_record(0, lifecycle=True, kind="kitaru.checkpoint.started"))
    assert transport.entered.wait(5)  # the sender holds record 0 in flight
    pub.submit(_record(1, lifecycle=True, kind="kitaru.checkpoint.started"))
    threads_n, each = 4, 2_000

    def worker(n: int) -> None:
        for i in range(each):
            pub.submit(_record(10_000 * (n + 1) + i))

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    pub.submit(_record(2, lifecycle=True, kind="kitaru.checkpoint.returned"))
    stats = pub.stats()
    assert stats.queued == 50
    assert stats.dropped_lifecycle == 0
    assert stats.dropped_overflow == threads_n * each + 2 - 50
    transport.release.set()
    assert pub.flush(5)
    sent = [d["index"] for d in transport.sent]
    assert len(sent) == 1 + 50
    assert sent[:2] == [0, 1] and sent[-1] == 2  # both lifecycle events kept, in order
    for n in range(threads_n):  # each thread's survivors in its own order
        mine = [i for i in sent if 10_000 * (n + 1) <= i < 10_000 * (n + 2)]
        assert mine == sorted(mine)
    assert len(sent) + pub.stats().dropped == threads_n * each + 3
    pub.shutdown(1)


def test_flush_returns_false_on_timeout_and_true_without_backend():
    transport = BlockingTransport()
    pub = Publisher(transport, max_queue=10)
    assert pub.flush(0.01) is True  # nothing queued
    pub.submit(_record(0))
    assert pub.flush(0.05) is False
    transport.release.set()
    assert pub.flush(5) is True
    pub.shutdown(1)
    assert pub.shutdown(1) is True  # idempotent


def test_disabled_transport_turns_publishing_off_with_one_warning(runtime_with, caplog):
    class Disabled:
        calls = 0

        def send(self, batch: Sequence[EncodedEvent]) -> None:
            Disabled.calls += 1
            raise TransportDisabledError("server says streaming is disabled")

        def shutdown(self) -> None:
            pass

    rt = runtime_with(Disabled())
    with caplog.at_level(logging.WARNING, logger="kitaru"):
        assert chatty_flow(5) == "done"
        assert rt.publisher.flush(2) is True
        assert chatty_flow(5) == "done"
    assert rt.publisher.disabled
    assert Disabled.calls == 1
    assert len([r for r in caplog.records if "turned off" in r.getMessage()]) == 1


def test_oversize_event_dropped_with_one_warning_index_consumed(kitaru_events, caplog):
    @checkpoint
    def big() -> None:
        kitaru.progress("small")
        kitaru.progress("huge", blob="x" * (70 * 1024))
        kitaru.progress("after")

    @flow
    def f() -> None:
        big()

    with caplog.at_level(logging.WARNING, logger="kitaru"):
        f()
        events = kitaru_events.events
    assert [e.index for e in events] == [0, 1, 3, 4]
    assert kitaru_events.runtime.publisher.stats().dropped_oversize == 1
    assert len([r for r in caplog.records if "64 KiB" in r.getMessage()]) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_fork_child_starts_with_an_empty_queue():
    transport = BlockingTransport()
    pub = Publisher(transport, max_queue=100)
    pub.submit(_record(0))
    assert transport.entered.wait(5)
    pub.submit(_record(1))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            child_transport = InMemoryTransport()
            pub._transport = child_transport
            pub.submit(_record(99))
            ok = pub.flush(5)
            sent = [d["index"] for d in child_transport.raw]
            os.write(write_fd, f"{ok}:{sent}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    result = os.read(read_fd, 1000).decode()
    os.close(read_fd)
    assert status == 0
    assert result == "True:[99]"
    transport.release.set()
    pub.shutdown(5)


def test_publish_cost_is_on_the_sender_not_the_caller(runtime_with):
    """JSON-safety happens on the sender: a value whose conversion is slow is not touched
    on the calling thread (checked by where the conversion runs)."""
    seen_threads: list[str] = []

    class Probe:
        def model_dump(self, mode: str = "python") -> dict:
            seen_threads.append(threading.current_thread().name)
            return {"ok": True}

    transport = InMemoryTransport()
    rt = runtime_with(transport)

    @checkpoint
    def step() -> None:
        kitaru.progress("probe", value=Probe())

    @flow
    def f() -> None:
        step()

    f()
    assert rt.publisher.flush(5)
    assert seen_threads == ["kitaru-publisher"]
    (progress,) = [d for d in transport.raw if d["kind"].endswith("progress")]
    assert progress["payload"]["data"]["value"] == {"ok": True}


class SlowFlakyTransport:
    """Sends take a while; every third one fails. Records overlap and order."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        with self.lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            call = self.calls
        try:
            time.sleep(0.003)
            if call % 3 == 0:
                raise ConnectionError("flaky")
            self.sent.extend(int(e.data["index"]) for e in batch)
        finally:
            with self.lock:
                self.active -= 1

    def shutdown(self) -> None:
        pass


def test_encoding_overlaps_the_send_but_batches_stay_in_order_one_at_a_time():
    transport = SlowFlakyTransport()
    pub = Publisher(transport, max_queue=100_000)
    n = 5_000
    for i in range(n):
        pub.submit(_record(i))
        if i % 500 == 0:
            time.sleep(0.002)  # let the sender start while more keeps coming
    assert pub.flush(20)
    assert transport.sent == list(range(n))  # each once, in submission order
    assert transport.max_active == 1  # never two batches in flight
    stats = pub.stats()
    assert stats.sent == n and stats.dropped == 0 and stats.send_failures >= 1
    pub.shutdown(1)
