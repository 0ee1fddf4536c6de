"""``KitaruRunner``: OpenAI Agents SDK runs as kitaru checkpoints, with live stream events."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kitaru.adapters._common import (
    LiveStream,
    adapter_checkpoint,
    call_extras,
    current_extras,
    normalize_name,
    require_module,
    run_coroutine_sync,
)
from kitaru.adapters.openai_agents._events import describe_stream_event, new_stream
from kitaru.exceptions import KitaruUsageError

__all__ = ["KitaruRunner", "OpenAICapturePolicy", "OpenAIRunResult"]

_EXTRA = "openai-agents"
CHECKPOINT_TYPE = "openai_agents_run"


@dataclass(frozen=True, slots=True)
class OpenAICapturePolicy:
    """What the OpenAI Agents adapter may put into live events.

    Attributes:
        include_stream_text_deltas: Add each ``response.output_text.delta``, clipped to 240
            characters, as ``text_delta`` (and use it as ``display``). Off by default. The flag
            is part of the streaming checkpoint's cache identity.
        emit_child_events: Publish ``openai_agents.stream.*`` events at all.
    """

    include_stream_text_deltas: bool = False
    emit_child_events: bool = True

    def __post_init__(self) -> None:
        for name in ("include_stream_text_deltas", "emit_child_events"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise KitaruUsageError(
                    f"OpenAICapturePolicy.{name} must be True or False, got {value!r}"
                )


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
    """

    final_output: Any
    last_agent_name: str | None
    input_list: list[Any] = field(default_factory=list)

    def to_input_list(self) -> list[Any]:
        """A copy of :attr:`input_list` to pass as the next run's input."""
        return list(self.input_list)

    @classmethod
    def from_sdk(cls, result: Any) -> OpenAIRunResult:
        """Keep the storable parts of an SDK ``RunResult`` / ``RunResultStreaming``."""
        last_agent = getattr(result, "last_agent", None)
        return cls(
            final_output=result.final_output,
            last_agent_name=getattr(last_agent, "name", None),
            input_list=list(result.to_input_list()),
        )


@dataclass(frozen=True, slots=True)
class _Extras:
    kwargs: dict[str, Any]
    on_event: Callable[[Any], Any] | None


class KitaruRunner:
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

    def __init__(
        self,
        agent: Any,
        *,
        name: str | None = None,
        capture: OpenAICapturePolicy | None = None,
        cache: bool = False,
        retries: int = 0,
    ) -> None:
        require_module("agents", extra=_EXTRA, feature="kitaru.adapters.openai_agents")
        if capture is not None and not isinstance(capture, OpenAICapturePolicy):
            raise KitaruUsageError(f"capture must be an OpenAICapturePolicy, got {capture!r}")
        self.agent = agent
        self.agent_name = normalize_name(name or getattr(agent, "name", None), "agent")
        self.capture = capture or OpenAICapturePolicy()
        base = f"{self.agent_name}_openai_agents"
        opts: dict[str, Any] = {"type": CHECKPOINT_TYPE, "cache": cache, "retries": retries}
        self._run_ckpt = adapter_checkpoint(self._run_body, name=base, **opts)
        self._run_sync_ckpt = adapter_checkpoint(self._run_sync_body, name=base, **opts)
        self._stream_ckpt = adapter_checkpoint(self._stream_body, name=f"{base}_stream", **opts)
        self._stream_sync_ckpt = adapter_checkpoint(
            self._stream_sync_body, name=f"{base}_stream", **opts
        )

    def __repr__(self) -> str:
        return f"<KitaruRunner {self.agent_name!r}>"

    # -- public surfaces ------------------------------------------------------------------

    async def run(self, input: Any, **kwargs: Any) -> OpenAIRunResult:
        """``Runner.run(agent, input, **kwargs)`` as one checkpoint (no live item events)."""
        with call_extras(_Extras(kwargs, None)):
            return await self._run_ckpt(self._request("run", input))  # type: ignore[no-any-return]

    def run_sync(self, input: Any, **kwargs: Any) -> OpenAIRunResult:
        """Synchronous :meth:`run`."""
        with call_extras(_Extras(kwargs, None)):
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
        with call_extras(_Extras(kwargs, on_event)):
            return await self._stream_ckpt(self._request("run_stream", input))  # type: ignore[no-any-return]

    def run_stream_sync(
        self,
        input: Any,
        *,
        on_event: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> OpenAIRunResult:
        """Synchronous :meth:`run_stream`."""
        with call_extras(_Extras(kwargs, on_event)):
            return self._stream_sync_ckpt(self._request("run_stream_sync", input))  # type: ignore[no-any-return]

    # -- checkpoint bodies ----------------------------------------------------------------

    def _request(self, surface: str, input: Any) -> dict[str, Any]:
        return {
            "surface": surface,
            "input": input,
            "include_stream_text_deltas": self.capture.include_stream_text_deltas,
        }

    async def _run_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        from agents import Runner

        extras: _Extras = current_extras() or _Extras({}, None)
        result = await Runner.run(self.agent, request["input"], **extras.kwargs)
        return OpenAIRunResult.from_sdk(result)

    def _run_sync_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        return run_coroutine_sync(lambda: self._run_body(request))

    async def _stream_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        from agents import Runner

        extras: _Extras = current_extras() or _Extras({}, None)
        live: LiveStream = new_stream(
            self.agent_name, request["surface"], enabled=self.capture.emit_child_events
        )
        text_deltas = request["include_stream_text_deltas"]
        live.start(status="started")
        result: Any = None
        try:
            result = Runner.run_streamed(self.agent, request["input"], **extras.kwargs)
            async for event in result.stream_events():
                live.observe(event, lambda e: describe_stream_event(e, text_deltas=text_deltas))
                if extras.on_event is not None:
                    outcome = extras.on_event(event)
                    if inspect.isawaitable(outcome):
                        await outcome
        except BaseException as exc:
            if result is not None and not result.is_complete:
                # A failing consumer must not leave the run going in the background.
                result.cancel()
            live.fail(exc)
            raise
        live.complete()
        return OpenAIRunResult.from_sdk(result)

    def _stream_sync_body(self, request: dict[str, Any]) -> OpenAIRunResult:
        return run_coroutine_sync(lambda: self._stream_body(request))
