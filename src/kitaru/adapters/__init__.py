"""Agent adapters: run an agent framework's call as a durable, observed kitaru checkpoint.

Each adapter is an optional extra, imported by path; importing one never imports its framework
until it is used, and a missing framework raises an error that names the extra to install:

* ``kitaru.adapters.pydantic_ai``: ``KitaruAgent`` (extra ``pydantic-ai``)
* ``kitaru.adapters.openai_agents``: ``KitaruRunner`` (extra ``openai-agents``)
* ``kitaru.adapters.claude_agent_sdk``: ``KitaruClaudeRunner`` (extra ``claude-agent-sdk``)
* ``kitaru.adapters.langgraph``: ``KitaruGraphRunner`` (extra ``langgraph``)

Every adapter call runs as an adapter-owned :class:`~kitaru.Checkpoint` inside a ``@flow``, so
its result is stored durably, reused on replay and (with ``cache=True``) cached. While a
streaming surface runs, the adapter publishes ``<prefix>.started``, one event per framework
stream item and exactly one ``<prefix>.completed`` or ``<prefix>.failed`` through
:func:`kitaru.events.publish`. Those events say what kind of thing happened, never prompts, tool
arguments, tool results or model output, unless the adapter's capture policy opts in; and a
failure to publish never changes the agent run's result.
"""

from kitaru._public import publish_names
from kitaru.adapters._common import (
    DISPLAY_MAX_CHARS,
    MESSAGE_MAX_CHARS,
    TEXT_DELTA_MAX_CHARS,
    MissingExtraError,
)

__all__ = [
    "DISPLAY_MAX_CHARS",
    "MESSAGE_MAX_CHARS",
    "TEXT_DELTA_MAX_CHARS",
    "MissingExtraError",
]

publish_names(__name__, globals(), __all__)
