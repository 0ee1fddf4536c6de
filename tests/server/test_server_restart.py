"""A server process restarted on the same database keeps cursors valid."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from _serverkit import (
    collect,
    data_frames,
    finish,
    new_execution,
    post_events,
    wire_event,
)

from _support import ServerProcess, free_port, require_server_deps
from kitaru import _wire

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    require_server_deps()
    started: list[ServerProcess] = []
    yield started
    for p in started:
        p.stop()


def test_cursors_survive_a_server_restart(tmp_path: Path, processes: list[ServerProcess]) -> None:
    db, log = tmp_path / "server.db", tmp_path / "server.log"
    port = free_port()
    first = ServerProcess(db, port, log, ping_interval=0.2)
    processes.append(first)
    with httpx.Client(base_url=first.url, timeout=10) as c:
        exec_id = new_execution(c)
        post_events(c, exec_id, [wire_event(exec_id, i) for i in range(5)])
    before = data_frames(collect(first.url, exec_id, stop=lambda fs: len(fs) == 5))
    cursors = [f.id for f in before]
    assert f"kitaru server listening on {first.url}" in log.read_text()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
    assert first.stop() in (0, -signal.SIGTERM)

    second = ServerProcess(db, free_port(), log, ping_interval=0.2)
    processes.append(second)
    resumed = data_frames(
        collect(
            second.url, exec_id, headers={"Last-Event-ID": cursors[1]}, stop=lambda fs: len(fs) == 3
        )
    )
    assert [f.id for f in resumed] == cursors[2:]
    assert [orjson.loads(f.data)["index"] for f in resumed] == [2, 3, 4]
    with httpx.Client(base_url=second.url, timeout=10) as c:
        assert c.get(_wire.path_execution(exec_id)).json()["status"] == "running"
        # A batch retried across the restart is still stored once; new events continue on.
        more = post_events(c, exec_id, [wire_event(exec_id, i) for i in range(4, 7)])
        assert more["stored"] == 2 and more["duplicates"] == 1
        finish(c, exec_id)
    after = collect(second.url, exec_id)
    ids = [f.id for f in data_frames(after)]
    assert ids[:5] == cursors and len(ids) == 7 and ids == sorted(set(ids))
    assert after[-1].event == "end"
