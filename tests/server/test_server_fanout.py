"""Fan-out: the execution's follower writes each batch once-framed to every caught-up watcher.

See ``server/_fanout.py`` and docs/server-architecture.md ("Fan-out").
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import orjson
import pytest
from _serverkit import collect, data_frames, finish, new_execution, post_events, wire_event

from kitaru.backends import FrameBatch
from kitaru.server._connections import chunk
from kitaru.server._fanout import YIELD_AT, FanOut, _Follower, _last_id, _Parked
from kitaru.server._metrics import StreamTrack
from kitaru.server._sse import pieces

pytestmark = pytest.mark.server


def _watchers(url: str, exec_id: str, n: int) -> tuple[list[threading.Thread], list[Any]]:
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        out[i] = collect(url, exec_id, timeout=20)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, out


def test_every_watcher_gets_every_event_once_in_order_through_the_follower(
    server: Any, client: httpx.Client
) -> None:
    exec_id = new_execution(client)
    post_events(client, exec_id, [wire_event(exec_id, 0)])
    threads, out = _watchers(server.url, exec_id, 8)
    state = server.app.state.kitaru
    fanout = state.fanout
    # Wait until every watcher has caught up and parked with the follower.
    deadline = threading.Event()
    for _ in range(200):
        follower = fanout._followers.get(exec_id)
        if follower is not None and sum(len(g) for g in follower.groups.values()) == 8:
            break
        deadline.wait(0.05)
    else:
        pytest.fail("the watchers never parked with the execution's follower")
    before = fanout.written
    index = 1
    # Small batches, and one larger than a write (several pieces per watcher).
    for size in (1, 3, 200, 2, 1):
        post_events(client, exec_id, [wire_event(exec_id, i) for i in range(index, index + size)])
        index += size
    finish(client, exec_id)
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    for frames in out:
        indexes = [orjson.loads(f.data)["index"] for f in data_frames(frames)]
        assert indexes == list(range(index))
        assert frames[-1].event == "end"
        cursors = [f.id for f in data_frames(frames)]
        assert orjson.loads(frames[-1].data)["cursor"] == cursors[-1]
    assert fanout.written > before  # the follower, not each watcher's own read, wrote them


def test_a_filtered_watcher_is_served_by_its_own_reads(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    post_events(client, exec_id, [wire_event(exec_id, 0)])
    done: list[Any] = []
    t = threading.Thread(
        target=lambda: done.append(
            collect(server.url, exec_id, params={"kinds": "custom.kind"}, timeout=20)
        )
    )
    t.start()
    post_events(client, exec_id, [wire_event(exec_id, 1, kind="custom.kind")])
    post_events(client, exec_id, [wire_event(exec_id, 2)])
    finish(client, exec_id)
    t.join(30)
    frames = done[0]
    assert [orjson.loads(f.data)["index"] for f in data_frames(frames)] == [1]
    assert frames[-1].event == "end"
    assert server.app.state.kitaru.fanout.written == 0


def test_last_id_is_the_cursor_of_the_last_whole_frame() -> None:
    frames = (
        b'id: 000000000001\nevent: k\ndata: {"a":1}\n\nid: 000000000002\nevent: k\ndata: {}\n\n'
    )
    assert _last_id(frames) == "000000000002"
    assert _last_id(frames[: frames.index(b"\n\n") + 2]) == "000000000001"
    assert _last_id(b"event: k\ndata: {}\n\n") is None


class _Log:
    """A log whose next read returns ``batch`` once, then nothing."""

    def __init__(self, batch: FrameBatch) -> None:
        self.batch: FrameBatch | None = batch

    async def wait(self, exec_id: str, after: str | None, timeout: float) -> bool:
        if self.batch is None:
            await asyncio.sleep(timeout)
            return False
        return True

    async def read_frames(self, exec_id: str, after: str | None, limit: int) -> FrameBatch:
        batch, self.batch = self.batch, None
        return batch or FrameBatch(b"", 0, None, None, None)


class _Writer:
    """Takes ``room`` chunks, then refuses (a full socket buffer)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.chunks: list[bytes] = []

    def write(self, framed: bytes) -> bool:
        if len(self.chunks) >= self.room:
            return False
        self.chunks.append(framed)
        return True


def _frames(first: int, count: int, size: int) -> bytes:
    pad = "x" * size
    return b"".join(
        b'id: %012d\nevent: k\ndata: {"p":"%b"}\n\n' % (seq, pad.encode())
        for seq in range(first, first + count)
    )


