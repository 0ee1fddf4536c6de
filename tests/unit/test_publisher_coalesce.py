"""The sender's coalescing: steady traffic shares requests, an isolated event goes at once.

The window is made a minute long and the publisher's clock is a fake one the test moves, so
whether a send waited is decided by what was batched together, never by measured time.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Sequence

import pytest
from test_publisher import _record

from kitaru.events import _publisher
from kitaru.events._codec import EncodedEvent
from kitaru.events._publisher import Publisher

WINDOW = 60.0


class BatchRecorder:
    """Keeps each batch's indexes; ``wait_for(n)`` until ``n`` batches arrived."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.cond = threading.Condition()

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        with self.cond:
            self.batches.append([int(e.data["index"]) for e in batch])
            self.cond.notify_all()

    def shutdown(self) -> None:
        pass

    def wait_for(self, n: int, timeout: float = 10.0) -> list[list[int]]:
        # Far shorter than the window: a send that waited the window would not arrive in time.
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.batches) >= n, timeout), self.batches
            return [list(b) for b in self.batches]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(_publisher, "_COALESCE", WINDOW)
    monkeypatch.setattr(_publisher, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    yield fake


def test_steady_events_share_one_request_and_an_isolated_one_goes_at_once(
    clock: FakeClock,
) -> None:
    transport = BatchRecorder()
    pub = Publisher(transport)
    try:
        pub.submit(_record(0))
        # The first event after a quiet spell is sent alone, without waiting the window.
        assert transport.wait_for(1) == [[0]]
        # Steady traffic right after that send: gathered for the window, not sent one by one
        # (with the 1 ms poll alone, events this far apart would each get a request).
        for i in range(1, 6):
            pub.submit(_record(i))
            threading.Event().wait(0.01)
        assert transport.batches == [[0]]
        # flush() never waits the window out.
        assert pub.flush(10)
        assert transport.wait_for(2) == [[0], [1, 2, 3, 4, 5]]
        # After a quiet spell as long as the window, an event goes at once again.
        clock.now += WINDOW
        pub.submit(_record(6))
        assert transport.wait_for(3) == [[0], [1, 2, 3, 4, 5], [6]]
        assert pub.stats().sent == 7
    finally:
        pub.shutdown(1)


def test_a_send_slower_than_the_window_waits_nothing(clock: FakeClock) -> None:
    started = threading.Event()
    release = threading.Event()
    recorder = BatchRecorder()

    class SlowFirst(BatchRecorder):
        def send(self, batch: Sequence[EncodedEvent]) -> None:
            if not started.is_set():
                started.set()
                # The request outlasts the window (on the publisher's clock).
                clock.now += WINDOW
                assert release.wait(10)
            recorder.send(batch)

    pub = Publisher(SlowFirst())
    try:
        pub.submit(_record(0))
        assert started.wait(10)
        for i in range(1, 4):
            pub.submit(_record(i))
        release.set()
        # Sent as soon as the slow request returned, without flush() and within the wait.
        batches = recorder.wait_for(2)
        assert [i for b in batches for i in b] == [0, 1, 2, 3]
        assert batches[0] == [0]
    finally:
        pub.shutdown(1)


def test_shutdown_sends_what_is_gathered_without_waiting(clock: FakeClock) -> None:
    transport = BatchRecorder()
    pub = Publisher(transport)
    pub.submit(_record(0))
    transport.wait_for(1)
    pub.submit(_record(1))
    pub.submit(_record(2, lifecycle=True))
    assert pub.shutdown(10)
    assert [i for b in transport.wait_for(2) for i in b] == [0, 1, 2]
