"""The watcher against a real kitaru server: filters, cursor frames, gaps, restarts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kitaru_server import new_execution, start, wire_event
from _proxy import CuttingProxy

from kitaru import KitaruClient, KitaruStateError
from kitaru.client import StreamGapError
from kitaru.remote import HttpStore, HttpTransport

pytestmark = pytest.mark.server

FAST = {"backoff_initial": 0.01, "backoff_max": 0.2}


class Producer:
    """Writes records and events straight to a server, as a flow's process would."""

    def __init__(self, url: str) -> None:
        self.store = HttpStore(url, retry_seconds=20)
        self.transport = HttpTransport(url)
        self.exec_id = str(uuid.uuid4())
        new_execution(self.store, self.exec_id)

    def corr(self, name: str) -> str:
        return f"kitaru.checkpoint:{name}:{uuid.uuid5(uuid.NAMESPACE_URL, name).hex}"

    def send(self, indexes: range, *, kind: str = "test.tick", name: str = "producer") -> None:
        corr = self.corr(name)
        self.transport.send(
            [wire_event(self.exec_id, i, corr=corr, kind=kind, name=name) for i in indexes]
        )

    def finish(self, status: str = "completed") -> None:
        self.store.finish_execution(self.exec_id, status)

    def close(self) -> None:
        self.transport.shutdown()
        self.store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    running = start(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_an_execution_without_events_ends_at_once(server: Any) -> None:
    producer = Producer(server.url)
    producer.finish("failed")
    watcher = KitaruClient(server.url).executions.events(producer.exec_id)
    assert list(watcher) == []
    assert watcher.final_status == "failed"  # type: ignore[attr-defined]
    producer.close()


def test_unknown_and_prefix_ids_are_refused(server: Any) -> None:
    producer = Producer(server.url)
    client = KitaruClient(server.url)
    with pytest.raises(KitaruStateError, match="exact"):
        client.executions.events(producer.exec_id[:8])
    with pytest.raises(KitaruStateError):
        client.executions.events(str(uuid.uuid4()))
    producer.close()


def test_kind_filter_with_cursor_frames_resumes_past_filtered_events(server: Any) -> None:
    producer = Producer(server.url)
    producer.send(range(0, 10), kind="keep.me")
    producer.send(range(10, 300), kind="skip.me")
    producer.finish()
    client = KitaruClient(server.url)
    watcher = client.executions.events(producer.exec_id, kinds=["keep.me"])
    assert [e.index for e in watcher] == list(range(10))
    # The trailing filtered run was announced with a cursor frame: the position is past it.
    all_events = list(client.executions.events(producer.exec_id))
    assert watcher.cursor == all_events[-1].cursor  # type: ignore[attr-defined]
    assert list(client.executions.events(producer.exec_id, since=watcher.cursor)) == []  # type: ignore[attr-defined]
    producer.close()


def test_checkpoint_filter_on_live_and_completed_executions(server: Any) -> None:
    producer = Producer(server.url)
    producer.send(range(3), name="a")
    producer.send(range(3), name="b")
    client = KitaruClient(server.url)
    live = client.executions.events(producer.exec_id, checkpoint="b")
    got = [next(live) for _ in range(3)]
    producer.send(range(3, 5), name="a")
    producer.send(range(3, 5), name="b")
    producer.finish()
    got += list(live)
    assert [(e.checkpoint_name, e.index) for e in got] == [("b", i) for i in range(5)]
    done = list(client.executions.events(producer.exec_id, checkpoint="a"))
    assert [(e.checkpoint_name, e.index) for e in done] == [("a", i) for i in range(5)]
    producer.close()


def test_gap_past_retention(tmp_path: Path) -> None:
    running = start(tmp_path, max_events_per_execution=5)
    producer = Producer(running.url)
    try:
        producer.send(range(20))
        producer.finish()
        client = KitaruClient(running.url)
        with pytest.raises(StreamGapError) as info:
            list(client.executions.events(producer.exec_id))
        assert info.value.reason
        kept = list(client.executions.events(producer.exec_id, on_gap="continue"))
        assert [e.index for e in kept] == list(range(15, 20))
    finally:
        producer.close()
        running.stop()


def test_watcher_rides_out_a_server_restart(tmp_path: Path) -> None:
    running = start(tmp_path)
    port = running.port
    producer = Producer(running.url)
    producer.send(range(50))
    restarted: list[Any] = []
    try:
        watcher = KitaruClient(running.url).executions.events(producer.exec_id, **FAST)
        got = [next(watcher).index for _ in range(50)]
        running.stop()  # the open stream closes without `end`

        def come_back() -> None:
            time.sleep(1.0)
            restarted.append(start(tmp_path, port=port))
            producer.send(range(50, 100))
            producer.finish()

        thread = threading.Thread(target=come_back)
        thread.start()
        got += [e.index for e in watcher]
        thread.join(10)
        assert got == list(range(100))
        assert watcher.final_status == "completed"  # type: ignore[attr-defined]
    finally:
        producer.close()
        for s in restarted:
            s.stop()


def test_watch_through_a_proxy_with_filters(server: Any) -> None:
    producer = Producer(server.url)
    for first in range(0, 3000, 300):
        producer.send(range(first, first + 300), kind="keep.me" if first % 600 else "skip.me")
    producer.finish()
    with CuttingProxy(server.port, cut_every=(50, 150), seed=3) as proxy:
        watcher = KitaruClient(proxy.url).executions.events(
            producer.exec_id, kinds=["keep.me"], **FAST
        )
        got = [e.index for e in watcher]
    expected = [i for i in range(3000) if (i // 300) % 2 == 1]
    assert got == expected
    assert proxy.cuts >= 5
    producer.close()
