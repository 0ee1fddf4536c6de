"""The OpenAI Agents adapter: ``KitaruRunner`` runs an Agents SDK agent as kitaru checkpoints.

Install with ``pip install 'kitaru[openai-agents]'``; importing this module does not import the
SDK, constructing a :class:`KitaruRunner` does.

``run_stream()`` / ``run_stream_sync()`` publish ``openai_agents.stream.*`` live events
(docs/adapters.md, "OpenAI Agents"): ``started`` -> one ``event`` per SDK stream event (raw
deltas coalesced) -> exactly one ``completed`` or ``failed``. Item events carry
``adapter="openai_agents"``, ``agent_name``, ``surface``, ``category`` (the SDK event type)
and ``display``; raw response events add ``event_type``; run item events add ``name``,
``item_type``, ``item_name`` and ``call_id``; agent updates add ``new_agent_name``. Tool
arguments, tool output, prompts and model text never appear unless
``OpenAICapturePolicy(include_stream_text_deltas=True)`` adds clipped ``text_delta`` fields.

Every surface (``run`` too) publishes tool results (with their outcome) and handoffs through
the SDK's ``RunHooks``; an approval-pending run ends ``interrupted`` and keeps the SDK's
``RunState`` (:meth:`KitaruRunner.load_state`). The SDK's own tracing is left as you
configured it; kitaru's GenAI spans come from the hooks.
"""

from kitaru._public import publish_names
from kitaru.adapters.openai_agents._events import (
    OPENAI_AGENTS_STREAM_EVENT_KINDS,
    OPENAI_AGENTS_STREAM_TERMINAL_EVENT_KINDS,
    describe_stream_event,
)
from kitaru.adapters.openai_agents._runner import (
    KitaruRunner,
    OpenAICapturePolicy,
    OpenAIRunResult,
)

__all__ = [
    "OPENAI_AGENTS_STREAM_EVENT_KINDS",
    "OPENAI_AGENTS_STREAM_TERMINAL_EVENT_KINDS",
    "KitaruRunner",
    "OpenAICapturePolicy",
    "OpenAIRunResult",
    "describe_stream_event",
]

publish_names(__name__, globals(), __all__)
