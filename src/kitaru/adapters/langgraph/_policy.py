"""``LangGraphStreamPolicy``: which stream modes to watch and what their events may carry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from kitaru.adapters._common import AdapterPolicy
from kitaru.exceptions import KitaruUsageError

__all__ = ["STREAM_MODES", "LangGraphStreamPolicy", "resolve_modes"]

STREAM_MODES: tuple[str, ...] = (
    "messages",
    "updates",
    "custom",
    "values",
    "checkpoints",
    "tasks",
    "debug",
)
"""The LangGraph v2 stream modes the adapter understands (one event kind each)."""


@dataclass(frozen=True, slots=True)
class LangGraphStreamPolicy(AdapterPolicy):
    """What ``KitaruGraphRunner.stream()`` watches and what its live events may contain.

    Attributes:
        default_modes: Stream modes used when a call names none (non-empty, de-duplicated).
        include_raw_payloads: Add bounded, redacted ``raw`` payloads of ``updates`` and the
            structural modes. Off by default: state values stay out of live events.
        include_message_text_deltas: The text opt-in (:attr:`include_text`): add the
            coalesced, clipped text of ``messages`` chunks as ``text_delta`` (and ``display``).
        include_custom_payload: Add the bounded, redacted payload of ``custom`` parts.
        allow_debug: Permit the ``debug`` mode (it carries whole task inputs and results).
        max_display_chars: Longest ``display``/text field, 1 to 4000.
        emit_child_events: Publish ``langgraph.stream.*`` events at all.
        delta_interval: Seconds between two delta events of one message (default: the
            ``KITARU_ADAPTER_DELTA_INTERVAL`` environment variable, else 0.25).
    """

    TEXT_FIELD: ClassVar[str] = "include_message_text_deltas"
    BOOL_FIELDS: ClassVar[tuple[str, ...]] = (
        "include_raw_payloads",
        "include_custom_payload",
        "allow_debug",
    )

    default_modes: tuple[str, ...] = ("messages", "updates", "custom")
    include_raw_payloads: bool = False
    include_message_text_deltas: bool = False
    include_custom_payload: bool = False
    allow_debug: bool = False
    max_display_chars: int = 240
    emit_child_events: bool = True
    delta_interval: float | None = None

    def __post_init__(self) -> None:
        self._validate()
        limit = self.max_display_chars
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 4000:
            raise KitaruUsageError(
                f"LangGraphStreamPolicy.max_display_chars must be an int from 1 to 4000, "
                f"got {limit!r}"
            )
        modes = resolve_modes(self.default_modes, allow_debug=self.allow_debug)
        object.__setattr__(self, "default_modes", modes)


def resolve_modes(modes: str | Sequence[str], *, allow_debug: bool) -> tuple[str, ...]:
    """Validated, de-duplicated stream modes in the given order.

    Raises:
        KitaruUsageError: No mode, an unknown mode, or ``debug`` without ``allow_debug``.
    """
    requested = [modes] if isinstance(modes, str) else list(modes)
    if not requested:
        raise KitaruUsageError("LangGraph stream modes must not be empty")
    out: list[str] = []
    for mode in requested:
        if not isinstance(mode, str) or mode not in STREAM_MODES:
            raise KitaruUsageError(
                f"Unsupported LangGraph stream mode {mode!r}; expected one of "
                f"{', '.join(STREAM_MODES)}"
            )
        if mode == "debug" and not allow_debug:
            raise KitaruUsageError(
                "LangGraph stream mode 'debug' carries whole task inputs and results; "
                "set LangGraphStreamPolicy(allow_debug=True) to request it"
            )
        if mode not in out:
            out.append(mode)
    return tuple(out)
