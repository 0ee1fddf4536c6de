"""A flow the CLI tests watch: it fans out, reports progress, and waits for the test's go.

Run as a script with ``KITARU_SERVER_URL`` set; it prints the execution ID on its first line,
then the outcome. Every ``fetch`` item publishes 50 % progress and then waits until the file
named by ``KITARU_TEST_GATE`` exists, so the test decides when the flow ends (no sleeps to
tune). ``--fail``: item 2 raises. Without a gate file the flow never ends (the lost test kills
the process).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import kitaru
from kitaru import checkpoint, flow

ITEMS = 3


def _gate_open() -> bool:
    gate = os.environ.get("KITARU_TEST_GATE")
    return gate is not None and Path(gate).exists()


@checkpoint
def fetch(n: int) -> int:
    kitaru.progress(f"item {n}: halfway", percent=0.5, item=n)
    kitaru.events.flush()
    while not _gate_open():
        time.sleep(0.05)
    kitaru.progress(f"item {n}: done", percent=1.0, item=n)
    if n == 2 and os.environ.get("KITARU_TEST_FAIL") == "1":
        raise ValueError("api_key=do-not-print")
    return n


@flow
def cli_probe(items: int) -> int:
    return sum(fetch.map(range(items)))


def main() -> int:
    if "--fail" in sys.argv:
        os.environ["KITARU_TEST_FAIL"] = "1"
    handle = cli_probe.run(ITEMS)
    print(handle.exec_id, flush=True)
    try:
        print(f"result {handle.wait()}", flush=True)
    except ValueError:
        print("failed", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
