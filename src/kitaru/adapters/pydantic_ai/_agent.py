"""``KitaruAgent``: a PydanticAI agent whose runs are kitaru checkpoints with live events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from kitaru.adapters._common import AdapterPolicy
from kitaru.adapters._entry import AgentEntry, call_extras, current_extras
from kitaru.adapters._genai import GenAISpans
from kitaru.adapters._run import AgentRun
from kitaru.adapters.pydantic_ai._events import SPEC
from kitaru.adapters.pydantic_ai._hooks import run_capability
from kitaru.adapters.pydantic_ai._identity import run_identity
from kitaru.exceptions import KitaruContextError, KitaruUsageError
from kitaru.runtime._scope import current_checkpoint

__all__ = ["CapturePolicy", "KitaruAgent"]


@dataclass(frozen=True, slots=True)
class CapturePolicy(AdapterPolicy):
    """What the PydanticAI adapter may put into live events and spans.

    Attributes:
        save_stream_transcripts: The text opt-in (:attr:`include_text`): coalesced text deltas,
            clipped to 240 characters, as ``text_delta`` (and ``display``). Off by default:
            model output stays out of live events.
        emit_child_events: Publish ``pydantic_ai.stream.*`` events at all. With ``False`` the
            adapter publishes nothing while your ``event_stream_handler`` still receives every
            event.
        delta_interval: Seconds between two delta events of one part (default: the
            ``KITARU_ADAPTER_DELTA_INTERVAL`` environment variable, else 0.25).
        instrument: PydanticAI's own OpenTelemetry instrumentation for each run, under the
            checkpoint span: ``None`` (default) turns it on without content (no prompts,
            tool arguments, tool results or output in spans); a PydanticAI
            ``InstrumentationSettings`` is used as given (your opt-in to content); ``False``
            adds none.
    """

    TEXT_FIELD: ClassVar[str] = "save_stream_transcripts"

    save_stream_transcripts: bool = False
    emit_child_events: bool = True
    delta_interval: float | None = None
    instrument: Any = None


@dataclass(frozen=True, slots=True)
class _Extras:
    """What a run needs but is not part of its durable identity (handlers, deps, settings)."""

    kwargs: dict[str, Any]
    handler: Any


@cache
def _checkpoint_required_error() -> type[Exception]:
    # Both kitaru's scope error and PydanticAI's UserError, so either ``except`` matches.
    from pydantic_ai.exceptions import UserError

    class CheckpointRequiredError(KitaruContextError, UserError):
        """A streaming surface of ``KitaruAgent`` was used outside an explicit checkpoint."""

    return CheckpointRequiredError


class KitaruAgent(AgentEntry[CapturePolicy]):
    """A PydanticAI agent whose every run is one durable kitaru checkpoint.

    ``run()`` and ``run_sync()`` run the agent as an adapter-owned checkpoint inside the current
    ``@flow``: the run result is stored, reused on replay and (with ``cache=True``) cached.
    When you pass PydanticAI's ``event_stream_handler=``, the run also publishes
    ``pydantic_ai.stream.started``, one ``pydantic_ai.stream.event`` per stream event and one
    ``pydantic_ai.stream.completed`` or ``pydantic_ai.stream.failed``. ``run_stream()`` and
    ``iter()`` hand back PydanticAI's own streaming objects, so they cannot be stored; use them
    inside your own ``@kitaru.checkpoint``, where they publish the same events.

    Live events never carry prompts, tool arguments, tool results or model output unless
    ``capture=CapturePolicy(save_stream_transcripts=True)``. Publishing is best-effort and
    never changes the run.

    Args:
        agent: The ``pydantic_ai.Agent`` to wrap.
        name: The agent name used in events and the checkpoint name (default: the agent's
            ``name``); normalised to letters, digits and ``_``.
        capture: What live events may contain (default :class:`CapturePolicy`).
        cache: Reuse the stored result of an earlier run with the same prompt, message
            history, model, output type, instructions, tools, model settings, deferred tool
            results and capture policy (``deps`` is not part of the key); a call whose inputs
            cannot be keyed raises :class:`~kitaru.KitaruUsageError`.
        retries: Extra attempts of a failing run.

    Raises:
        MissingExtraError: PydanticAI is not installed (``pip install 'kitaru[pydantic-ai]'``).
    """

    SPEC = SPEC
    POLICY = CapturePolicy

    def _check_agent(self, agent: Any) -> None:
        if not callable(getattr(agent, "run", None)) or not callable(getattr(agent, "iter", None)):
            raise KitaruUsageError(f"KitaruAgent needs a pydantic_ai agent, got {agent!r}")

    def _make_checkpoints(self) -> None:
        self._async_checkpoint = self._checkpoint(self._run_body)
        self._sync_checkpoint = self._checkpoint(self._run_sync_body)

    # -- durable runs ---------------------------------------------------------------------

    async def run(
        self,
        user_prompt: Any = None,
        *,
        message_history: Sequence[Any] | None = None,
        event_stream_handler: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run the agent to its end as one checkpoint; returns PydanticAI's run result.

        Takes the arguments of ``pydantic_ai.Agent.run``. Must be called inside a ``@flow``.

        Raises:
            KitaruContextError: Called outside a ``@flow``.
        """
        request = self._request("run", user_prompt, message_history, kwargs)
        with call_extras(_Extras(kwargs, event_stream_handler)):
            return await self._async_checkpoint(request)

    def run_sync(
        self,
        user_prompt: Any = None,
        *,
        message_history: Sequence[Any] | None = None,
        event_stream_handler: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Synchronous :meth:`run` (PydanticAI's ``run_sync``), one checkpoint."""
        request = self._request("run_sync", user_prompt, message_history, kwargs)
        with call_extras(_Extras(kwargs, event_stream_handler)):
            return self._sync_checkpoint(request)

    def _request(
        self,
        surface: str,
        user_prompt: Any,
        message_history: Sequence[Any] | None,
        kwargs: Mapping[str, Any],
    ) -> dict[str, Any]:
        # The durable identity of the call: the cache key and what replay matches on. It holds
        # everything that changes the answer (docs/adapters.md, "Cache keys").
        return {
            "surface": surface,
            "user_prompt": user_prompt,
            "message_history": None if message_history is None else list(message_history),
            "save_stream_transcripts": self.capture.save_stream_transcripts,
            **run_identity(self.agent, kwargs, strict=self.cache),
        }

    def _new_run(self, surface: str, source: str) -> AgentRun:
        # PydanticAI's own instrumentation makes the GenAI spans (see _instrumentation).
        return self._agent_run(
            {"agent_name": self.agent_name, "surface": surface, "source": source},
            GenAISpans(provider="pydantic_ai", agent_name=self.agent_name, enabled=False),
        )

    def _instrument(self, kwargs: dict[str, Any], run: AgentRun, *, stream: bool) -> None:
        caps = [*(kwargs.get("capabilities") or ())]
        caps.append(run_capability(run, transcripts=self.capture.include_text, stream=stream))
        instrumentation = self._instrumentation(caps)
        if instrumentation is not None:
            caps.append(instrumentation)
        kwargs["capabilities"] = caps

    def _instrumentation(self, run_caps: list[Any]) -> Any:
        setting = self.capture.instrument
        if setting is False:
            return None
        from pydantic_ai.capabilities.instrumentation import Instrumentation
        from pydantic_ai.models.instrumented import InstrumentationSettings

        if setting is None and _has_instrumentation(self.agent, run_caps, Instrumentation):
            return None  # the user's own Instrumentation capability is used as given

        if setting is None:
            # Privacy first: spans say what happened, never prompts, arguments or output.
            setting = InstrumentationSettings(include_content=False, include_binary_content=False)
        return Instrumentation(settings=setting)

    @contextmanager
    def _tracked(self, request: dict[str, Any]) -> Iterator[tuple[dict[str, Any], AgentRun]]:
        extras: _Extras = current_extras() or _Extras({}, None)
        kwargs = dict(extras.kwargs)
        if request["message_history"] is not None:
            kwargs["message_history"] = request["message_history"]
        streamed = extras.handler is not None
        if streamed:
            kwargs["event_stream_handler"] = extras.handler
        run = self._new_run(request["surface"], "event_stream_handler" if streamed else "hooks")
        self._instrument(kwargs, run, stream=streamed)
        with run.track():
            yield kwargs, run

    @staticmethod
    def _finish(run: AgentRun, result: Any) -> Any:
        _note_deferred(run, getattr(result, "output", None))
        return result

    async def _run_body(self, request: dict[str, Any]) -> Any:
        with self._tracked(request) as (kwargs, run):
            return self._finish(run, await self.agent.run(request["user_prompt"], **kwargs))

    def _run_sync_body(self, request: dict[str, Any]) -> Any:
        with self._tracked(request) as (kwargs, run):
            return self._finish(run, self.agent.run_sync(request["user_prompt"], **kwargs))

    # -- streaming surfaces (inside an explicit checkpoint) -------------------------------

    def _require_checkpoint(self, surface: str) -> None:
        if current_checkpoint() is None:
            raise _checkpoint_required_error()(
                f"KitaruAgent.{surface}() returns a live PydanticAI object that cannot be stored; "
                "call it inside an explicit `@kitaru.checkpoint` function and return plain data"
            )

    @asynccontextmanager
    async def run_stream(self, user_prompt: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """PydanticAI's ``run_stream`` inside your checkpoint, publishing stream events.

        Use it inside an explicit ``@kitaru.checkpoint`` (the streamed result cannot be
        stored by the adapter)::

            @kitaru.checkpoint
            async def answer(question: str) -> str:
                async with durable.run_stream(question) as result:
                    return await result.get_output()

        Raises:
            KitaruContextError: Not inside a running ``@kitaru.checkpoint`` (the error is also
                a PydanticAI ``UserError``).
        """
        async with self._node_stream("run_stream", user_prompt, kwargs) as (_, result):
            yield result

    @asynccontextmanager
    async def iter(self, user_prompt: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """PydanticAI's ``iter`` inside your checkpoint, publishing every node's stream events.

        Raises:
            KitaruContextError: Not inside a running ``@kitaru.checkpoint`` (the error is also
                a PydanticAI ``UserError``).
        """
        async with self._node_stream("iter", user_prompt, kwargs) as (run, agent_run):
            yield agent_run
            _note_deferred(run, getattr(agent_run.result, "output", None))

    @asynccontextmanager
    async def _node_stream(
        self, surface: str, user_prompt: Any, kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[AgentRun, Any]]:
        """PydanticAI's ``run_stream`` or ``iter`` (``surface``), tracked as one run."""
        self._require_checkpoint(surface)
        run = self._new_run(surface, "node_stream")
        self._instrument(kwargs, run, stream=True)
        with run.track():
            async with getattr(self.agent, surface)(user_prompt, **kwargs) as result:
                yield run, result


def _has_instrumentation(agent: Any, run_caps: list[Any], cls: type[Any]) -> bool:
    found: list[Any] = [c for c in run_caps if isinstance(c, cls)]
    root = getattr(agent, "_root_capability", None)
    apply = getattr(root, "apply", None)
    if callable(apply):
        try:
            apply(lambda cap: found.append(cap) if isinstance(cap, cls) else None)
        except Exception:  # a private detail of PydanticAI: when it moves, add ours
            return bool(found)
    return bool(found)


def _note_deferred(run: AgentRun, output: Any) -> None:
    """A ``DeferredToolRequests`` output: the run waits for approvals or external results."""
    if type(output).__name__ != "DeferredToolRequests":
        return
    approvals = list(getattr(output, "approvals", ()) or ())
    calls = list(getattr(output, "calls", ()) or ())
    ids = [str(getattr(c, "tool_call_id", "")) for c in [*approvals, *calls]]
    kinds = ["approval"] * len(approvals) + ["external_call"] * len(calls)
    run.interrupt(ids, kinds=kinds)
