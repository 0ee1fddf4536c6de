"""Which observers a hook reaches, and live events when nobody takes them."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import kitaru
from kitaru import checkpoint, flow
from kitaru.exceptions import KitaruUsageError
from kitaru.runtime import Runtime, RuntimeObserver, current_checkpoint, set_runtime
from kitaru.runtime._observer import ObserverGroup
from kitaru.store import SqliteStore


class OnEvent(RuntimeObserver):
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def on_event(self, record: Any, scope: Any) -> None:
        self.kinds.append(record.kind)


class Quiet(RuntimeObserver):
    """Overrides nothing."""


class DuckTyped:
    """Not a RuntimeObserver: only two hooks."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_flow_start(self, run: Any) -> None:
        self.calls.append("flow_start")

    def on_flow_end(self, run: Any, status: str, error: BaseException | None) -> None:
        self.calls.append("flow_end")


def test_each_hook_reaches_the_observers_that_implement_it() -> None:
    group = ObserverGroup()
    on_event, quiet = OnEvent(), Quiet()
    group.add(quiet)
    group.add(on_event)
    assert group.observers == (quiet, on_event)
    assert group.event_observers == (on_event,)
    assert group.line_observers == ()
    # a hook set on the instance before it was added counts too
    patched = Quiet()
    seen: list[Any] = []
    patched.on_checkpoint_start = seen.append  # type: ignore[method-assign]
    group.add(patched)
    group.notify("on_checkpoint_start", "scope")
    assert seen == ["scope"]
    group.remove(on_event)
    assert group.event_observers == ()
    assert group.failures() == {}


def test_a_duck_typed_observer_without_a_hook_fails_there_but_never_for_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = ObserverGroup()
    duck = DuckTyped()
    group.add(duck)  # type: ignore[arg-type]
    assert group.line_observers == ()
    with caplog.at_level(logging.WARNING, logger="kitaru"):
        group.notify("on_flow_start", "run")
        group.notify("on_checkpoint_start", "scope")  # missing: counted like any failure
    assert duck.calls == ["flow_start"]
    assert group.failures() == {f"{__name__}.DuckTyped": 1}


def test_without_a_transport_or_event_observer_indexes_still_advance_and_are_checked(
    tmp_path: Any,
) -> None:
    """Local database mode builds no live events, but explicit indexes keep their rules."""
    seen_indexes: list[int] = []

    @checkpoint
    def step() -> None:
        kitaru.events.publish("a.kind")  # index 1 (0 was "started")
        kitaru.events.publish("b.kind", index=5)
        with pytest.raises(KitaruUsageError, match="index"):
            kitaru.events.publish("c.kind", index=5)  # below the next free index (6)
        scope = current_checkpoint()
        assert scope is not None
        seen_indexes.append(scope.next_index())

    @flow
    def run() -> None:
        step()

    rt = Runtime(SqliteStore(tmp_path / "local.db"), None, mode="local")
    previous = set_runtime(rt)
    try:
        assert rt.observer_group.event_observers == ()
        run()
        # an observer that takes events gets them again, with the same indexes
        recorder = OnEvent()
        rt.add_observer(recorder)
        run()
    finally:
        set_runtime(previous)
        rt.shutdown()
    assert seen_indexes == [6, 6]
    assert recorder.kinds == [
        "kitaru.checkpoint.started",
        "a.kind",
        "b.kind",
        "kitaru.checkpoint.returned",
    ]
