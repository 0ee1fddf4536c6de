"""The Claude Agent SDK adapter: one Claude invocation = one kitaru checkpoint.

Install with ``pip install 'kitaru[claude-agent-sdk]'``; importing this module does not import
the SDK, constructing a :class:`KitaruClaudeRunner` does.

Every surface of ``KitaruClaudeRunner`` publishes ``claude_agent_sdk.stream.*`` live events
(docs/adapters.md, "Claude Agent SDK"): ``started`` -> one ``event`` per SDK message (and,
for ``run_stream``, per partial-message stream event, deltas coalesced) plus ``tool_call`` /
``tool_result`` events -> exactly one ``completed`` or ``failed``. Events carry
``adapter="claude_agent_sdk"``, ``runner_name``, ``scope="invocation"``, ``category`` and
``display`` plus content-free facts per category (``tool_call_started`` with ``tool_name`` and
``tool_id``, ``text_delta``, ``tool_input_delta``, ``assistant_message``, ``result_message``,
``rate_limit``, ...). Prompts, tool input, tool results and the result text never appear unless
``ClaudeCapturePolicy(include_stream_text_deltas=True)`` adds clipped ``text_delta`` fields.
"""

from kitaru._public import publish_names
from kitaru.adapters.claude_agent_sdk._events import (
    CLAUDE_STREAM_EVENT_KINDS,
    CLAUDE_STREAM_TERMINAL_EVENT_KINDS,
    ClaudeStreamDescriber,
)
from kitaru.adapters.claude_agent_sdk._runner import (
    ClaudeCapturePolicy,
    ClaudeResultMessageError,
    ClaudeRunResult,
    KitaruClaudeRunner,
)

__all__ = [
    "CLAUDE_STREAM_EVENT_KINDS",
    "CLAUDE_STREAM_TERMINAL_EVENT_KINDS",
    "ClaudeCapturePolicy",
    "ClaudeResultMessageError",
    "ClaudeRunResult",
    "ClaudeStreamDescriber",
    "KitaruClaudeRunner",
]

publish_names(__name__, globals(), __all__)
