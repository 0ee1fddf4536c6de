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


def test_lane_outside_a_checkpoint_logs_what_it_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from kitaru.exceptions import KitaruContextError

    live = LiveStream("x.stream", adapter="x", label="X")
    with caplog.at_level(logging.DEBUG, logger="kitaru.adapters"):
        live.start()
        live.item({"category": "c", "display": "d"})
        live.complete()  # KitaruContextError from publish is swallowed
    swallowed = [r for r in caplog.records if r.name == "kitaru.adapters" and r.exc_info]
    assert len(swallowed) == 3
    assert all(isinstance(r.exc_info[1], KitaruContextError) for r in swallowed)  # type: ignore[index]
    assert live.finished and live.event_count == 1


def test_track_publishes_exactly_one_terminal_with_status(kitaru_events: EventCapture) -> None:
    import asyncio

    @kitaru.checkpoint
    def body() -> None:
        live = LiveStream("x.stream", adapter="x", label="X", delta_interval=10.0)
        with live.track():
            for _ in range(5):
                live.delta("m1", {"category": "text", "display": "Text delta"})
            live.interrupt(interruption_count=1, interruption_ids=["i1"])
        cancelled = LiveStream("y.stream", adapter="y", label="Y")
        with pytest.raises(asyncio.CancelledError), cancelled.track():
            raise asyncio.CancelledError

    @kitaru.flow
    def run() -> None:
        body()

    run()
    xs = of_prefix(kitaru_events.events, "x.stream")
    assert [e.kind for e in xs] == [
        "x.stream.started",
        "x.stream.event",
        "x.stream.event",
        "x.stream.completed",
    ]
    assert [e.payload["data"]["delta_count"] for e in xs[1:3]] == [1, 4]  # first, then the rest
    end = xs[-1].payload["data"]
    assert end["status"] == "interrupted" and end["interruption_ids"] == ["i1"]
    assert end["delta_count"] == 5
    ys = of_prefix(kitaru_events.events, "y.stream")
    assert [e.kind for e in ys] == ["y.stream.started", "y.stream.failed"]
    assert ys[-1].payload["data"]["status"] == "cancelled"


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


def test_every_policy_has_one_text_opt_in_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    from kitaru.adapters._common import resolve_delta_interval
    from kitaru.exceptions import KitaruUsageError

    policies: list[Any] = []
    for module, name, field in (
        ("kitaru.adapters.pydantic_ai", "CapturePolicy", "save_stream_transcripts"),
        ("kitaru.adapters.openai_agents", "OpenAICapturePolicy", "include_stream_text_deltas"),
        ("kitaru.adapters.claude_agent_sdk", "ClaudeCapturePolicy", "include_stream_text_deltas"),
        ("kitaru.adapters.langgraph", "LangGraphStreamPolicy", "include_message_text_deltas"),
    ):
        cls = getattr(__import__(module, fromlist=[name]), name)
        assert cls().include_text is False
        assert cls(**{field: True}).include_text is True
        with pytest.raises(KitaruUsageError, match=field):
            cls(**{field: "yes"})
        with pytest.raises(KitaruUsageError, match="delta_interval"):
            cls(delta_interval=-1)
        policies.append(cls)
    assert len(policies) == 4
    monkeypatch.setenv("KITARU_ADAPTER_DELTA_INTERVAL", "0.5")
    assert resolve_delta_interval(None) == 0.5
    assert resolve_delta_interval(2) == 2.0  # the argument wins
    monkeypatch.setenv("KITARU_ADAPTER_DELTA_INTERVAL", "soon")
    with pytest.raises(KitaruUsageError, match="KITARU_ADAPTER_DELTA_INTERVAL"):
        resolve_delta_interval(None)


class _Graph:
    name = "My Graph"

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return iter(())


class _Agent:
    name = "Helper Bot"

    def run(self) -> None: ...

    def iter(self) -> None: ...


def _entries() -> list[tuple[Any, Any, str, str]]:
    """Each entry point, made with its default policy: (entry, its checkpoints, name, type)."""
    from kitaru.adapters.claude_agent_sdk import KitaruClaudeRunner
    from kitaru.adapters.langgraph import KitaruGraphRunner
    from kitaru.adapters.openai_agents import KitaruRunner
    from kitaru.adapters.pydantic_ai import KitaruAgent

    agent = KitaruAgent(_Agent())
    runner = KitaruRunner(_Agent())
    claude = KitaruClaudeRunner(name="support desk")
    graph = KitaruGraphRunner(_Graph())
    return [
        (
            agent,
            [agent._async_checkpoint, agent._sync_checkpoint],
            "Helper_Bot_pydantic_ai",
            "pydantic_ai_agent",
        ),
        (
            runner,
            [runner._run_ckpt, runner._run_sync_ckpt],
            "Helper_Bot_openai_agents",
            "openai_agents_run",
        ),
        (
            runner,
            [runner._stream_ckpt, runner._stream_sync_ckpt],
            "Helper_Bot_openai_agents_stream",
            "openai_agents_run",
        ),
        (
            claude,
            [claude._run_ckpt, claude._run_sync_ckpt],
            "support_desk_claude_invocation",
            "claude_agent_sdk_invocation",
        ),
        (
            graph,
            [graph._stream_ckpt, graph._astream_ckpt],
            "My_Graph_langgraph_call",
            "langgraph_graph_call",
        ),
    ]


