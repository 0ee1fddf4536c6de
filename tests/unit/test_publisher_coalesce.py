"""The sender's batching: what comes while a request is in flight shares the next request,
and an event that finds no request in flight goes at once, alone.

The publisher's clock is a fake one that never moves, and the transports hold requests open
until the test lets them go, so what is batched together is decided by what was in flight,
never by measured time.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Sequence

import orjson
import pytest
from test_publisher import _record

from kitaru.events import _publisher
from kitaru.events._codec import EncodedEvent
from kitaru.events._models import EventRecord
from kitaru.events._publisher import Publisher


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
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.batches) >= n, timeout), self.batches
            return [list(b) for b in self.batches]


class Gate(BatchRecorder):
    """Holds the sends it is told to hold until released (``hold`` indexes first in a batch)."""

    def __init__(self, hold: set[int]) -> None:
        super().__init__()
        self.hold = hold
        self.entered = {i: threading.Event() for i in hold}
        self.release = {i: threading.Event() for i in hold}

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        first = int(batch[0].data["index"])
        if first in self.hold:
            self.entered[first].set()
            assert self.release[first].wait(10)
        super().send(batch)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    frozen = types.SimpleNamespace(monotonic=lambda: 1_000.0)
    monkeypatch.setattr(_publisher, "time", frozen)
    yield


def test_events_that_come_while_a_request_is_in_flight_share_the_next_one() -> None:
    transport = Gate({0})
    pub = Publisher(transport)
    try:
        pub.submit(_record(0))
        assert transport.entered[0].wait(10)
        for i in range(1, 6):
            pub.submit(_record(i))
            threading.Event().wait(0.01)  # ten 1 ms polls apart: not gathered by the poll
        assert transport.batches == []
        transport.release[0].set()
        # One request for everything that came meanwhile, without flush().
        assert transport.wait_for(2) == [[0], [1, 2, 3, 4, 5]]
        assert pub.stats().sent == 6
    finally:
        pub.shutdown(1)


def test_events_taken_ahead_are_topped_up_with_what_came_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # When a request starts with events queued, the sender takes them at once as the next
    # batch; what comes after that, while the request is still in flight, goes in that same
    # next request, not in one more after it.
    encoding = threading.Event()
    go = threading.Event()
    real = _publisher.encode_record

    def encode(rec: EventRecord) -> EncodedEvent:
        if rec.index == 1:
            encoding.set()
            assert go.wait(10)
        return real(rec)

    monkeypatch.setattr(_publisher, "encode_record", encode)
    transport = Gate({1})
    pub = Publisher(transport)
    try:
        pub.submit(_record(1))
        assert encoding.wait(10)
        pub.submit(_record(2))  # queued when [1] starts: taken ahead
        go.set()
        assert transport.entered[1].wait(10)
        threading.Event().wait(0.05)
        pub.submit(_record(3))  # came while [1] is in flight, after [2] was taken
        pub.submit(_record(4, lifecycle=True))
        transport.release[1].set()
        assert pub.flush(10)
        assert transport.batches == [[1], [2, 3, 4]]
    finally:
        pub.shutdown(1)


def test_an_event_right_after_a_send_goes_at_once() -> None:
    transport = BatchRecorder()
    pub = Publisher(transport)
    try:
        for i in range(4):
            # Each right after the previous request returned: sent alone, nothing gathered.
            pub.submit(_record(i))
            assert transport.wait_for(i + 1)[-1] == [i]
        assert pub.stats().sent == 4
    finally:
        pub.shutdown(1)


def test_flush_and_shutdown_send_what_is_queued_without_waiting() -> None:
    transport = BatchRecorder()
    pub = Publisher(transport)
    pub.submit(_record(0))
    transport.wait_for(1)
    pub.submit(_record(1))
    assert pub.flush(10)
    pub.submit(_record(2))
    pub.submit(_record(3, lifecycle=True))
    assert pub.shutdown(10)
    assert [i for b in transport.wait_for(3) for i in b] == [0, 1, 2, 3]


class _Abort(BaseException):
    """Escapes the per-event ``except Exception`` of the encoding, as an interrupt would."""


def test_a_next_batch_whose_encoding_breaks_off_is_still_sent_in_order_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # [2, 3, 4] are queued when [1] starts, so the helper thread takes and encodes them while
    # [1] is in flight; when that encoding breaks off at [3], what was encoded ([2]) is kept as
    # the next batch and what it did not reach ([3], [4]) goes back to the queue (and tops that
    # batch up again): nothing
    # lost, nothing twice, in order.
    real = _publisher.encode_record
    encoding = threading.Event()
    go = threading.Event()
    broke = threading.Event()

    def encode(rec: EventRecord) -> EncodedEvent:
        if rec.index == 1:
            encoding.set()
            assert go.wait(10)
        if rec.index == 3 and not broke.is_set():
            broke.set()
            raise _Abort
        return real(rec)

    monkeypatch.setattr(_publisher, "encode_record", encode)
    transport = BatchRecorder()
    pub = Publisher(transport)
    try:
        pub.submit(_record(1))
        assert encoding.wait(10)
        for i in (2, 3, 4):
            pub.submit(_record(i))
        go.set()
        assert pub.flush(10)
        assert broke.is_set()
        assert transport.batches == [[1], [2, 3, 4]]  # the next batch topped up as usual
        stats = pub.stats()
        assert stats.sent == 4 and stats.dropped == 0 and stats.queued == 0
    finally:
        pub.shutdown(1)


class _Probe:
    """Notes the name of the thread that frees it (held in an event's data)."""

    def __init__(self, freed: list[str]) -> None:
        self.freed = freed

    def __del__(self) -> None:
        self.freed.append(threading.current_thread().name)


def _probed(i: int, freed: list[str]) -> EventRecord:
    return EventRecord(
        _record(i).source, "k.progress", "c", i, {"message": "m", "data": {"p": _Probe(freed)}}, 0.0
    )


class JsonRecorder:
    """Keeps each sent event's index, read only as the HTTP transport reads an event (its
    JSON), so the events keep their records as they do on the way to a server."""

    def __init__(self) -> None:
        self.indexes: list[int] = []

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        self.indexes.extend(int(orjson.loads(e.json)["index"]) for e in batch)

    def shutdown(self) -> None:
        pass


class JsonGate(JsonRecorder):
    """A :class:`JsonRecorder` that holds the first send until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        if not self.indexes:
            self.entered.set()
            assert self.release.wait(10)
        super().send(batch)


def test_a_sent_batch_is_freed_off_the_sender_while_the_next_request_is_in_flight() -> None:
    # With a backlog, the helper thread frees the batch sent before (its events and the records
    # they hold) while the next request is in flight, so the sender goes from one answer to
    # the next request without that work (benchmarks/README.md, "Throughput").
    freed: list[str] = []
    transport = JsonGate()
    pub = Publisher(transport)
    try:
        pub.submit(_probed(0, freed))
        assert transport.entered.wait(10)
        for i in range(1, 1_200):  # more than two batches wait while [0] is in flight
            pub.submit(_record(i))
        transport.release.set()
        assert pub.flush(10)
        assert transport.indexes == list(range(1_200))
        assert freed == ["kitaru-publisher-encode"]
    finally:
        pub.shutdown(1)


def test_the_last_batch_is_not_kept_once_nothing_is_waiting() -> None:
    # Nothing else to send: the sent batch (and whatever user data its records hold) is freed
    # at once, not kept until the next event comes.
    freed: list[str] = []
    transport = JsonGate()  # held, so this thread's reference is gone before it is sent
    pub = Publisher(transport)
    try:
        pub.submit(_probed(0, freed))
        assert transport.entered.wait(10)
        transport.release.set()
        assert pub.flush(10)
        deadline = threading.Event()
        for _ in range(100):
            if freed:
                break
            deadline.wait(0.01)
        assert freed == ["kitaru-publisher"]
    finally:
        pub.shutdown(1)
