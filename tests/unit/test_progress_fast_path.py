"""``progress()``'s inlined path on the calling thread builds what the general path builds.

``progress()`` checks its common arguments inline, hands the caller's keyword dictionary on as
the event's ``data`` and the scope fills the record's slots without its ``__init__``
(``benchmarks/README.md``, "progress() on the calling thread"); these tests pin that the result
is the same event as before, with the same cancellation point (concurrent threads:
``test_fanout.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

import kitaru
from kitaru import checkpoint, flow
from kitaru.events._models import EventRecord
from kitaru.exceptions import KitaruCancelledError
from kitaru.runtime import Runtime, RuntimeObserver, current_checkpoint, set_runtime
from kitaru.store import SqliteStore
from kitaru.testing import capture_events


class Records(RuntimeObserver):
    """Keeps every record the scope hands to observers."""

    def __init__(self) -> None:
        self.records: list[EventRecord] = []

    def on_event(self, record: Any, scope: Any) -> None:
        self.records.append(record)


def _slots(record: EventRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in EventRecord.__slots__}


def test_the_scope_fills_every_slot_the_constructor_fills() -> None:
    seen = Records()

    @checkpoint
    def step() -> None:
        kitaru.progress("half", percent=0.5, item=1)
        kitaru.events.publish("custom.kind", {"a": 1}, correlation_id="other", index=7)

    @flow
    def f() -> None:
        step()

    with capture_events(observers=(seen,)):
        f()
    assert [r.kind for r in seen.records] == [
        "kitaru.checkpoint.started",
        "kitaru.checkpoint.progress",
        "custom.kind",
        "kitaru.checkpoint.returned",
    ]
    for record in seen.records:
        rebuilt = EventRecord(
            record.source,
            record.kind,
            record.correlation_id,
            record.index,
            record.body,
            record.ts,
            record.lifecycle,
        )
        rebuilt.seq = record.seq
        # Every slot is set (getattr of an unset slot raises) and equals the constructor's.
        assert _slots(record) == _slots(rebuilt)
    started, progress, custom, returned = seen.records
    assert started.lifecycle and returned.lifecycle
    assert not progress.lifecycle and not custom.lifecycle
    assert progress.correlation_id == started.correlation_id
    assert custom.correlation_id == "other"
    assert [started.index, progress.index, custom.index, returned.index] == [0, 1, 7, 8]
    assert started.ts <= progress.ts <= custom.ts <= returned.ts


def test_without_publishing_an_observer_still_gets_complete_records(tmp_path: Any) -> None:
    # Local database mode with an observer: records are built but never queued, so nothing
    # but the scope sets their slots.
    seen = Records()
    runtime = Runtime(SqliteStore(tmp_path / "local.db"), None, mode="local")
    runtime.add_observer(seen)
    previous = set_runtime(runtime)

    @checkpoint
    def step() -> None:
        kitaru.progress("half", percent=0.5)

    @flow
    def f() -> None:
        step()

    try:
        f()
    finally:
        set_runtime(previous)
        runtime.shutdown()
    assert [(r.kind, r.index) for r in seen.records] == [
        ("kitaru.checkpoint.started", 0),
        ("kitaru.checkpoint.progress", 1),
        ("kitaru.checkpoint.returned", 2),
    ]
    assert [_slots(r)["seq"] for r in seen.records] == [0, 0, 0]
    assert seen.records[1].body == {"message": "half", "data": {"percent": 0.5}}


@pytest.mark.parametrize(
    ("kwargs", "data"),
    [
        ({}, None),
        ({"percent": 0.25}, {"percent": 0.25}),
        ({"percent": 1}, {"percent": 1.0}),
        ({"item": 3}, {"item": 3}),
        ({"item": 3, "percent": 0, "name": "x"}, {"item": 3, "name": "x", "percent": 0.0}),
    ],
)
def test_progress_data_is_the_fields_then_percent_as_a_float(
    kwargs: dict[str, Any], data: dict[str, Any] | None
) -> None:
    @checkpoint
    def step() -> None:
        kitaru.progress("working", **kwargs)

    @flow
    def f() -> None:
        step()

    with capture_events() as capture:
        f()
    (event,) = [e for e in capture.events if e.kind == "kitaru.checkpoint.progress"]
    if data is None:
        assert "data" not in event.payload
    else:
        got = event.payload["data"]
        assert got == data
        assert list(got) == list(data)  # the same key order as a copy would have
        if "percent" in data:
            assert type(got["percent"]) is float
    assert event.payload["message"] == "working"


def test_a_cancelled_progress_raises_before_taking_an_index() -> None:
    seen = Records()

    @checkpoint
    def step() -> None:
        kitaru.progress("before")
        scope = current_checkpoint()
        assert scope is not None
        scope.run.cancel("requested")
        with pytest.raises(KitaruCancelledError):
            kitaru.progress("after", percent=0.5, item=1)
        scope.run.cancel_reason = None  # let the checkpoint finish to see its last index
        kitaru.progress("resumed")

    @flow
    def f() -> None:
        step()

    with capture_events(observers=(seen,)):
        f()
    progress = [r for r in seen.records if r.kind == "kitaru.checkpoint.progress"]
    assert [(r.body["message"], r.index) for r in progress] == [("before", 1), ("resumed", 2)]
