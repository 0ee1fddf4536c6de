"""The product page's examples, copied unchanged, publish the documented events."""

from __future__ import annotations

import re

import kitaru
from kitaru import checkpoint, flow

CORRELATION = re.compile(r"^kitaru\.checkpoint:(?P<name>[^:]+):[0-9a-f]{32}$")
META_KEYS = {
    "source",
    "checkpoint_name",
    "correlation_id",
    "execution_id",
    "checkpoint_id",
    "checkpoint_type",
    "flow_name",
    "attempt",
    "trace_id",
}


@checkpoint
def build_report(topic: str) -> str:
    kitaru.progress("Collecting notes", percent=0.25, topic=topic)
    notes = f"Notes about {topic}"

    kitaru.progress("Writing draft", percent=0.75)
    return f"Report: {notes}"


@flow
def report_flow(topic: str) -> str:
    return build_report(topic)


@checkpoint
def train_model(rows: int) -> str:
    kitaru.events.publish(
        "training.batch.completed",
        {"batch": 1, "rows": rows},
        message="First batch finished",
    )
    return "model-ready"


@flow
def train_flow(rows: int) -> str:
    return train_model(rows)


def test_quick_start_publishes_documented_lane(kitaru_events):
    assert report_flow("otters") == "Report: Notes about otters"
    events = kitaru_events.events
    assert [e.kind for e in events] == [
        "kitaru.checkpoint.started",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.returned",
    ]
    assert [e.index for e in events] == [0, 1, 2, 3]
    assert len({e.correlation_id for e in events}) == 1
    match = CORRELATION.match(events[0].correlation_id)
    assert match and match.group("name") == "build_report"
    exec_id = events[0].exec_id
    for e in events:
        meta = e.payload["kitaru"]
        assert set(meta) >= META_KEYS, META_KEYS - set(meta)
        assert meta["source"] == "kitaru"
        assert meta["checkpoint_name"] == "build_report" == e.checkpoint_name
        assert meta["correlation_id"] == e.correlation_id
        assert meta["execution_id"] == exec_id == e.exec_id
        assert meta["flow_name"] == "report_flow"
        assert meta["attempt"] == 1
        assert re.fullmatch(r"[0-9a-f]{32}", meta["trace_id"])
    assert events[0].payload["status"] == "started"
    assert events[1].payload["message"] == "Collecting notes"
    assert events[1].payload["data"] == {"topic": "otters", "percent": 0.25}
    assert events[2].payload["data"] == {"percent": 0.75}
    assert events[3].payload["status"] == "returned"
    assert set(events[3].payload) == {"kitaru", "status"}


def test_custom_event_publish(kitaru_events):
    assert train_flow(128) == "model-ready"
    events = kitaru_events.events
    assert [e.kind for e in events] == [
        "kitaru.checkpoint.started",
        "training.batch.completed",
        "kitaru.checkpoint.returned",
    ]
    custom = events[1]
    assert custom.index == 1
    assert custom.payload["data"] == {"batch": 1, "rows": 128}
    assert custom.payload["message"] == "First batch finished"
    assert custom.payload["kitaru"]["checkpoint_name"] == "train_model"


def test_progress_without_fields_has_no_data_key(kitaru_events):
    @checkpoint
    def step() -> None:
        kitaru.progress("just text")

    @flow
    def f() -> None:
        step()

    f()
    progress = [e for e in kitaru_events.events if e.kind.endswith("progress")]
    assert len(progress) == 1
    assert "data" not in progress[0].payload
    assert progress[0].payload["message"] == "just text"


def test_user_data_cannot_overwrite_kitaru_metadata(kitaru_events):
    @checkpoint
    def step() -> None:
        kitaru.events.publish("custom.kind", {"kitaru": {"source": "evil"}})
        kitaru.progress("p", kitaru="evil-too")

    @flow
    def f() -> None:
        step()

    f()
    for e in kitaru_events.events:
        assert e.payload["kitaru"]["source"] == "kitaru"
    custom = next(e for e in kitaru_events.events if e.kind == "custom.kind")
    assert custom.payload["data"] == {"kitaru": {"source": "evil"}}


def test_execution_records_are_durable(kitaru_events):
    handle = report_flow.run("seals")
    assert handle.wait(timeout=30) == "Report: Notes about seals"
    assert handle.status == "completed"
    record = kitaru.KitaruClient().executions.get(handle.exec_id)
    assert record.status == "completed"
    assert record.load_output() == "Report: Notes about seals"
    (cp,) = record.checkpoints
    assert cp.name == "build_report"
    assert cp.status == "completed"
    assert cp.load_output() == "Report: Notes about seals"
    assert [a.attempt for a in cp.attempts] == [1]
    assert cp.attempts[0].status == "completed"
    assert cp.ended_at is not None and cp.ended_at >= cp.started_at
