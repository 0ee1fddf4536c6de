"""The LangGraph adapter: ``KitaruGraphRunner`` runs one graph call as one kitaru checkpoint.

Install with ``pip install 'kitaru[langgraph]'``; importing this module does not import
LangGraph, constructing a :class:`KitaruGraphRunner` does.

Every surface of ``KitaruGraphRunner`` (``invoke``, ``ainvoke``, ``run_stream``,
``arun_stream``; ``graph_call`` mode) publishes ``langgraph.stream.*`` live events
(docs/adapters.md, "LangGraph"): ``started``, one event per v2 stream part of the watched
modes (kind ``langgraph.stream.<mode>``, message chunks coalesced; malformed parts and unknown
modes go to ``langgraph.stream.debug``), one ``langgraph.stream.tool`` per tool call, then
exactly one ``completed`` (``status`` ``completed`` or ``interrupted``) or ``failed`` carrying
``stream_event_counts_by_mode``, ``stream_part_count`` and token usage. Events carry
``adapter="langgraph"``, ``graph_name``, ``thread_id``, ``category``, ``display``, ``mode`` and
``langgraph={"stream_version": "v2", "namespace": [...], "subgraph": bool}`` plus content-free
summaries; state values, message text and custom payloads appear only with the opt-ins of
:class:`LangGraphStreamPolicy`.
"""

from kitaru._public import publish_names
from kitaru.adapters.langgraph._events import (
    LANGGRAPH_STREAM_EVENT_KINDS,
    LANGGRAPH_STREAM_TERMINAL_EVENT_KINDS,
    bounded_payload,
)
from kitaru.adapters.langgraph._policy import STREAM_MODES, LangGraphStreamPolicy
from kitaru.adapters.langgraph._runner import KitaruGraphRunner

__all__ = [
    "LANGGRAPH_STREAM_EVENT_KINDS",
    "LANGGRAPH_STREAM_TERMINAL_EVENT_KINDS",
    "STREAM_MODES",
    "KitaruGraphRunner",
    "LangGraphStreamPolicy",
    "bounded_payload",
]

publish_names(__name__, globals(), __all__)
