"""A flow the web view tests watch: a ``.map()`` of 4 items with stepwise progress.

Run as a script with ``KITARU_SERVER_URL`` (and ``KITARU_API_TOKEN``) set; it prints the
execution ID on its first line, then ``result <n>``. Every item publishes progress step 1 of 4,
then waits for the file ``gate-1`` in the folder ``KITARU_TEST_GATES`` before publishing step
2, and so on: the test decides when the bars advance (no sleeps to tune). At step 2 each item
also publishes a custom ``demo.milestone`` event; a final checkpoint publishes ``demo.summary``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import kitaru
from kitaru import checkpoint, flow

ITEMS = 4
STEPS = 4


def _wait_for_gate(step: int) -> None:
    gate = Path(os.environ["KITARU_TEST_GATES"]) / f"gate-{step}"
    while not gate.exists():
        time.sleep(0.02)


@checkpoint
def crunch(n: int) -> int:
    for step in range(1, STEPS + 1):
        kitaru.progress(f"item {n}: step {step} of {STEPS}", percent=step / STEPS, item=n)
        if step == 2:
            kitaru.events.publish("demo.milestone", {"item": n}, message=f"item {n} is halfway")
        kitaru.events.flush()
        if step < STEPS:
            _wait_for_gate(step)
    return n * n


@checkpoint
def summarize(values: list[int]) -> int:
    total = sum(values)
    kitaru.events.publish("demo.summary", {"total": total}, message=f"total {total}")
    return total


@flow
def web_probe(items: int) -> int:
    return summarize(list(crunch.map(range(items))))


def main() -> int:
    handle = web_probe.run(ITEMS)
    print(handle.exec_id, flush=True)
    print(f"result {handle.wait()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
