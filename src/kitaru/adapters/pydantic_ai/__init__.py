"""The PydanticAI adapter: ``KitaruAgent`` runs a ``pydantic_ai.Agent`` as kitaru checkpoints.

Install with ``pip install 'kitaru[pydantic-ai]'``; importing this module does not import
PydanticAI, constructing a :class:`KitaruAgent` does.

Live events (``pydantic_ai.stream.*``) follow docs/adapters.md: ``started`` -> one ``event`` per
PydanticAI stream event -> exactly one ``completed`` or ``failed``. Their ``data`` holds
``adapter="pydantic_ai"``, ``agent_name``, ``surface`` (``run``, ``run_sync``, ``run_stream``,
``iter``), ``source`` (``event_stream_handler`` or ``node_stream``), ``category`` and
``display``; item events add ``event_type``, ``event_kind``, ``index``, ``part_kind``,
``delta_kind``, ``tool_name`` and ``tool_call_id`` when known, never tool arguments, tool
results, prompts or output. ``CapturePolicy(save_stream_transcripts=True)`` adds ``text_delta``
(clipped to 240 characters).
"""

from kitaru._public import publish_names
from kitaru.adapters.pydantic_ai._agent import CapturePolicy, KitaruAgent
from kitaru.adapters.pydantic_ai._events import (
    PYDANTIC_AI_STREAM_EVENT_KINDS,
    PYDANTIC_AI_STREAM_TERMINAL_EVENT_KINDS,
    describe_event,
)

__all__ = [
    "PYDANTIC_AI_STREAM_EVENT_KINDS",
    "PYDANTIC_AI_STREAM_TERMINAL_EVENT_KINDS",
    "CapturePolicy",
    "KitaruAgent",
    "describe_event",
]

publish_names(__name__, globals(), __all__)
