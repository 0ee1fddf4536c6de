"""``KitaruClaudeRunner``: one Claude Agent SDK invocation = one kitaru checkpoint."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kitaru.adapters._common import (
    adapter_checkpoint,
    call_extras,
    current_extras,
    normalize_name,
    require_module,
    run_coroutine_sync,
)
from kitaru.adapters.claude_agent_sdk._events import ClaudeStreamDescriber, new_stream
from kitaru.exceptions import KitaruError, KitaruUsageError

__all__ = [
    "ClaudeCapturePolicy",
    "ClaudeResultMessageError",
    "ClaudeRunResult",
    "KitaruClaudeRunner",
]

_EXTRA = "claude-agent-sdk"
CHECKPOINT_TYPE = "claude_agent_sdk_invocation"


@dataclass(frozen=True, slots=True)
class ClaudeCapturePolicy:
    """What the Claude Agent SDK adapter may put into live events.

    Attributes:
        include_stream_text_deltas: Add each text delta, clipped to 240 characters, as
            ``text_delta`` (and use it as ``display``). Off by default. The flag is part of
            the streaming checkpoint's cache identity.
        emit_child_events: Publish ``claude_agent_sdk.stream.*`` events at all.
    """

    include_stream_text_deltas: bool = False
    emit_child_events: bool = True

    def __post_init__(self) -> None:
        for name in ("include_stream_text_deltas", "emit_child_events"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise KitaruUsageError(
                    f"ClaudeCapturePolicy.{name} must be True or False, got {value!r}"
                )


class ClaudeResultMessageError(KitaruError, RuntimeError):
    """Claude finished with an error ``ResultMessage``.

    ``str(exc)`` includes the provider's result text for your logs; live events only carry
    :attr:`safe_live_message` (the subtype) and a content-free diagnostic.

    Attributes:
        result_message: The SDK's ``ResultMessage``.
        subtype: Its ``subtype`` (e.g. ``error_during_execution``).
        safe_live_message: The message live events may publish.
    """

    def __init__(self, result_message: Any) -> None:
        self.result_message = result_message
        self.subtype = str(getattr(result_message, "subtype", "unknown"))
        self.safe_live_message = (
            f"Claude Agent SDK returned an error ResultMessage; subtype={self.subtype!r}"
        )
        detail = getattr(result_message, "result", None)
        super().__init__(
            self.safe_live_message if detail is None else f"{self.safe_live_message}: {detail}"
        )


@dataclass(frozen=True)
class ClaudeRunResult:
    """The durable outcome of one Claude invocation (what the checkpoint stores).

    Attributes:
        result: The final result text.
        session_id: The Claude session, to resume later.
        subtype: The result's subtype (``success`` or an error subtype).
        is_error: Always ``False`` here (error results raise :class:`ClaudeResultMessageError`).
        num_turns: Turns the invocation took.
        total_cost_usd: Reported cost, when known.
        usage: Reported token usage, when known.
        structured_output: Structured output, when requested.
        stop_reason: Why the model stopped.
        messages: Every SDK message of the invocation (dataclasses, storable).
    """

    result: str | None
    session_id: str | None
    subtype: str
    is_error: bool
    num_turns: int
    total_cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    structured_output: Any = None
    stop_reason: str | None = None
    messages: list[Any] = field(default_factory=list)

    @classmethod
    def from_messages(cls, final: Any, messages: list[Any]) -> ClaudeRunResult:
        """Build from the final ``ResultMessage`` and all messages."""
        return cls(
            result=final.result,
            session_id=final.session_id,
            subtype=final.subtype,
            is_error=bool(final.is_error),
            num_turns=final.num_turns,
            total_cost_usd=final.total_cost_usd,
            usage=final.usage,
            structured_output=final.structured_output,
            stop_reason=getattr(final, "stop_reason", None),
            messages=messages,
        )


@dataclass(frozen=True, slots=True)
class _Extras:
    options: Any
    on_message: Callable[[Any], Any] | None


def _diagnostic(message: Any) -> dict[str, Any]:
    # Content-free facts about an error result; never ``result`` or ``errors`` text.
    errors = getattr(message, "errors", None)
    return {
        "subtype": str(getattr(message, "subtype", "")),
        "is_error": bool(getattr(message, "is_error", False)),
        "api_error_status": getattr(message, "api_error_status", None),
        "stop_reason": getattr(message, "stop_reason", None),
        "terminal_reason": getattr(message, "terminal_reason", None),
        "num_turns": getattr(message, "num_turns", None),
        "error_count": len(errors) if isinstance(errors, list) else 0,
    }


class KitaruClaudeRunner:
    """Runs Claude Agent SDK invocations as durable kitaru checkpoints.

    One completed invocation (``claude_agent_sdk.query``) is one checkpoint: its
    :class:`ClaudeRunResult` is stored, reused on replay and (with ``cache=True``) cached.
    ``run_stream()`` / ``run_stream_sync()`` also request partial messages and publish
    ``claude_agent_sdk.stream.started``, one ``claude_agent_sdk.stream.event`` per SDK message
    and one ``claude_agent_sdk.stream.completed`` or ``claude_agent_sdk.stream.failed``.

    Args:
        options: ``ClaudeAgentOptions`` for every invocation (never modified: streaming
            surfaces copy it and set ``include_partial_messages=True`` on the copy).
        name: Label used in events and the checkpoint name.
        capture: What live events may contain (default :class:`ClaudeCapturePolicy`).
        cache: Reuse the stored result of an earlier invocation with the same prompt and
            capture policy (options are not part of the key).
        retries: Extra attempts of a failing invocation.
        transport_factory: Makes the SDK ``Transport`` for each invocation (default: the SDK's
            own Claude Code subprocess); for remote connections and tests.

    Raises:
        MissingExtraError: The SDK is not installed (``pip install 'kitaru[claude-agent-sdk]'``).
    """

    def __init__(
        self,
        options: Any = None,
        *,
        name: str = "claude",
        capture: ClaudeCapturePolicy | None = None,
        cache: bool = False,
        retries: int = 0,
        transport_factory: Callable[[], Any] | None = None,
    ) -> None:
        require_module("claude_agent_sdk", extra=_EXTRA, feature="kitaru.adapters.claude_agent_sdk")
        if capture is not None and not isinstance(capture, ClaudeCapturePolicy):
            raise KitaruUsageError(f"capture must be a ClaudeCapturePolicy, got {capture!r}")
        self.options = options
        self.runner_name = normalize_name(name, "claude")
        self.capture = capture or ClaudeCapturePolicy()
        self.transport_factory = transport_factory
        base = f"{self.runner_name}_claude_invocation"
        opts: dict[str, Any] = {"type": CHECKPOINT_TYPE, "cache": cache, "retries": retries}
        self._run_ckpt = adapter_checkpoint(self._run_body, name=base, **opts)
        self._run_sync_ckpt = adapter_checkpoint(self._run_sync_body, name=base, **opts)

    def __repr__(self) -> str:
        return f"<KitaruClaudeRunner {self.runner_name!r}>"

    # -- public surfaces ------------------------------------------------------------------

    async def run(self, prompt: str, *, options: Any = None) -> ClaudeRunResult:
        """One invocation as a checkpoint, without partial messages or live item events."""
        with call_extras(_Extras(options, None)):
            return await self._run_ckpt(self._request("run", prompt, stream=False))  # type: ignore[no-any-return]

    def run_sync(self, prompt: str, *, options: Any = None) -> ClaudeRunResult:
        """Synchronous :meth:`run`."""
        with call_extras(_Extras(options, None)):
            return self._run_sync_ckpt(self._request("run_sync", prompt, stream=False))  # type: ignore[no-any-return]

    async def run_stream(
        self,
        prompt: str,
        *,
        options: Any = None,
        on_message: Callable[[Any], Any] | None = None,
    ) -> ClaudeRunResult:
        """One invocation as a checkpoint, publishing live events for every SDK message.

        Args:
            prompt: The prompt.
            options: ``ClaudeAgentOptions`` for this call (default: the runner's); copied, with
                ``include_partial_messages=True`` on the copy.
            on_message: Called with every SDK message as it arrives (sync or async).

        Returns:
            The invocation's :class:`ClaudeRunResult`.

        Raises:
            ClaudeResultMessageError: Claude finished with an error result.
            RuntimeError: The SDK stream ended without a ``ResultMessage``.
            KitaruContextError: Called outside a ``@flow``.
        """
        with call_extras(_Extras(options, on_message)):
            return await self._run_ckpt(self._request("run_stream", prompt, stream=True))  # type: ignore[no-any-return]

    def run_stream_sync(
        self,
        prompt: str,
        *,
        options: Any = None,
        on_message: Callable[[Any], Any] | None = None,
    ) -> ClaudeRunResult:
        """Synchronous :meth:`run_stream`."""
        with call_extras(_Extras(options, on_message)):
            return self._run_sync_ckpt(self._request("run_stream_sync", prompt, stream=True))  # type: ignore[no-any-return]

    # -- checkpoint bodies ----------------------------------------------------------------

    def _request(self, surface: str, prompt: str, *, stream: bool) -> dict[str, Any]:
        if not isinstance(prompt, str):
            raise KitaruUsageError(f"prompt must be a str, got {type(prompt).__name__}")
        return {
            "surface": surface,
            "prompt": prompt,
            "stream": stream,
            # Streamed and plain calls differ in what they may publish, so in their identity.
            "include_stream_text_deltas": stream and self.capture.include_stream_text_deltas,
        }

    def _options(self, extras: _Extras, *, stream: bool) -> Any:
        from claude_agent_sdk import ClaudeAgentOptions

        options = extras.options if extras.options is not None else self.options
        if options is None:
            options = ClaudeAgentOptions()
        if stream:
            # A copy: the caller's options object stays as it was.
            options = dataclasses.replace(options, include_partial_messages=True)
        return options

    async def _run_body(self, request: dict[str, Any]) -> ClaudeRunResult:
        import claude_agent_sdk

        extras: _Extras = current_extras() or _Extras(None, None)
        stream = bool(request["stream"])
        live = new_stream(self.runner_name, enabled=stream and self.capture.emit_child_events)
        describe = ClaudeStreamDescriber(text_deltas=request["include_stream_text_deltas"])
        messages: list[Any] = []
        final: Any = None
        kwargs: dict[str, Any] = {"prompt": request["prompt"]}
        kwargs["options"] = self._options(extras, stream=stream)
        if self.transport_factory is not None:
            kwargs["transport"] = self.transport_factory()
        live.start(status="started")
        try:
            async for message in claude_agent_sdk.query(**kwargs):
                messages.append(message)
                if isinstance(message, claude_agent_sdk.ResultMessage):
                    final = message
                live.observe(message, describe)
                if extras.on_message is not None:
                    outcome = extras.on_message(message)
                    if inspect.isawaitable(outcome):
                        await outcome
            if final is None:
                raise RuntimeError("Claude Agent SDK stream ended without a ResultMessage")
            if final.is_error:
                raise ClaudeResultMessageError(final)
        except ClaudeResultMessageError as exc:
            live.fail(
                exc,
                message=exc.safe_live_message,
                claude_result_diagnostic=_diagnostic(exc.result_message),
            )
            raise
        except BaseException as exc:
            live.fail(exc)
            raise
        live.complete(session_id=final.session_id)
        return ClaudeRunResult.from_messages(final, messages)

    def _run_sync_body(self, request: dict[str, Any]) -> ClaudeRunResult:
        return run_coroutine_sync(lambda: self._run_body(request))
