"""``KitaruClient``: look up, list, replay and watch executions."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

from kitaru import _config
from kitaru._checks import positive_int
from kitaru._snapshot import ExecutionSnapshot
from kitaru.client._errors import LOCAL_MODE_WATCH_MESSAGE
from kitaru.client._logs import follow_logs, read_all_logs
from kitaru.client._snapshot import fetch_snapshot
from kitaru.client._watch_options import check_exec_id
from kitaru.client._watcher import awatch, open_session, watch
from kitaru.events._models import ExecutionEvent
from kitaru.exceptions import (
    KitaruFeatureNotAvailableError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.remote import HttpStore
from kitaru.runtime._flow import FlowHandle, find_flow
from kitaru.runtime._runtime import cancel_in_process, get_runtime
from kitaru.store._base import Store
from kitaru.store._logs import LogLine
from kitaru.store._records import EXECUTION_STATUSES, ExecutionRecord
from kitaru.store._sqlite import SqliteStore

__all__ = ["Executions", "KitaruClient"]


class KitaruClient:
    """Entry point for reading executions and watching their live events.

    Args:
        server_url: A kitaru server's base URL. Default: ``KITARU_SERVER_URL``; when neither
            is set the client reads the local database (local database mode).
        api_token: Bearer token for the server. Default: ``KITARU_API_TOKEN``.
        home: Folder of the local database. Default: ``KITARU_HOME``, then ``~/.kitaru``.
    """

    def __init__(
        self,
        server_url: str | None = None,
        *,
        api_token: str | None = None,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        self._explicit = server_url is not None or home is not None or api_token is not None
        self.server_url = _config.server_url(server_url)
        self.api_token = _config.api_token(api_token)
        self._home = home
        self._store: Store | None = None
        self.executions = Executions(self)

    @property
    def is_local(self) -> bool:
        """True in local database mode (no server configured)."""
        return self.server_url is None

    @property
    def location(self) -> str:
        """Where this client reads executions, for messages: a server URL or a database path.

        ``"the kitaru server at http://..."`` in server mode, else ``"the local database
        <KITARU_HOME>/kitaru.db"``.
        """
        if self.server_url is not None:
            return f"the kitaru server at {self.server_url}"
        return f"the local database {Path(_config.home_dir(self._home)) / 'kitaru.db'}"

    @property
    def store(self) -> Store:
        """The store this client reads (the process runtime's, unless configured otherwise)."""
        store = self._store
        if store is None:
            if not self._explicit:
                store = get_runtime().store
            elif self.server_url is not None:
                # A reader fails fast: retrying is for the record writes of running flows.
                store = cast(Store, HttpStore(self.server_url, self.api_token, fail_fast=True))
            else:
                store = SqliteStore(Path(_config.home_dir(self._home)) / "kitaru.db")
            self._store = store
        return store


class Executions:
    """Executions of flows: ``client.executions``."""

    def __init__(self, client: KitaruClient) -> None:
        self._client = client

    def get(self, exec_id: str) -> ExecutionRecord:
        """The execution with this exact ID, with its checkpoint records.

        Raises:
            KitaruStateError: No execution has this ID.
        """
        check_exec_id(exec_id)
        record = self._client.store.get_execution(exec_id)
        if record is None:
            raise KitaruStateError(f"no execution with ID {exec_id!r}")
        return record

    def list(
        self, *, flow: str | None = None, status: str | None = None, limit: int = 50
    ) -> builtins.list[ExecutionRecord]:
        """Executions, newest first.

        Args:
            flow: Only executions of the flow with this name.
            status: Only executions with this status (running, completed, failed, lost,
                cancelled).
            limit: At most this many.
        """
        if status is not None and status not in EXECUTION_STATUSES:
            raise KitaruUsageError(
                f"status must be one of {', '.join(EXECUTION_STATUSES)}, got {status!r}"
            )
        positive_int("limit", limit)
        return self._client.store.list_executions(flow_name=flow, status=status, limit=limit)

    def replay(
        self, exec_id: str, *, from_: str | None = None, **flow_kwargs: Any
    ) -> FlowHandle[Any]:
        """Re-run execution ``exec_id`` as a new execution from the checkpoint ``from_``.

        Checkpoint calls before ``from_`` reuse their recorded outputs and publish nothing;
        ``from_`` and later calls run again and publish into the new execution's stream.
        The flow must be importable in this process.

        Returns:
            The new execution's handle (its record's ``original_exec_id`` is ``exec_id``).
        """
        record = self.get(exec_id)
        return find_flow(record).replay(exec_id, from_=from_, **flow_kwargs)

    def resume(self, exec_id: str, **flow_kwargs: Any) -> FlowHandle[Any]:
        """Continue a ``failed``, ``lost`` or ``cancelled`` execution as a new execution.

        Every checkpoint call that completed in ``exec_id`` reuses its recorded output; the
        rest run in this process (the flow must be importable here). See
        ``docs/outcomes.md``.

        Returns:
            The new execution's handle (its record's ``original_exec_id`` is ``exec_id``).

        Raises:
            KitaruStateError: No such execution, or it did not end ``failed``, ``lost`` or
                ``cancelled``.
        """
        record = self.get(exec_id)
        return find_flow(record).resume(exec_id, **flow_kwargs)

    def cancel(self, exec_id: str, *, wait: float | None = None) -> ExecutionRecord:
        """Ask a running execution to stop; it ends ``cancelled``.

        The request is stored (locally or on the server); the producing process, here or in
        another process, sees it at its next heartbeat and stops at the next cancellation
        point (``docs/outcomes.md``). A terminal execution is left as it is.

        Args:
            exec_id: The exact execution ID.
            wait: Seconds to wait for the execution to end (``None``: do not wait).

        Returns:
            The execution's record: terminal when it ended within ``wait``.

        Raises:
            KitaruStateError: No execution has this ID.
        """
        if wait is not None and (isinstance(wait, bool) or not wait >= 0):
            raise KitaruUsageError(f"wait must be a number of seconds >= 0, got {wait!r}")
        record = self.get(exec_id)
        if record.is_terminal:
            return record
        cancel_in_process(exec_id)
        self._client.store.request_cancel(exec_id)
        deadline = time.monotonic() + (wait or 0.0)
        while not record.is_terminal and time.monotonic() < deadline:
            time.sleep(0.05)
            record = self.get(exec_id)
        return record

    def events(
        self,
        exec_id: str,
        *,
        kinds: builtins.list[str] | None = None,
        checkpoint: str | None = None,
        correlation_ids: builtins.list[str] | None = None,
        since: str | None = None,
        reconnect: bool = True,
        **options: Any,
    ) -> Iterator[ExecutionEvent]:
        """Watch the live events of one execution (server mode only).

        Args:
            exec_id: The exact execution ID (prefixes are not accepted).
            kinds: Only these event kinds.
            checkpoint: Only events of checkpoints with this name (always checked client-side).
            correlation_ids: Only events of these checkpoint executions.
            since: Resume after this cursor.
            reconnect: Reconnect with the last cursor when the connection drops.
            **options: Watcher tuning (see :class:`kitaru.client.WatchOptions`).

        Yields:
            :class:`~kitaru.ExecutionEvent` objects in stream order; the iterator ends when the
            execution ends.

        Raises:
            KitaruUsageError: An argument is invalid (checked before any network call).
            KitaruFeatureNotAvailableError: Local database mode, or streaming is disabled.
            KitaruStateError: No execution has exactly this ID.
            KitaruBackendError: The server refused the token, the stream reported an error or
                a gap, or the server stayed unreachable longer than the watcher rides out.
        """
        arguments = (exec_id, kinds, checkpoint, correlation_ids, since, reconnect)
        return watch(self._client, open_session(self._client, arguments, options))

    def logs(self, exec_id: str, checkpoint: str | None = None) -> builtins.list[LogLine]:
        """The runtime log lines captured while the execution's checkpoints ran.

        Works in both modes (the local database, or the server). Lines come in the order they
        were stored: in order within each checkpoint execution, interleaved across checkpoints
        that ran at once. See ``docs/runtime-logs-and-metadata.md``.

        Args:
            exec_id: The exact execution ID.
            checkpoint: Only lines of checkpoint calls with this checkpoint name or step name.

        Returns:
            :class:`~kitaru.store.LogLine` objects (``level``, ``message``, ``checkpoint``,
            ``step_name``, ``attempt``, ``ts``...).

        Raises:
            KitaruStateError: No execution has this ID.
        """
        self.get(exec_id)
        return read_all_logs(self._client, exec_id, checkpoint=checkpoint)

    def follow_logs(
        self, exec_id: str, checkpoint: str | None = None, *, since: int | None = None
    ) -> Iterator[LogLine]:
        """Follow the execution's runtime log lines while it runs; ends when it has ended.

        In server mode this follows the server's SSE logs stream and resumes after a dropped
        connection from the last line seen (no line repeated or skipped); in local database mode
        it polls the database.

        Args:
            exec_id: The exact execution ID.
            checkpoint: Only lines of checkpoint calls with this checkpoint name or step name.
            since: Start after this line cursor (``LogLine.cursor``).
        """
        check_exec_id(exec_id)
        if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
            raise KitaruUsageError(f"checkpoint must be a non-blank str, got {checkpoint!r}")
        return follow_logs(self._client, exec_id, checkpoint=checkpoint, since=since)

    def snapshot(self, exec_id: str) -> ExecutionSnapshot:
        """The folded live state of one execution, to render before following its stream.

        Server mode only. The snapshot holds one lane per checkpoint execution (checkpoint
        name, correlation ID, status, latest message and percent, event count, trace and span
        IDs), the newest custom events, and the ``cursor`` it was computed at. Follow the
        stream from there and fold it into the snapshot's board; that equals folding every
        event from the start::

            snap = client.executions.snapshot(exec_id)
            board = snap.board()
            if not snap.ended:
                for event in client.executions.events(exec_id, since=snap.cursor):
                    board.apply(event)

        Args:
            exec_id: The exact execution ID (prefixes are not accepted).

        Returns:
            An :class:`~kitaru.client.ExecutionSnapshot`.

        Raises:
            KitaruFeatureNotAvailableError: Local database mode, or streaming is disabled.
            KitaruStateError: The server has no execution with this ID.
            KitaruBackendError: Authorization failed or the server did not answer.
        """
        if self._client.is_local:
            raise KitaruFeatureNotAvailableError(LOCAL_MODE_WATCH_MESSAGE)
        check_exec_id(exec_id)
        server_url = self._client.server_url
        assert server_url is not None  # not local
        return fetch_snapshot(server_url, self._client.api_token, exec_id)

    def aevents(
        self,
        exec_id: str,
        *,
        kinds: builtins.list[str] | None = None,
        checkpoint: str | None = None,
        correlation_ids: builtins.list[str] | None = None,
        since: str | None = None,
        reconnect: bool = True,
        **options: Any,
    ) -> AsyncIterator[ExecutionEvent]:
        """The async twin of :meth:`events`.

        Use it as ``async for event in client.executions.aevents(exec_id): ...``.
        """
        arguments = (exec_id, kinds, checkpoint, correlation_ids, since, reconnect)
        return awatch(self._client, open_session(self._client, arguments, options))