def test_entry_points_name_their_checkpoints_after_the_adapter() -> None:
    for _, checkpoints, name, checkpoint_type in _entries():
        assert [c.name for c in checkpoints] == [name, name]
        assert {c.checkpoint_type for c in checkpoints} == {checkpoint_type}
    shown = [repr(entry) for entry, *_ in _entries()]
    assert shown == [
        "<KitaruAgent 'Helper_Bot'>",
        "<KitaruRunner 'Helper_Bot'>",
        "<KitaruRunner 'Helper_Bot'>",
        "<KitaruClaudeRunner 'support_desk'>",
        "<KitaruGraphRunner 'My_Graph'>",
    ]


def test_entry_points_refuse_another_adapters_policy() -> None:
    from kitaru.adapters.claude_agent_sdk import ClaudeCapturePolicy, KitaruClaudeRunner
    from kitaru.adapters.langgraph import KitaruGraphRunner
    from kitaru.adapters.openai_agents import KitaruRunner, OpenAICapturePolicy
    from kitaru.adapters.pydantic_ai import CapturePolicy, KitaruAgent
    from kitaru.exceptions import KitaruUsageError

    claude, openai = ClaudeCapturePolicy(), OpenAICapturePolicy()
    cases: list[tuple[Any, str]] = [
        (lambda: KitaruAgent(_Agent(), capture=openai), "capture must be a CapturePolicy"),
        (lambda: KitaruRunner(_Agent(), capture=claude), "capture must be an OpenAICapturePolicy"),
        (lambda: KitaruClaudeRunner(capture=openai), "capture must be a ClaudeCapturePolicy"),
        (
            lambda: KitaruGraphRunner(_Graph(), stream_policy=claude),  # type: ignore[arg-type]
            "stream_policy must be a LangGraphStreamPolicy",
        ),
    ]
    for make, message in cases:
        with pytest.raises(KitaruUsageError, match=f"^{message}, got "):
            make()
    # Each one's own policy is kept as given, and the default is the adapter's policy class.
    own = CapturePolicy(save_stream_transcripts=True)
    assert KitaruAgent(_Agent(), capture=own).capture is own
    assert type(KitaruRunner(_Agent()).capture) is OpenAICapturePolicy


def test_adapter_spec_kinds_and_defaults() -> None:
    from kitaru.adapters._spec import AdapterSpec

    spec = AdapterSpec("some_framework", label="Some", checkpoint_type="some_run")
    assert spec.kinds == (
        "some_framework.stream.started",
        "some_framework.stream.event",
        "some_framework.stream.completed",
        "some_framework.stream.failed",
    )
    assert spec.terminal_kinds == spec.kinds[-2:]
    assert (spec.module, spec.checkpoint_suffix, spec.extra) == (
        "some_framework",
        "some_framework",
        "some-framework",
    )
    other = AdapterSpec(
        "x", label="X", checkpoint_type="t", module="xlib", items=("a", "tool"), item="debug"
    )
    assert other.kinds[1:3] == ("x.stream.a", "x.stream.tool")
    assert other.module == "xlib"
    live = other.open({"who": "me"}, enabled=False, delta_interval=0)
    assert (live.prefix, live.item_kind, live.base) == (
        "x.stream",
        "x.stream.debug",
        {"adapter": "x", "who": "me"},
    )


def test_tokens_and_ids_are_normalised_once() -> None:
    from kitaru.adapters._common import ident, text_delta_fields, text_or_none
    from kitaru.adapters._usage import Tokens, UsageTally

    assert Tokens.of(12, -3, True) == Tokens(12, 0, 0)
    assert Tokens.of("7", None, 2.5) == Tokens(0, 0, 0)
    tally = UsageTally()
    tally.add("m", Tokens.of(5, 2, 1))
    tally.add("m", Tokens.of(1, 1), cost_usd=0.5, requests=0)
    (usage,) = tally.models()
    assert usage.as_dict() == {
        "model": "m",
        "requests": 1,
        "input_tokens": 6,
        "output_tokens": 3,
        "cache_read_tokens": 1,
        "cost_usd": 0.5,
    }
    assert ident("x" * 300) == "x" * 197 + "..."
    assert ident("") is None and ident(42) is None
    assert text_or_none("a" * 300) == "a" * 300 and text_or_none(None) is None
    fields = text_delta_fields("  hello\n world  " + "!" * 300, "fallback")
    assert len(fields["text_delta"]) == 240 and fields["text_delta"].startswith("  hello\n")
    assert fields["display"].startswith("hello world !")
    assert text_delta_fields(" \n ", "fallback")["display"] == "fallback"
