"""``KitaruClaudeRunner``: one Claude Agent SDK invocation = one kitaru checkpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kitaru.adapters._common import AdapterPolicy, LiveStream, maybe_await, normalize_name
from kitaru.adapters._entry import AdapterEntry, call_extras, current_extras, run_coroutine_sync
from kitaru.adapters._genai import GenAISpans
from kitaru.adapters.claude_agent_sdk._events import SPEC, ClaudeStreamDescriber
from kitaru.adapters.claude_agent_sdk._tracker import ClaudeRunTracker
from kitaru.exceptions import KitaruError, KitaruUsageError

__all__ = [
    "ClaudeCapturePolicy",
    "ClaudeResultMessageError",
    "ClaudeRunResult",
    "KitaruClaudeRunner",
]


@dataclass(frozen=True, slots=True)
class ClaudeCapturePolicy(AdapterPolicy):
    """What the Claude Agent SDK adapter may put into live events.

    Attributes:
        include_stream_text_deltas: The text opt-in (:attr:`include_text`): coalesced text
            deltas, clipped to 240 characters, as ``text_delta`` (and ``display``). Off by
            default. Part of the streaming checkpoint's cache identity.
        emit_child_events: Publish ``claude_agent_sdk.stream.*`` events at all.
        delta_interval: Seconds between two delta events of one content block (default: the
            ``KITARU_ADAPTER_DELTA_INTERVAL`` environment variable, else 0.25).
    """

    TEXT_FIELD: ClassVar[str] = "include_stream_text_deltas"

    include_stream_text_deltas: bool = False
    emit_child_events: bool = True
    delta_interval: float | None = None


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
    prompt: Any = None
    client: Any = None  # a connected ClaudeSDKClient (run_turn), else None: query()
    session_id: str = "default"


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


class KitaruClaudeRunner(AdapterEntry[ClaudeCapturePolicy]):
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

    SPEC = SPEC
    POLICY = ClaudeCapturePolicy

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
        self.require()
        self.options = options
        self.runner_name = normalize_name(name, "claude")
        self.capture = self._setup(self.runner_name, capture, cache=cache, retries=retries)
        self.transport_factory = transport_factory
        self._run_ckpt = self._checkpoint(self._run_body)
        self._run_sync_ckpt = self._checkpoint(self._run_sync_body)

    # -- public surfaces ------------------------------------------------------------------

    async def run(self, prompt: Prompt, *, options: Any = None) -> ClaudeRunResult:
        """One invocation as a checkpoint: item events from whole messages (no partials).

        ``prompt`` is a string or an async iterable of stream-JSON user messages (the SDK's
        streaming input; it cannot be part of a cache key, so ``cache=True`` refuses it).
        """
        with call_extras(_Extras(options, None, prompt)):
            return await self._run_ckpt(self._request("run", prompt, stream=False))  # type: ignore[no-any-return]

    def run_sync(self, prompt: Prompt, *, options: Any = None) -> ClaudeRunResult:
        """Synchronous :meth:`run`."""
        with call_extras(_Extras(options, None, prompt)):
            return self._run_sync_ckpt(self._request("run_sync", prompt, stream=False))  # type: ignore[no-any-return]

    async def run_stream(
        self,
        prompt: Prompt,
        *,
        options: Any = None,
        on_message: Callable[[Any], Any] | None = None,
    ) -> ClaudeRunResult:
        """One invocation as a checkpoint, publishing live events for every SDK message.

        Args:
            prompt: The prompt (a string or an async iterable of user messages).
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
        with call_extras(_Extras(options, on_message, prompt)):
            return await self._run_ckpt(self._request("run_stream", prompt, stream=True))  # type: ignore[no-any-return]

    def run_stream_sync(
        self,
        prompt: Prompt,
        *,
        options: Any = None,
        on_message: Callable[[Any], Any] | None = None,
    ) -> ClaudeRunResult:
        """Synchronous :meth:`run_stream`."""
        with call_extras(_Extras(options, on_message, prompt)):
            return self._run_sync_ckpt(self._request("run_stream_sync", prompt, stream=True))  # type: ignore[no-any-return]

    async def run_turn(
        self,
        client: Any,
        prompt: Prompt,
        *,
        session_id: str = "default",
        on_message: Callable[[Any], Any] | None = None,
    ) -> ClaudeRunResult:
        """One turn of a ``ClaudeSDKClient`` conversation as a checkpoint.

        Sends ``prompt`` with ``client.query(prompt, session_id)`` and reads
        ``client.receive_response()`` up to its ``ResultMessage``, publishing the same
        ``claude_agent_sdk.stream.*`` events, tool outcomes, usage and GenAI spans as
        :meth:`run_stream`. The client stays yours: connect it before (``async with
        ClaudeSDKClient(options) as client``) and keep using it between turns (``interrupt()``,
        ``set_model()``, ...); the runner never connects or disconnects it. Partial-message
        (delta) events appear when the client's options set ``include_partial_messages=True``.

        A turn depends on the conversation before it, which no cache key can hold, so a
        runner built with ``cache=True`` refuses it. On a replay the stored result of the turn
        is returned without sending anything to the client.

        Args:
            client: A connected ``claude_agent_sdk.ClaudeSDKClient``.
            prompt: The user's message (a string or an async iterable of user messages).
            session_id: The SDK's conversation session identifier.
            on_message: Called with every SDK message as it arrives (sync or async).

        Returns:
            The turn's :class:`ClaudeRunResult`.

        Raises:
            ClaudeResultMessageError: Claude finished the turn with an error result.
            KitaruUsageError: ``client`` is not a ``ClaudeSDKClient``, or ``cache=True``.
            KitaruContextError: Called outside a ``@flow``.
        """
        from claude_agent_sdk import ClaudeSDKClient

        if not isinstance(client, ClaudeSDKClient):
            raise KitaruUsageError(
                f"run_turn() needs a claude_agent_sdk.ClaudeSDKClient, got {type(client).__name__}"
            )
        if self.cache:
            raise KitaruUsageError(
                "KitaruClaudeRunner(cache=True) cannot cache a ClaudeSDKClient turn: its answer "
                "depends on the conversation before it (use cache=False)"
            )
        options = getattr(client, "options", None)
        stream = bool(getattr(options, "include_partial_messages", False))
        with call_extras(_Extras(None, on_message, prompt, client, session_id)):
            request = self._request("run_turn", prompt, stream=stream)
            return await self._run_ckpt(request)  # type: ignore[no-any-return]

    # -- checkpoint bodies ----------------------------------------------------------------

    def _request(self, surface: str, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        if isinstance(prompt, AsyncIterable):
            if self.cache:
                raise KitaruUsageError(
                    "KitaruClaudeRunner(cache=True) needs a str prompt: an async iterable of "
                    "messages cannot be part of a cache key (use cache=False)"
                )
            key: Any = {"prompt_kind": "async_iterable"}
        elif isinstance(prompt, str):
            key = prompt
        else:
            raise KitaruUsageError(
                "prompt must be a str or an async iterable of messages, "
                f"got {type(prompt).__name__}"
            )
        return {
            "surface": surface,
            "prompt": key,
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
        run = self._agent_run(
            {"runner_name": self.runner_name, "scope": "invocation"},
            GenAISpans(provider="anthropic", agent_name=self.runner_name),
        )
        live = run.live
        tracker = ClaudeRunTracker(run)
        describe = ClaudeStreamDescriber(text_deltas=request["include_stream_text_deltas"])
        messages: list[Any] = []
        final: Any = None
        prompt = extras.prompt if extras.prompt is not None else request["prompt"]
        with run.track():
            try:
                async for message in self._messages(extras, prompt, stream=stream):
                    messages.append(message)
                    if isinstance(message, claude_agent_sdk.ResultMessage):
                        final = message
                    _publish(live, message, describe)
                    tracker.observe(message)
                    if extras.on_message is not None:
                        await maybe_await(extras.on_message(message))
                if final is None:
                    raise RuntimeError("Claude Agent SDK stream ended without a ResultMessage")
                tracker.finish(final)
                if final.is_error:
                    raise ClaudeResultMessageError(final)
            except ClaudeResultMessageError as exc:
                live.fail(
                    exc,
                    message=exc.safe_live_message,
                    claude_result_diagnostic=_diagnostic(exc.result_message),
                    **live.terminal,
                )
                raise
            live.terminal["session_id"] = final.session_id
        return ClaudeRunResult.from_messages(final, messages)

    def _messages(self, extras: _Extras, prompt: Any, *, stream: bool) -> AsyncIterator[Any]:
        """The SDK messages of one invocation: ``query()``, or one turn of the user's client."""
        import claude_agent_sdk

        if extras.client is not None:
            return _client_turn(extras.client, prompt, extras.session_id)
        kwargs: dict[str, Any] = {"prompt": prompt}
        kwargs["options"] = self._options(extras, stream=stream)
        if self.transport_factory is not None:
            kwargs["transport"] = self.transport_factory()
        return claude_agent_sdk.query(**kwargs)

    def _run_sync_body(self, request: dict[str, Any]) -> ClaudeRunResult:
        return run_coroutine_sync(lambda: self._run_body(request))


Prompt = str | AsyncIterable[dict[str, Any]]
"""A Claude prompt: a string, or an async iterable of stream-JSON user messages."""


async def _client_turn(client: Any, prompt: Any, session_id: str) -> AsyncIterator[Any]:
    # The SDK's own turn: send, then read up to and including the ResultMessage.
    await client.query(prompt, session_id=session_id)
    async for message in client.receive_response():
        yield message


def _publish(live: LiveStream, message: Any, describe: ClaudeStreamDescriber) -> None:
    """One SDK message as an event; text and tool-input deltas coalesced per content block."""
    try:
        fields = describe(message)
    except Exception:
        live.item(live.fallback_fields(message))
        return
    category = fields.get("category")
    index = fields.get("content_block_index")
    if category in ("text_delta", "tool_input_delta"):
        text = fields.pop("text_delta", None)
        live.delta(f"block:{index}", fields, text=text)
        return
    if category in ("content_block_stop", "message_stop"):
        live.flush_deltas(f"block:{index}" if category == "content_block_stop" else None)
    live.item(fields)
