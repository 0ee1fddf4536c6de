"""Every argument rule of docs/live-events.md ("Publishing"), inside and outside a checkpoint."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

import kitaru
from kitaru import KitaruContextError, KitaruUsageError, checkpoint, flow

BAD_PUBLISH = [
    ({"kind": "ok.kind", "payload": ["not", "a", "mapping"]}, "payload"),
    ({"kind": "ok.kind", "payload": "text"}, "payload"),
    ({"kind": "ok.kind", "message": 12}, "message"),
    ({"kind": 42}, "kind"),
    ({"kind": None}, "kind"),
    ({"kind": "has\nnewline"}, "newline"),
    ({"kind": "has\rreturn"}, "newline"),
    ({"kind": "   "}, "kind"),
    ({"kind": ""}, "kind"),
    ({"kind": "cursor"}, "reserved"),
    ({"kind": " end "}, "reserved"),
    ({"kind": "gap"}, "reserved"),
    ({"kind": "error"}, "reserved"),
    ({"kind": "system"}, "reserved"),
    ({"kind": "kitaru.checkpoint.started"}, "reserved"),
    ({"kind": "ok.kind", "correlation_id": "  "}, "correlation_id"),
    ({"kind": "ok.kind", "correlation_id": 5}, "correlation_id"),
    ({"kind": "ok.kind", "index": -1}, "index"),
    ({"kind": "ok.kind", "index": True}, "index"),
    ({"kind": "ok.kind", "index": 1.0}, "index"),
    ({"kind": "ok.kind", "flush": "yes"}, "flush"),
]

BAD_PROGRESS = [
    ({"message": ""}, "message"),
    ({"message": "   "}, "message"),
    ({"message": None}, "message"),
    ({"message": 3}, "message"),
    ({"message": "m", "percent": -0.01}, "percent"),
    ({"message": "m", "percent": 1.01}, "percent"),
    ({"message": "m", "percent": math.nan}, "percent"),
    ({"message": "m", "percent": math.inf}, "percent"),
    ({"message": "m", "percent": True}, "percent"),
    ({"message": "m", "percent": "0.5"}, "percent"),
    ({"message": "m", "correlation_id": ""}, "correlation_id"),
]


def _call_publish(kwargs):
    kwargs = dict(kwargs)
    kind = kwargs.pop("kind")
    kitaru.events.publish(kind, **kwargs)


def _call_progress(kwargs):
    kwargs = dict(kwargs)
    message = kwargs.pop("message")
    kitaru.progress(message, **kwargs)


@pytest.mark.parametrize(("kwargs", "word"), BAD_PUBLISH)
def test_publish_argument_errors_outside_a_checkpoint_are_usage_errors(kwargs, word):
    with pytest.raises(KitaruUsageError) as info:
        _call_publish(kwargs)
    assert word in str(info.value)


@pytest.mark.parametrize(("kwargs", "word"), BAD_PROGRESS)
def test_progress_argument_errors_outside_a_checkpoint_are_usage_errors(kwargs, word):
    with pytest.raises(KitaruUsageError) as info:
        _call_progress(kwargs)
    assert word in str(info.value)


def test_payload_is_checked_before_kind():
    # Validation order: payload, message, kind.
    with pytest.raises(KitaruUsageError, match="payload"):
        kitaru.events.publish("cursor", payload=[1])  # type: ignore[arg-type]
    with pytest.raises(KitaruUsageError, match="message"):
        kitaru.events.publish("cursor", message=1)  # type: ignore[arg-type]


def test_valid_calls_outside_a_checkpoint_are_context_errors():
    with pytest.raises(KitaruContextError) as info:
        kitaru.events.publish("ok.kind")
    assert "kitaru.events.publish()" in str(info.value)
    assert "@checkpoint" in str(info.value)
    with pytest.raises(KitaruContextError, match="progress"):
        kitaru.progress("hello", percent=0.5)


@pytest.mark.parametrize(("kwargs", "word"), BAD_PUBLISH)
def test_publish_argument_errors_inside_a_checkpoint(kitaru_events, kwargs, word):
    @checkpoint
    def step() -> str:
        with pytest.raises(KitaruUsageError) as info:
            _call_publish(kwargs)
        assert word in str(info.value)
        return "fine"

    @flow
    def f() -> str:
        return step()

    assert f() == "fine"
    # A refused call publishes nothing.
    assert kitaru_events.kinds() == ["kitaru.checkpoint.started", "kitaru.checkpoint.returned"]


@pytest.mark.parametrize(("kwargs", "word"), BAD_PROGRESS)
def test_progress_argument_errors_inside_a_checkpoint(kitaru_events, kwargs, word):
    @checkpoint
    def step() -> None:
        with pytest.raises(KitaruUsageError) as info:
            _call_progress(kwargs)
        assert word in str(info.value)

    @flow
    def f() -> None:
        step()

    f()
    assert kitaru_events.kinds() == ["kitaru.checkpoint.started", "kitaru.checkpoint.returned"]


def test_percent_accepts_reals_and_stores_a_float(kitaru_events):
    @checkpoint
    def step() -> None:
        kitaru.progress("a", percent=0)
        kitaru.progress("b", percent=1)
        kitaru.progress("c", percent=Fraction(1, 2))

    @flow
    def f() -> None:
        step()

    f()
    values = [e.payload["data"]["percent"] for e in kitaru_events.events if "data" in e.payload]
    assert values == [0.0, 1.0, 0.5]
    assert all(type(v) is float for v in values)


def test_kind_is_stripped_and_reserved_names_need_exact_match(kitaru_events):
    @checkpoint
    def step() -> None:
        kitaru.events.publish("  my.kind  ")
        kitaru.events.publish("endless")  # contains "end" but is not "end"
        kitaru.events.publish("error.retry")

    @flow
    def f() -> None:
        step()

    f()
    assert kitaru_events.kinds()[1:4] == ["my.kind", "endless", "error.retry"]


def test_explicit_index_and_correlation_id(kitaru_events):
    @checkpoint
    def step() -> None:
        kitaru.events.publish("a.kind")  # index 1
        kitaru.events.publish("b.kind", index=5)
        with pytest.raises(KitaruUsageError, match="index"):
            kitaru.events.publish("c.kind", index=5)  # below the next free index (6)
        kitaru.events.publish("d.kind")  # continues at 6
        kitaru.events.publish("e.kind", correlation_id="  custom-lane ")
        kitaru.progress("f", correlation_id="other-lane")

    @flow
    def f() -> None:
        step()

    f()
    events = kitaru_events.events
    by_kind = {e.kind: e for e in events}
    assert by_kind["a.kind"].index == 1
    assert by_kind["b.kind"].index == 5
    assert by_kind["d.kind"].index == 6
    # An explicit correlation ID shares the checkpoint's counter.
    assert by_kind["e.kind"].index == 7
    assert by_kind["e.kind"].correlation_id == "custom-lane"
    assert by_kind["e.kind"].payload["kitaru"]["correlation_id"] == "custom-lane"
    assert by_kind["kitaru.checkpoint.progress"].index == 8
    assert by_kind["kitaru.checkpoint.returned"].index == 9


def test_flush_needs_no_scope_and_never_raises():
    assert kitaru.events.flush() is True
    assert kitaru.events.flush(timeout=0) is True
    assert kitaru.events.flush(timeout=-1) is False
    assert kitaru.events.flush(timeout="soon") is False  # type: ignore[arg-type]


def test_flush_argument_inside_checkpoint(kitaru_events):
    @checkpoint
    def step() -> None:
        kitaru.progress("x", flush=True)
        kitaru.events.publish("y.kind", flush=True)

    @flow
    def f() -> None:
        step()

    f()
    assert "y.kind" in kitaru_events.kinds()


def test_checkpoint_outside_flow_is_a_context_error():
    @checkpoint
    def lonely() -> int:
        return 1

    with pytest.raises(KitaruContextError, match="lonely"):
        lonely()


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": True}, "retries"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"cache": "yes"}, "cache"),
        ({"name": "a:b"}, "name"),
        ({"name": " "}, "name"),
        ({"type": ""}, "type"),
    ],
)
def test_checkpoint_decorator_arguments(kwargs, word):
    with pytest.raises(KitaruUsageError, match=word):
        checkpoint(**kwargs)(lambda: None)