def test_a_watcher_whose_buffer_fills_mid_batch_is_handed_back_at_the_last_frame_written() -> None:
    frames = _frames(1, 200, 1000)  # about 200 KB: several pieces
    parts = list(pieces(frames))
    assert len(parts) > 2
    batch = FrameBatch(frames, 200, f"{200:012d}", None, None)

    async def run() -> None:
        fanout = FanOut(_Log(batch), 500, 5.0)  # type: ignore[arg-type]
        full, slow = _Writer(room=100), _Writer(room=1)
        tracks = [StreamTrack("e", None), StreamTrack("e", None)]
        parked = [
            asyncio.ensure_future(fanout.park("e", None, w, t, 0.5))  # type: ignore[arg-type]
            for w, t in zip((full, slow), tracks, strict=True)
        ]
        (pos_full, woke_full), (pos_slow, woke_slow) = await asyncio.gather(*parked)
        # The fast one got the whole batch without waking (the park timed out after writes).
        assert woke_full and pos_full == f"{200:012d}" and tracks[0].position == pos_full
        assert full.chunks == [chunk(p) for p in parts]
        # The slow one took one piece and was handed back at that piece's last frame.
        assert woke_slow and slow.chunks == [chunk(parts[0])]
        assert pos_slow == _last_id(parts[0]) == tracks[1].position
        assert int(pos_slow) == parts[0].count(b"\n\n")
        await fanout.close()

    asyncio.run(run())


def test_handing_every_watcher_back_empties_the_groups_the_follower_serves() -> None:
    async def run() -> None:
        follower = _Follower("e")
        loop = asyncio.get_running_loop()
        parked = [
            _Parked(pos, _Writer(1), StreamTrack("e", pos), loop.create_future())  # type: ignore[arg-type]
            for pos in ("000000000001", "000000000002")
        ]
        for w in parked:
            follower.add(w)
        served = follower.groups  # what the follower's loop holds
        follower.wake_all()
        assert served is follower.groups and not served  # nobody left for it to write to
        assert all(w.woken.done() for w in parked)

    asyncio.run(run())


class _WokenLog(_Log):
    """Like ``_Log``, but ``wait`` sleeps until ``woken`` is set (an append's notify)."""

    def __init__(self, batch: FrameBatch) -> None:
        super().__init__(batch)
        self.woken = asyncio.Event()

    async def wait(self, exec_id: str, after: str | None, timeout: float) -> bool:
        # One notify wakes one wait, as the real logs do: a wait that stayed woken would let
        # the follower re-read the unchanged log in a loop that never yields.
        await self.woken.wait()
        self.woken.clear()
        return True


class _OrderedWriter(_Writer):
    def __init__(self, order: list[str]) -> None:
        super().__init__(room=100)
        self.order = order

    def write(self, framed: bytes) -> bool:
        self.order.append("write")
        return super().write(framed)


@pytest.mark.parametrize("watchers", [1, YIELD_AT])
def test_with_many_watchers_the_append_is_answered_before_the_follower_writes(
    watchers: int,
) -> None:
    # The log wakes the follower and then answers the append in the same loop turn (as the
    # SQLite log's settle does). One watcher is written to at once; from YIELD_AT on, the
    # follower lets the answer go first, so its writes never hold the producer back.
    batch = FrameBatch(_frames(1, 3, 10), 3, f"{3:012d}", None, None)

    async def run() -> list[str]:
        log = _WokenLog(batch)
        fanout = FanOut(log, 500, 5.0)  # type: ignore[arg-type]
        order: list[str] = []
        parked = [
            asyncio.ensure_future(
                fanout.park("e", None, _OrderedWriter(order), StreamTrack("e", None), 0.3)  # type: ignore[arg-type]
            )
            for _ in range(watchers)
        ]
        await asyncio.sleep(0.05)  # every watcher parked, the follower asleep in wait
        answer = asyncio.get_running_loop().create_future()
        answer.add_done_callback(lambda _: order.append("answer"))
        log.woken.set()
        answer.set_result(None)
        await asyncio.gather(*parked)
        await fanout.close()
        return order

    order = asyncio.run(run())
    assert order.count("write") == watchers
    if watchers >= YIELD_AT:
        assert order[0] == "answer"
    else:
        assert order == ["write", "answer"]
