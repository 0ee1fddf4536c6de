"""A failing runtime observer: logged once at WARNING with its name, counted, never fatal."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import kitaru
from kitaru.runtime import RuntimeObserver
from kitaru.testing import capture_events


class Broken(RuntimeObserver):
    def on_flow_start(self, run: Any) -> None:
        raise RuntimeError("secret user data")

    def on_checkpoint_start(self, scope: Any) -> None:
        raise RuntimeError("secret user data")

    def on_event(self, record: Any, scope: Any) -> None:
        raise ValueError("secret user data")


class Recorder(RuntimeObserver):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_flow_start(self, run: Any) -> None:
        self.calls.append("flow_start")

    def on_event(self, record: Any, scope: Any) -> None:
        self.calls.append(record.kind)

    def on_flow_end(self, run: Any, status: str, error: BaseException | None) -> None:
        self.calls.append(f"flow_end:{status}")


@kitaru.checkpoint
def step(x: int) -> int:
    kitaru.progress("working")
    return x + 1


@kitaru.flow
def pipeline(x: int) -> int:
    return step(x) + step(x)


def test_a_failing_observer_is_named_once_counted_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    with capture_events(observers=(Broken(), recorder)) as capture:
        with caplog.at_level(logging.DEBUG, logger="kitaru"):
            assert pipeline(1) == 4
        failures = capture.runtime.observer_failures()
    name = f"{__name__}.Broken"
    # flow start 1 + checkpoint start 2 + events 2 x (started, progress, returned)
    assert failures == {name: 9}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert name in message and "on_flow_start" in message and "RuntimeError" in message
    assert "secret" not in message
    # the observer after the broken one still saw everything
    assert recorder.calls[0] == "flow_start" and recorder.calls[-1] == "flow_end:completed"
    assert recorder.calls.count("kitaru.checkpoint.progress") == 2
    assert [e.kind for e in capture.events].count("kitaru.checkpoint.progress") == 2
