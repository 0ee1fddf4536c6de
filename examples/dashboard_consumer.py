"""A small dashboard-style consumer: async watcher + lanes, the way a web view would do it.

The flow runs in the background; the consumer reads its live events with the async watcher
(``KitaruClient().executions.aevents(...)``), folds them into a :class:`kitaru.lanes.LaneBoard`
and "pushes" an update whenever a lane starts, crosses a quarter of its progress, or finishes,
as a dashboard would push to its browsers. At the end it prints the board's JSON snapshot,
which a late-joining dashboard can load with ``LaneBoard.from_dict(...)`` and then follow the
stream from the snapshot's cursor.

Run it: ``python examples/dashboard_consumer.py`` (uses ``KITARU_SERVER_URL`` when set, else
starts a kitaru server in this process).
"""

from __future__ import annotations

import asyncio
import json
import time

import kitaru
from _support import kitaru_server
from kitaru import KitaruClient, checkpoint, flow
from kitaru.lanes import Lane, LaneBoard


@checkpoint
def index_shard(shard: int) -> int:
    for step in range(1, 5):
        time.sleep(0.03 * (shard + 1))  # shards take different times
        kitaru.progress(f"shard {shard}: batch {step} of 4", percent=step / 4)
    if shard == 2:
        raise RuntimeError("shard 2 is corrupt")  # its lane fails; the text is never sent
    return shard * 10


@checkpoint
def merge(parts: list[int]) -> int:
    return sum(parts)


@flow
def build_index(shards: int) -> int:
    parts: list[int] = []
    for shard in range(shards):
        try:
            parts.append(index_shard(shard))
        except RuntimeError:
            parts.append(0)  # a dashboard shows the failed lane; the flow goes on
    return merge(parts)


def push(update: str) -> None:
    """Stands in for sending to browsers (a websocket, SSE, a message queue...)."""
    print(f"push: {update}")


def describe(lane: Lane) -> str:
    percent = "" if lane.percent is None else f" {lane.percent:.0%}"
    return f"{lane.step_name} {lane.status}{percent}"


async def consume(exec_id: str) -> LaneBoard:
    board = LaneBoard()
    shown: dict[str, tuple[str, int]] = {}  # correlation ID -> (status, quarter) last pushed
    async with KitaruClient().executions.aevents(exec_id) as events:
        async for event in events:
            lane = board.apply(event)
            quarter = int((lane.percent or 0) * 4)
            if shown.get(lane.correlation_id) != (lane.status, quarter):
                shown[lane.correlation_id] = (lane.status, quarter)
                counts = board.counts()
                push(
                    f"{describe(lane)} | running={counts['running']} "
                    f"returned={counts['returned']} failed={counts['failed']}"
                )
    return board


def main() -> None:
    with kitaru_server():
        handle = build_index.run(3)
        print(f"execution {handle.exec_id}")
        board = asyncio.run(consume(handle.exec_id))
        print(f"result: {handle.wait()}")
        snapshot = board.to_dict()
        print(f"snapshot: cursor={snapshot['cursor']} lanes={len(snapshot['lanes'])}")
        for lane in board.lanes():
            error = f" ({lane.error_type})" if lane.error_type else ""
            print(f"lane {describe(lane)}{error} events={lane.event_count}")
        # What a late-joining dashboard does: load the snapshot, then follow from its cursor.
        restored = LaneBoard.from_dict(json.loads(json.dumps(snapshot)))
        print(f"snapshot restores the same lanes: {restored == board}")


if __name__ == "__main__":
    main()
