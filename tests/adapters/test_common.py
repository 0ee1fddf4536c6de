"""The shared adapter machinery: clipping, safe failure messages, lanes, missing extras."""

from __future__ import annotations

import sys
from typing import Any

import pytest

import kitaru
from conftest import PROMPT, of_prefix
from kitaru.adapters import MissingExtraError
from kitaru.adapters._common import (
    LiveStream,
    clip_text,
    display_text,
    failure_message,
    normalize_name,
)
from kitaru.testing import EventCapture


def test_clip_and_display() -> None:
    assert clip_text("abc", 5) == "abc"
    assert clip_text("abcdefgh", 5) == "ab..."
    assert display_text("  a \n\t b  ") == "a b"
    long = display_text("x" * 500)
    assert len(long) == 240 and long.endswith("...")


def test_failure_message_never_uses_exception_text() -> None:
    assert failure_message(ValueError(PROMPT)) == "ValueError"
    err = RuntimeError(PROMPT)
    err.safe_live_message = "  backend\nunavailable  "  # type: ignore[attr-defined]
    assert failure_message(err) == "backend unavailable"
    err.safe_live_message = "   "  # type: ignore[attr-defined]
    assert failure_message(err) == "RuntimeError"
    err.safe_live_message = "m" * 900  # type: ignore[attr-defined]
    assert len(failure_message(err)) == 500


def test_normalize_name() -> None:
    assert normalize_name("Support Agent!!", "agent") == "Support_Agent"
    assert normalize_name(None, "agent") == "agent"
    assert normalize_name("!!!", "graph") == "graph"


def _stream_calls() -> None:
    live = LiveStream("x.stream", adapter="x", label="X")
    live.start()
    live.item({"category": "c", "display": "d"})
    live.complete()


def test_lane_outside_a_checkpoint_is_silent(kitaru_events: EventCapture) -> None:
    _stream_calls()  # publish's KitaruContextError is swallowed: no exception, no event
    assert of_prefix(kitaru_events.events, "x.stream") == []

    # The same calls inside a checkpoint do publish: the silence above is the missing scope's.
    @kitaru.flow
    def run() -> None:
        kitaru.checkpoint(_stream_calls)()

    run()
    kinds = [e.kind for e in of_prefix(kitaru_events.events, "x.stream")]
    assert kinds == ["x.stream.started", "x.stream.event", "x.stream.completed"]


def test_exactly_one_terminal_and_fallback(kitaru_events: EventCapture) -> None:
    def explode(obj: Any) -> dict[str, Any]:
        raise TypeError(PROMPT)

    class Secretive:
        def __repr__(self) -> str:
            return PROMPT

    @kitaru.checkpoint
    def body() -> None:
        live = LiveStream("x.stream", adapter="x", label="X", base={"who": "me"})
        live.start()
        live.observe(Secretive(), explode)
        live.fail(ValueError(PROMPT))
        live.complete()
        live.item({"category": "late", "display": "late"})

    @kitaru.flow
    def run() -> None:
        body()

    run()
    events = of_prefix(kitaru_events.events, "x.stream")
    assert [e.kind for e in events] == ["x.stream.started", "x.stream.event", "x.stream.failed"]
    fallback = events[1].payload["data"]
    assert fallback == {
        "adapter": "x",
        "who": "me",
        "category": "stream_event_normalization_failed",
        "display": "X stream event",
        "event_type": "Secretive",
    }
    failed = events[2].payload["data"]
    assert failed["message"] == "ValueError" and failed["error_type"] == "ValueError"
    assert PROMPT not in str([e.payload for e in events])


@pytest.mark.parametrize(
    ("module", "factory", "extra"),
    [
        ("pydantic_ai", "kitaru.adapters.pydantic_ai:KitaruAgent", "pydantic-ai"),
        ("agents", "kitaru.adapters.openai_agents:KitaruRunner", "openai-agents"),
        (
            "claude_agent_sdk",
            "kitaru.adapters.claude_agent_sdk:KitaruClaudeRunner",
            "claude-agent-sdk",
        ),
        ("langgraph", "kitaru.adapters.langgraph:KitaruGraphRunner", "langgraph"),
    ],
)
def test_missing_framework_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, factory: str, extra: str
) -> None:
    import importlib

    mod_name, _, cls_name = factory.partition(":")
    cls = getattr(importlib.import_module(mod_name), cls_name)
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail
    with pytest.raises(MissingExtraError, match=f"pip install 'kitaru\\[{extra}\\]'") as info:
        cls(object())
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, kitaru.KitaruFeatureNotAvailableError)


def test_importing_adapters_does_not_import_frameworks() -> None:
    import subprocess

    code = (
        "import sys, kitaru.adapters.pydantic_ai, kitaru.adapters.openai_agents, "
        "kitaru.adapters.claude_agent_sdk, kitaru.adapters.langgraph;"
        "print(sorted(m for m in ('pydantic_ai','agents','claude_agent_sdk','langgraph') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
