"""Durable records of executions and checkpoint calls, and the stores that keep them."""

from kitaru._public import publish_names
from kitaru.store._base import ExecutionExistsError, Store, StoreUnavailableError
from kitaru.store._records import (
    CHECKPOINT_STATUSES,
    EXECUTION_STATUSES,
    TERMINAL_EXECUTION_STATUSES,
    AttemptRecord,
    CheckpointRecord,
    ExecutionRecord,
)
from kitaru.store._sqlite import SqliteStore
from kitaru.store._values import StoredValue, dump_value, load_value

__all__ = [
    "CHECKPOINT_STATUSES",
    "EXECUTION_STATUSES",
    "TERMINAL_EXECUTION_STATUSES",
    "AttemptRecord",
    "CheckpointRecord",
    "ExecutionExistsError",
    "ExecutionRecord",
    "SqliteStore",
    "Store",
    "StoreUnavailableError",
    "StoredValue",
    "dump_value",
    "load_value",
]

publish_names(__name__, globals(), __all__)
