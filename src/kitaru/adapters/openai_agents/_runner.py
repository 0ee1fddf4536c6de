"""``KitaruRunner``: OpenAI Agents SDK runs as kitaru checkpoints, with live stream events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kitaru.adapters._common import AdapterPolicy, maybe_await
from kitaru.adapters._entry import AgentEntry, call_extras, current_extras, run_coroutine_sync
from kitaru.adapters._genai import GenAISpans
from kitaru.adapters._run import AgentRun
from kitaru.adapters.openai_agents._events import SPEC, describe_stream_event
from kitaru.adapters.openai_agents._hooks import run_hooks
from kitaru.exceptions import KitaruUsageError

__all__ = ["KitaruRunner", "OpenAICapturePolicy", "OpenAIRunResult"]


@dataclass(frozen=True, slots=True)
class OpenAICapturePolicy(AdapterPolicy):
    """What the OpenAI Agents adapter may put into live events.

    Attributes:
        include_stream_text_deltas: The text opt-in (:attr:`include_text`): coalesced
            ``response.output_text.delta`` text, clipped to 240 characters, as ``text_delta``
            (and ``display``). Off by default. Part of the checkpoint's cache identity.
        emit_child_events: Publish ``openai_agents.stream.*`` events at all.
        delta_interval: Seconds between two delta events of one message (default: the
            ``KITARU_ADAPTER_DELTA_INTERVAL`` environment variable, else 0.25).
    """

    TEXT_FIELD: ClassVar[str] = "include_stream_text_deltas"

    include_stream_text_deltas: bool = False
    emit_child_events: bool = True
    delta_interval: float | None = None


@dataclass(frozen=True)
class OpenAIRunResult:
    """The durable outcome of one OpenAI Agents run (what the checkpoint stores).

    The SDK's own result objects hold live agents, tools and (when streaming) asyncio queues,
    so they cannot be stored or replayed; this keeps what a later step needs.

    Attributes:
        final_output: The run's final output.
        last_agent_name: Name of the agent that produced it.
        input_list: The conversation so far in Responses input format (the SDK's
            ``to_input_list()``), for the next turn.
        interruptions: The tool calls waiting for approval (``call_id``, ``tool_name``,
            ``agent_name``; never arguments), empty when the run finished.
        state_json: The SDK's serialised ``RunState`` when interrupted, to resume from
            (:meth:`KitaruRunner.load_state`).
    """

    final_output: Any
    last_agent_name: str | None
    input_list: list[Any] = field(default_factory=list)
    interruptions: list[dict[str, Any]] = field(default_factory=list)
    state_json: dict[str, Any] | None = None

    @property
    def interrupted(self) -> bool:
        """Whether the run stopped for tool approvals (see :meth:`KitaruRunner.load_state`)."""
        return bool(self.interruptions)

    def to_input_list(self) -> list[Any]:
        """A copy of :attr:`input_list` to pass as the next run's input."""
        return list(self.input_list)

    @classmethod
    def from_sdk(cls, result: Any) -> OpenAIRunResult:
        """Keep the storable parts of an SDK ``RunResult`` / ``RunResultStreaming``."""
        last_agent = getattr(result, "last_agent", None)
        pending = list(getattr(result, "interruptions", None) or ())
        return cls(
            final_output=result.final_output,
            last_agent_name=getattr(last_agent, "name", None),
            input_list=list(result.to_input_list()),
            interruptions=[_describe_interruption(item) for item in pending],
            state_json=result.to_state().to_json() if pending else None,
        )


def _describe_interruption(item: Any) -> dict[str, Any]:
    raw = getattr(item, "raw_item", None)
    call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
    return {
        "call_id": call_id,
        "tool_name": getattr(item, "tool_name", None) or getattr(item, "name", None),
        "agent_name": getattr(getattr(item, "agent", None), "name", None),
    }


@dataclass(frozen=True, slots=True)
class _Extras:
    kwargs: dict[str, Any]
    on_event: Callable[[Any], Any] | None
    raw_input: Any = None


