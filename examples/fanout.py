"""Fan-out with ``.map()``: one live lane per checkpoint execution.

``fetch_page.map(urls)`` runs one checkpoint execution per item, concurrently, and returns the
results in input order. Each execution gets its own correlation ID and its own event counter,
so :mod:`kitaru.lanes` folds the stream into one lane per item instead of mixing them.

Run it: ``python examples/fanout.py`` (uses ``KITARU_SERVER_URL`` when set, else starts a
kitaru server in this process).
"""

from __future__ import annotations

import time

import kitaru
from _support import kitaru_server
from kitaru import KitaruClient, checkpoint, flow
from kitaru.lanes import LaneBoard

PAGES = ["alpha", "beta", "gamma", "delta"]


@checkpoint
def fetch_page(name: str) -> int:
    for part in range(1, 4):
        time.sleep(0.05)  # stands in for a download
        kitaru.progress(f"{name}: part {part} of 3", percent=part / 3, page=name)
    return len(name)


@checkpoint
def total(sizes: list[int]) -> int:
    return sum(sizes)


@flow
def crawl(pages: list[str]) -> int:
    sizes = fetch_page.map(pages)  # results come back in input order
    return total(sizes)


def main() -> None:
    with kitaru_server():
        handle = crawl.run(PAGES)
        print(f"execution {handle.exec_id}")
        board = LaneBoard(KitaruClient().executions.events(handle.exec_id))
        for lane in board.lanes():
            percent = "-" if lane.percent is None else f"{lane.percent:.0%}"
            print(
                f"lane {lane.step_name:<12} {lane.status:<8} events={lane.event_count} "
                f"percent={percent:<4} last={lane.message!r} id={lane.correlation_id}"
            )
        distinct = {lane.correlation_id for lane in board.lanes()}
        print(f"lanes: {len(board)} correlation IDs: {len(distinct)}")
        print(f"result: {handle.wait()}")


if __name__ == "__main__":
    main()
