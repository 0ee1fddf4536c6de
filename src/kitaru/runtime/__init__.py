"""The flow runtime: ``@flow``, ``@checkpoint``, handles, replay, and the runtime observers."""

from kitaru.runtime._checkpoint import Checkpoint, checkpoint
from kitaru.runtime._flow import Flow, FlowHandle, flow
from kitaru.runtime._observer import RuntimeObserver
from kitaru.runtime._runtime import Runtime, get_runtime, reset_runtime, set_runtime
from kitaru.runtime._scope import CheckpointScope, FlowRun, current_checkpoint, current_flow

__all__ = [
    "Checkpoint",
    "CheckpointScope",
    "Flow",
    "FlowHandle",
    "FlowRun",
    "Runtime",
    "RuntimeObserver",
    "checkpoint",
    "current_checkpoint",
    "current_flow",
    "flow",
    "get_runtime",
    "reset_runtime",
    "set_runtime",
]
