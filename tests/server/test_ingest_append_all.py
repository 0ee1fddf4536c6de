"""The several-executions ingest starts every execution's append at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from kitaru.backends import AppendResult, EventLog, EventLogError, NewEvent
from kitaru.server._routes_ingest import append_all


class SlowLog:
    """Appends that take a while; counts how many run at once, fails one execution's."""

    def __init__(self, fail_for: str | None = None) -> None:
        self.running = 0
        self.most = 0
        self.finished: list[str] = []
        self.fail_for = fail_for

    async def append(self, exec_id: str, events: Sequence[NewEvent]) -> AppendResult:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.05)
            if exec_id == self.fail_for:
                raise EventLogError("event log storage failed")
            return AppendResult(stored=len(events), duplicates=0, last_cursor=str(len(events)))
        finally:
            self.running -= 1
            self.finished.append(exec_id)


def _batches(n: int) -> list[tuple[str, list[NewEvent]]]:
    ev = NewEvent("k", "c", 0, None, None, None, b"{}")
    return [(f"e{i}", [ev] * (i + 1)) for i in range(n)]


def _run(log: SlowLog, n: int) -> Any:
    return asyncio.run(append_all(cast(EventLog, log), _batches(n)))


def test_the_appends_of_one_request_run_together_and_answer_in_order() -> None:
    log = SlowLog()
    results = _run(log, 3)
    assert log.most == 3
    assert [r.stored for r in results] == [1, 2, 3]


def test_a_storage_failure_raises_once_every_append_finished() -> None:
    log = SlowLog(fail_for="e1")
    with pytest.raises(EventLogError):
        _run(log, 3)
    assert sorted(log.finished) == ["e0", "e1", "e2"]