class KitaruRunner(AgentEntry[OpenAICapturePolicy]):
    """Runs an OpenAI Agents SDK agent as one durable kitaru checkpoint per run.

    ``run()`` / ``run_sync()`` wrap ``Runner.run``; ``run_stream()`` / ``run_stream_sync()`` wrap
    ``Runner.run_streamed`` and publish ``openai_agents.stream.started``, one
    ``openai_agents.stream.event`` per stream event and one ``openai_agents.stream.completed``
    or ``openai_agents.stream.failed``. Each call must happen inside a ``@flow``; its
    :class:`OpenAIRunResult` is stored, reused on replay and (with ``cache=True``) cached.

    Args:
        agent: The starting ``agents.Agent``.
        name: Label used in events and the checkpoint name (default: the agent's name).
        capture: What live events may contain (default :class:`OpenAICapturePolicy`).
        cache: Reuse the stored result of an earlier run with the same input and capture
            policy (``context`` and ``run_config`` are not part of the key).
        retries: Extra attempts of a failing run.

    Raises:
        MissingExtraError: The Agents SDK is not installed
            (``pip install 'kitaru[openai-agents]'``).
    """

    SPEC = SPEC
    POLICY = OpenAICapturePolicy

    def _make_checkpoints(self) -> None:
        self._run_ckpt = self._checkpoint(self._run_body)
        self._run_sync_ckpt = self._checkpoint(self._run_sync_body)
        self._stream_ckpt = self._checkpoint(self._stream_body, "_stream")
        self._stream_sync_ckpt = self._checkpoint(self._stream_sync_body, "_stream")

    # -- public surfaces ------------------------------------------------------------------

    async def run(self, input: Any, **kwargs: Any) -> OpenAIRunResult:
        """``Runner.run(agent, input, **kwargs)`` as one checkpoint (no live item events)."""
        with call_extras(_Extras(kwargs, None, input)):
            return await self._run_ckpt(self._request("run", input))  # type: ignore[no-any-return]

    def run_sync(self, input: Any, **kwargs: Any) -> OpenAIRunResult:
        """Synchronous :meth:`run`."""
        with call_extras(_Extras(kwargs, None, input)):
            return self._run_sync_ckpt(self._request("run_sync", input))  # type: ignore[no-any-return]

    async def run_stream(
        self,
        input: Any,
        *,
        on_event: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> OpenAIRunResult:
        """``Runner.run_streamed`` as one checkpoint, publishing live stream events.

        Args:
            input: The run's input (a string or Responses input items).
            on_event: Called with every SDK stream event as it arrives (sync or async).
            **kwargs: Passed to ``Runner.run_streamed`` (``context``, ``max_turns``,
                ``run_config``, ...).

        Returns:
            The run's :class:`OpenAIRunResult`.

        Raises:
            KitaruContextError: Called outside a ``@flow``.
        """
        with call_extras(_Extras(kwargs, on_event, input)):
            return await self._stream_ckpt(self._request("run_stream", input))  # type: ignore[no-any-return]

    def run_stream_sync(
        self,
        input: Any,
        *,
        on_event: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> OpenAIRunResult:
        """Synchronous :meth:`run_stream`."""
        with call_extras(_Extras(kwargs, on_event, input)):
            return self._stream_sync_ckpt(self._request("run_stream_sync", input))  # type: ignore[no-any-return]

    # -- checkpoint bodies ----------------------------------------------------------------

    async def load_state(self, result: OpenAIRunResult) -> Any:
        """The SDK ``RunState`` of an interrupted run, to approve or reject and run again.

        For example::

        state = await runner.load_state(result)
        for item in state.get_interruptions():
            state.approve(item)
        final = await runner.run(state)
        """
        from agents import RunState

        if result.state_json is None:
            raise KitaruUsageError("this OpenAIRunResult was not interrupted: no state to resume")
        return await RunState.from_string(self.agent, json.dumps(result.state_json))

    def _request(self, surface: str, input: Any) -> dict[str, Any]:
        if hasattr(input, "to_json") and hasattr(input, "get_interruptions"):
            # A RunState to resume: keyed by its serialised form (approvals included).
            input = {"run_state": input.to_json()}
        return {
            "surface": surface,
            "input": input,
            "include_stream_text_deltas": self.capture.include_stream_text_deltas,
        }

    def _input(self, request: dict[str, Any]) -> Any:
        extras: _Extras = current_extras() or _Extras({}, None)
        return extras.raw_input if extras.raw_input is not None else request["input"]

    def _new_run(self, surface: str) -> AgentRun:
        model = getattr(self.agent, "model", None)
        spans = GenAISpans(
            provider="openai",
            agent_name=self.agent_name,
            request_model=model if isinstance(model, str) else None,
        )
        return self._agent_run({"agent_name": self.agent_name, "surface": surface}, spans)

    @staticmethod
    def _finish(run: AgentRun, result: Any) -> OpenAIRunResult:
        out = OpenAIRunResult.from_sdk(result)
        if out.interruptions:
            run.interrupt([str(i["call_id"]) for i in out.interruptions], kinds=["tool_approval"])
        return out

    async def _run_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        from agents import Runner

        extras: _Extras = current_extras() or _Extras({}, None)
        kwargs = dict(extras.kwargs)
        run = self._new_run(request["surface"])
        kwargs["hooks"] = run_hooks(run, kwargs.get("hooks"))
        with run.track():
            result = await Runner.run(self.agent, self._input(request), **kwargs)
            return self._finish(run, result)

    def _run_sync_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        return run_coroutine_sync(lambda: self._run_body(request))

    async def _stream_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        from agents import Runner

        extras: _Extras = current_extras() or _Extras({}, None)
        kwargs = dict(extras.kwargs)
        run = self._new_run(request["surface"])
        hooks = run_hooks(run, kwargs.get("hooks"))
        kwargs["hooks"] = hooks
        text_deltas = request["include_stream_text_deltas"]
        live = run.live
        result: Any = None
        with run.track():
            try:
                result = Runner.run_streamed(self.agent, self._input(request), **kwargs)
                async for event in result.stream_events():
                    _publish(live, event, hooks, text_deltas)
                    if extras.on_event is not None:
                        await maybe_await(extras.on_event(event))
            except BaseException:
                if result is not None and not result.is_complete:
                    # A failing consumer must not leave the run going in the background.
                    result.cancel()
                raise
            return self._finish(run, result)

    def _stream_sync_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        return run_coroutine_sync(lambda: self._stream_body(request))


def _publish(live: Any, event: Any, hooks: Any, text_deltas: bool) -> None:
    """One SDK stream event: raw deltas coalesced, the rest described, agent attributed."""
    kind = getattr(event, "type", None)
    if kind == "agent_updated_stream_event":
        hooks.agent_name = getattr(getattr(event, "new_agent", None), "name", None)
    agent = hooks.agent_name

    def describe(e: Any) -> dict[str, Any]:
        fields = describe_stream_event(e, text_deltas=False)
        if agent:
            fields.setdefault("agent_name", agent)
        if fields.get("name") == "tool_output":
            fields["outcome"] = "ok"  # the hook's tool_result event has the checked outcome
        return fields

    data = getattr(event, "data", None)
    data_type = getattr(data, "type", None)
    if kind == "raw_response_event" and isinstance(data_type, str) and data_type.endswith(".delta"):
        fields = {"category": kind, "event_type": data_type, "display": data_type}
        if agent:
            fields["agent_name"] = agent
        key = f"{getattr(data, 'item_id', None)}:{data_type}"
        delta = getattr(data, "delta", None)
        text = delta if text_deltas and isinstance(delta, str) else None
        live.delta(key, fields, text=text if data_type == "response.output_text.delta" else None)
        return
    if kind == "raw_response_event" and isinstance(data_type, str) and data_type.endswith(".done"):
        live.flush_deltas()
    live.observe(event, describe)
