"""A fake Claude Code transport: speaks the SDK's stream-JSON protocol from a script.

It answers the SDK's control requests (``initialize``) and, once the user message arrives,
replays scripted CLI frames, so the real ``claude_agent_sdk.query`` parses real messages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from claude_agent_sdk import Transport

SESSION = "sess-1"


class FakeClaudeTransport(Transport):
    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = frames
        self.written: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._ready = False

    async def connect(self) -> None:
        self._ready = True

    async def write(self, data: str) -> None:
        for line in data.splitlines():
            if not line.strip():
                continue
            msg = json.loads(line)
            self.written.append(msg)
            if msg.get("type") == "control_request":
                await self._queue.put(
                    {
                        "type": "control_response",
                        "response": {
                            "subtype": "success",
                            "request_id": msg["request_id"],
                            "response": {},
                        },
                    }
                )
            elif msg.get("type") == "user":
                for frame in self.frames:
                    await self._queue.put(frame)
                await self._queue.put(None)

    async def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        self._ready = False
        self._queue.put_nowait(None)

    def is_ready(self) -> bool:
        return self._ready

    async def end_input(self) -> None:
        return None


def _stream(event: dict[str, Any], n: int) -> dict[str, Any]:
    return {"type": "stream_event", "uuid": f"u{n}", "session_id": SESSION, "event": event}


def script(
    *,
    prompt_echo: str = "",
    tool_input: str = '{"path": "SECRET-ARG"}',
    tool_result: str = "SECRET-TOOLRESULT",
    text: str = "SECRET-OUT",
    result_text: str = "SECRET-OUT",
    error: bool = False,
    with_result: bool = True,
) -> list[dict[str, Any]]:
    """A realistic invocation: a tool call with streamed input, its result, then text."""
    frames: list[dict[str, Any]] = [
        {"type": "system", "subtype": "init", "session_id": SESSION, "model": "claude-test"},
        _stream({"type": "message_start", "message": {"id": "m1", "content": []}}, 1),
        _stream(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}},
            },
            2,
        ),
        _stream(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": tool_input},
            },
            3,
        ),
        _stream({"type": "content_block_stop", "index": 0}, 4),
        _stream({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}, 5),
        _stream({"type": "message_stop"}, 6),
        {
            "type": "assistant",
            "session_id": SESSION,
            "message": {
                "model": "claude-test",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Read",
                        "input": {"path": tool_input},
                    }
                ],
                "usage": {"input_tokens": 3},
                "stop_reason": "tool_use",
            },
        },
        {
            "type": "user",
            "session_id": SESSION,
            "message": {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": tool_result}
                ],
            },
            "tool_use_result": {"content": tool_result},
        },
        _stream({"type": "message_start", "message": {"id": "m2", "content": []}}, 7),
        _stream(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            8,
        ),
        _stream(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
            9,
        ),
        _stream({"type": "content_block_stop", "index": 0}, 10),
        _stream({"type": "message_stop"}, 11),
        {
            "type": "assistant",
            "session_id": SESSION,
            "message": {
                "model": "claude-test",
                "content": [{"type": "text", "text": text + prompt_echo}],
                "stop_reason": "end_turn",
            },
        },
        {
            "type": "rate_limit_event",
            "uuid": "rl1",
            "session_id": SESSION,
            "rate_limit_info": {
                "status": "allowed",
                "rateLimitType": "five_hour",
                "utilization": 0.5,
            },
        },
    ]
    if with_result:
        frames.append(
            {
                "type": "result",
                "subtype": "error_during_execution" if error else "success",
                "duration_ms": 10,
                "duration_api_ms": 5,
                "is_error": error,
                "num_turns": 2,
                "session_id": SESSION,
                "result": result_text,
                "total_cost_usd": 0.01,
                "usage": {"input_tokens": 3, "output_tokens": 4},
            }
        )
    return frames


CONVERSATIONS: list[FakeClaudeConversation] = []
"""Every conversation a test flow opened, kept here (one module object) rather than in the test
module: the e2e tests load the adapter test modules a second time under other names, and a
replay runs whichever copy of a flow registered last."""


class FakeClaudeConversation(Transport):
    """A fake transport for ``ClaudeSDKClient``: one scripted reply per user message.

    Unlike :class:`FakeClaudeTransport` its message stream stays open between turns (as the
    CLI's does in a conversation) and ends only when the client disconnects.
    """

    def __init__(self, turns: list[list[dict[str, Any]]]) -> None:
        self.turns = list(turns)
        self.written: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._ready = False

    async def connect(self) -> None:
        self._ready = True

    async def write(self, data: str) -> None:
        for line in data.splitlines():
            if not line.strip():
                continue
            msg = json.loads(line)
            self.written.append(msg)
            if msg.get("type") == "control_request":
                await self._queue.put(
                    {
                        "type": "control_response",
                        "response": {
                            "subtype": "success",
                            "request_id": msg["request_id"],
                            "response": {},
                        },
                    }
                )
            elif msg.get("type") == "user":
                for frame in self.turns.pop(0):
                    await self._queue.put(frame)

    async def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        self._ready = False
        self._queue.put_nowait(None)

    def is_ready(self) -> bool:
        return self._ready

    async def end_input(self) -> None:
        pass
