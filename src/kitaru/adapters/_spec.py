"""``AdapterSpec``: what names one adapter, in one value each adapter declares.

An adapter's package, the ``adapter`` field and kind prefix of its live events, the kitaru
extra and framework module it needs, and its checkpoints' type and names all follow from one
:class:`AdapterSpec` (see ``docs/adapters.md``, "Lifecycle").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kitaru.adapters._common import LiveStream

__all__ = ["AdapterSpec"]


@dataclass(frozen=True)
class AdapterSpec:
    """What names one adapter: its package, framework module, live-event kinds and checkpoints.

    Its live events are ``<adapter>.stream.started``, ``<adapter>.stream.<item>`` for each of
    ``items``, then the terminal ``<adapter>.stream.completed`` and ``.failed``
    (docs/adapters.md, "Lifecycle").

    Attributes:
        adapter: The adapter's package under ``kitaru.adapters`` and the ``adapter`` field of
            its events; with dashes, the kitaru extra that installs its framework.
        label: Human name used in displays, e.g. ``"PydanticAI"``.
        checkpoint_type: The ``type`` of the adapter's checkpoints.
        module: The framework module that must be importable (default: ``adapter``).
        checkpoint_suffix: The adapter's checkpoints are named ``<name>_<suffix>`` (default:
            ``adapter``).
        items: The item kinds' last parts (default ``event``).
        item: The kind of item events published without an explicit kind (default ``event``).
    """

    adapter: str
    label: str
    checkpoint_type: str
    module: str = ""
    checkpoint_suffix: str = ""
    items: tuple[str, ...] = ("event",)
    item: str = "event"

    def __post_init__(self) -> None:
        # Most adapters' framework module and checkpoint suffix are the adapter's own name.
        object.__setattr__(self, "module", self.module or self.adapter)
        object.__setattr__(self, "checkpoint_suffix", self.checkpoint_suffix or self.adapter)

    @property
    def prefix(self) -> str:
        """The kind prefix, ``<adapter>.stream``."""
        return f"{self.adapter}.stream"

    @property
    def extra(self) -> str:
        """The kitaru extra that installs the framework (``pydantic_ai`` -> ``pydantic-ai``)."""
        return self.adapter.replace("_", "-")

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every kind the adapter publishes, in lifecycle order."""
        middle = tuple(self.kind(i) for i in self.items)
        return (self.kind("started"), *middle, *self.terminal_kinds)

    @property
    def terminal_kinds(self) -> tuple[str, ...]:
        """The kinds that end one stream (exactly one of them per stream)."""
        return (self.kind("completed"), self.kind("failed"))

    def kind(self, item: str) -> str:
        """``<adapter>.stream.<item>``."""
        return f"{self.prefix}.{item}"

    def open(
        self, base: Mapping[str, Any], *, enabled: bool, delta_interval: float | None
    ) -> LiveStream:
        """A new live-event lane of this adapter whose events all carry ``base``."""
        return LiveStream(
            self.prefix,
            adapter=self.adapter,
            label=self.label,
            base=base,
            enabled=enabled,
            item_kind=self.kind(self.item),
            delta_interval=delta_interval,
        )
