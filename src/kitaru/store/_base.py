"""The store interface: where durable execution and checkpoint records live."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from kitaru.exceptions import KitaruBackendError, KitaruStateError
from kitaru.store._records import CheckpointRecord, ExecutionRecord
from kitaru.store._values import StoredValue

__all__ = ["ExecutionExistsError", "Store", "StoreUnavailableError"]


class StoreUnavailableError(KitaruBackendError):
    """The store's database cannot be reached right now (the server answers 503)."""


class ExecutionExistsError(KitaruStateError):
    """``create_execution`` was given an execution ID that is already stored."""


@runtime_checkable
class Store(Protocol):
    """Durable records. Implementations are safe to call from many threads at once."""

    def create_execution(self, record: ExecutionRecord) -> None:
        """Record a new, running execution."""
        ...

    def finish_execution(
        self,
        exec_id: str,
        status: str,
        *,
        output: StoredValue | None = None,
        error_type: str | None = None,
    ) -> None:
        """Mark an execution terminal with its outcome."""
        ...

    def heartbeat(self, exec_id: str) -> bool:
        """Note that the execution's producer is alive.

        Returns:
            True when someone asked to cancel the execution: its producer should stop at the
            next cancellation point (``docs/outcomes.md``).
        """
        ...

    def request_cancel(self, exec_id: str) -> None:
        """Ask the execution's producer to stop (idempotent).

        The producer sees the request at its next heartbeat and finishes ``cancelled``.
        """
        ...

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        """The execution with its checkpoint records, or ``None``."""
        ...

    def list_executions(
        self,
        *,
        flow_name: str | None = None,
        status: str | None = None,
        limit: int = 50,
        id_prefix: str | None = None,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Executions, newest first (without checkpoint records).

        ``id_prefix`` keeps executions whose ID starts with it; ``offset`` skips that many
        rows of the newest-first order (paging).
        """
        ...

    def save_checkpoint(self, record: CheckpointRecord) -> None:
        """Create or replace a checkpoint record (keyed by ``checkpoint_id``)."""
        ...

    def find_cached(self, cache_key: str) -> CheckpointRecord | None:
        """The newest completed checkpoint record with this cache key, or ``None``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
