"""``KitaruAgent``: a PydanticAI agent whose runs are kitaru checkpoints with live events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from kitaru.adapters._common import (
    LiveStream,
    adapter_checkpoint,
    call_extras,
    current_extras,
    normalize_name,
    require_module,
)
from kitaru.adapters.pydantic_ai._events import (
    failure_status,
    kitaru_stream_capability,
    new_stream,
)
from kitaru.exceptions import KitaruContextError, KitaruUsageError
from kitaru.runtime._scope import current_checkpoint

__all__ = ["CapturePolicy", "KitaruAgent"]

_EXTRA = "pydantic-ai"
CHECKPOINT_TYPE = "pydantic_ai_agent"


@dataclass(frozen=True, slots=True)
class CapturePolicy:
    """What the PydanticAI adapter may put into live events.

    Attributes:
        save_stream_transcripts: Add each text delta, clipped to 240 characters, as
            ``text_delta`` (and use it as ``display``). Off by default: model output stays out
            of live events.
        emit_child_events: Publish ``pydantic_ai.stream.*`` events at all. With ``False`` the
            adapter publishes nothing while your ``event_stream_handler`` still receives every
            event.
    """

    save_stream_transcripts: bool = False
    emit_child_events: bool = True

    def __post_init__(self) -> None:
        for field in ("save_stream_transcripts", "emit_child_events"):
            value = getattr(self, field)
            if not isinstance(value, bool):
                raise KitaruUsageError(
                    f"CapturePolicy.{field} must be True or False, got {value!r}"
                )


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


class KitaruAgent:
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
            history and capture policy (``deps`` and settings are not part of the key).
        retries: Extra attempts of a failing run.

    Raises:
        MissingExtraError: PydanticAI is not installed (``pip install 'kitaru[pydantic-ai]'``).
    """

    def __init__(
        self,
        agent: Any,
        *,
        name: str | None = None,
        capture: CapturePolicy | None = None,
        cache: bool = False,
        retries: int = 0,
    ) -> None:
        require_module("pydantic_ai", extra=_EXTRA, feature="kitaru.adapters.pydantic_ai")
        if not callable(getattr(agent, "run", None)) or not callable(getattr(agent, "iter", None)):
            raise KitaruUsageError(f"KitaruAgent needs a pydantic_ai agent, got {agent!r}")
        if capture is not None and not isinstance(capture, CapturePolicy):
            raise KitaruUsageError(f"capture must be a CapturePolicy, got {capture!r}")
        self.agent = agent
        self.agent_name = normalize_name(name or getattr(agent, "name", None), "agent")
        self.capture = capture or CapturePolicy()
        checkpoint_name = f"{self.agent_name}_pydantic_ai"
        self._async_checkpoint = adapter_checkpoint(
            self._run_body, name=checkpoint_name, type=CHECKPOINT_TYPE, cache=cache, retries=retries
        )
        self._sync_checkpoint = adapter_checkpoint(
            self._run_sync_body,
            name=checkpoint_name,
            type=CHECKPOINT_TYPE,
            cache=cache,
            retries=retries,
        )

    def __repr__(self) -> str:
        return f"<KitaruAgent {self.agent_name!r}>"

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
        request = self._request("run", user_prompt, message_history)
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
        request = self._request("run_sync", user_prompt, message_history)
        with call_extras(_Extras(kwargs, event_stream_handler)):
            return self._sync_checkpoint(request)

    def _request(
        self, surface: str, user_prompt: Any, message_history: Sequence[Any] | None
    ) -> dict[str, Any]:
        # The durable identity of the call: the cache key and what replay matches on.
        return {
            "surface": surface,
            "user_prompt": user_prompt,
            "message_history": None if message_history is None else list(message_history),
            "save_stream_transcripts": self.capture.save_stream_transcripts,
        }

    def _prepare(self, request: dict[str, Any]) -> tuple[dict[str, Any], LiveStream | None]:
        extras: _Extras = current_extras() or _Extras({}, None)
        kwargs = dict(extras.kwargs)
        if request["message_history"] is not None:
            kwargs["message_history"] = request["message_history"]
        if extras.handler is None:
            # No streaming hook: the run is not streamed, so there is nothing to publish.
            return kwargs, None
        kwargs["event_stream_handler"] = extras.handler
        live = self._instrument(kwargs, request["surface"], "event_stream_handler")
        return kwargs, live

    def _instrument(self, kwargs: dict[str, Any], surface: str, source: str) -> LiveStream | None:
        if not self.capture.emit_child_events:
            return None
        live = new_stream(self.agent_name, surface, source, enabled=True)
        capability = kitaru_stream_capability(
            live, transcripts=self.capture.save_stream_transcripts
        )
        kwargs["capabilities"] = [*(kwargs.get("capabilities") or ()), capability]
        return live

    async def _run_body(self, request: dict[str, Any]) -> Any:
        kwargs, live = self._prepare(request)
        if live is not None:
            live.start(status="started")
        try:
            result = await self.agent.run(request["user_prompt"], **kwargs)
        except BaseException as exc:
            if live is not None:
                live.fail(exc, status=failure_status(exc))
            raise
        if live is not None:
            live.complete()
        return result

    def _run_sync_body(self, request: dict[str, Any]) -> Any:
        kwargs, live = self._prepare(request)
        if live is not None:
            live.start(status="started")
        try:
            result = self.agent.run_sync(request["user_prompt"], **kwargs)
        except BaseException as exc:
            if live is not None:
                live.fail(exc, status=failure_status(exc))
            raise
        if live is not None:
            live.complete()
        return result

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
        self._require_checkpoint("run_stream")
        live = self._instrument(kwargs, "run_stream", "node_stream")
        if live is not None:
            live.start(status="started")
        try:
            async with self.agent.run_stream(user_prompt, **kwargs) as result:
                yield result
        except BaseException as exc:
            if live is not None:
                live.fail(exc, status=failure_status(exc))
            raise
        if live is not None:
            live.complete()

    @asynccontextmanager
    async def iter(self, user_prompt: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """PydanticAI's ``iter`` inside your checkpoint, publishing every node's stream events.

        Raises:
            KitaruContextError: Not inside a running ``@kitaru.checkpoint`` (the error is also
                a PydanticAI ``UserError``).
        """
        self._require_checkpoint("iter")
        live = self._instrument(kwargs, "iter", "node_stream")
        if live is not None:
            live.start(status="started")
        try:
            async with self.agent.iter(user_prompt, **kwargs) as agent_run:
                yield agent_run
        except BaseException as exc:
            if live is not None:
                live.fail(exc, status=failure_status(exc))
            raise
        if live is not None:
            live.complete()
