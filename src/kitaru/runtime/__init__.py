"""The flow runtime: ``@flow``, ``@checkpoint``, handles, replay, and the runtime observers."""

from kitaru._public import publish_names
from kitaru.runtime._checkpoint import Checkpoint, checkpoint
from kitaru.runtime._flow import Flow, FlowHandle, flow
from kitaru.runtime._observer import RuntimeObserver
from kitaru.runtime._runtime import (
    Runtime,
    RuntimeFactory,
    current_runtime,
    get_runtime,
    reset_runtime,
    set_runtime,
    set_runtime_factory,
)
from kitaru.runtime._scope import CheckpointScope, FlowRun, current_checkpoint, current_flow

__all__ = [
    "Checkpoint",
    "CheckpointScope",
    "Flow",
    "FlowHandle",
    "FlowRun",
    "Runtime",
    "RuntimeFactory",
    "RuntimeObserver",
    "checkpoint",
    "current_checkpoint",
    "current_flow",
    "current_runtime",
    "flow",
    "get_runtime",
    "reset_runtime",
    "set_runtime",
    "set_runtime_factory",
]

publish_names(__name__, globals(), __all__)
