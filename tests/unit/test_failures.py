"""Failed checkpoints publish the exception type and a generic message, never the text.

The text lives in the durable record only (docs/outcomes.md): see test_failure_record.py.
"""

from __future__ import annotations

import json

import pytest

import kitaru
from kitaru import checkpoint, flow
from kitaru.events._kinds import FAILED_MESSAGE

SECRET = "sk-test-secret-123"


class Interrupt(BaseException):
    pass


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError(f"__str__ exploded {SECRET}")

    def __repr__(self) -> str:
        raise RuntimeError(f"__repr__ exploded {SECRET}")


def _run_failing(exc: BaseException, capture):
    @checkpoint
    def leaky() -> None:
        kitaru.progress("about to fail")
        raise exc

    @flow
    def f() -> None:
        leaky()

    with pytest.raises(type(exc)) as info:
        f()
    assert info.value is exc  # the original exception propagates unchanged
    return capture.events


@pytest.mark.parametrize(
    "exc",
    [RuntimeError(f"api_key={SECRET}"), Interrupt(f"api_key={SECRET}"), BadStr()],
    ids=["RuntimeError", "BaseException-subclass", "str-raises"],
)
def test_failed_event_has_type_and_generic_message_only(kitaru_events, exc):
    events = _run_failing(exc, kitaru_events)
    assert [e.kind for e in events] == [
        "kitaru.checkpoint.started",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.failed",
    ]
    failed = events[-1]
    assert failed.index == 2
    assert failed.payload["status"] == "failed"
    assert failed.payload["error_type"] == type(exc).__name__
    assert failed.payload["message"] == FAILED_MESSAGE
    assert set(failed.payload) == {"kitaru", "status", "error_type", "message"}
    everything = json.dumps([dict(e.payload) for e in events]) + repr(kitaru_events.transport.raw)
    assert SECRET not in everything
    assert "api_key" not in everything


def test_failed_execution_record_type_only(kitaru_events, caplog):
    kitaru_events.runtime.error_detail = "type"  # as KITARU_ERROR_DETAIL=type sets it
    exc = RuntimeError(f"api_key={SECRET}")
    events = _run_failing(exc, kitaru_events)
    record = kitaru.KitaruClient().executions.get(events[0].exec_id)
    assert record.status == "failed"
    assert record.error_type == "RuntimeError"
    (cp,) = record.checkpoints
    assert cp.status == "failed"
    assert cp.error_type == "RuntimeError"
    # The type-only switch keeps the exception's text out of the record too.
    assert SECRET not in json.dumps(record.to_dict())
    assert SECRET not in caplog.text


def test_output_that_cannot_be_stored_names_checkpoint_and_type(kitaru_events):
    import threading

    @checkpoint
    def returns_lock() -> object:
        return threading.Lock()

    @flow
    def f() -> object:
        return returns_lock()

    with pytest.raises(kitaru.KitaruOutputError) as info:
        f()
    message = str(info.value)
    assert "returns_lock" in message
    assert "lock" in message.lower()
    # The body did return, so the lane says returned; the durable record says failed.
    assert kitaru_events.kinds()[-1] == "kitaru.checkpoint.returned"
    exec_id = kitaru_events.events[0].exec_id
    record = kitaru.KitaruClient().executions.get(exec_id)
    assert record.status == "failed"
    assert record.checkpoints[0].status == "failed"
    assert record.checkpoints[0].error_type == "KitaruOutputError"
