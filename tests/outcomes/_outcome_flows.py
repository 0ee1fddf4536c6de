"""Flows of the outcome tests, importable by the tests and runnable as a producer script.

``python _outcome_flows.py MODE``: runs ``four_steps(1)`` and prints the execution ID first.
MODE ``wait`` starts it with ``.run()`` and waits on the handle; ``call`` calls the flow
directly. Every checkpoint body appends its name to the file named by ``KITARU_TEST_COUNTS``;
``third`` publishes progress until the file named by ``KITARU_TEST_GATE`` exists, and raises
while ``KITARU_TEST_BREAK=third`` (a bug the user then fixes).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import kitaru
from kitaru import checkpoint, flow

CANARY = "token=sk-canary-5150"


def _count(name: str) -> None:
    path = os.environ.get("KITARU_TEST_COUNTS")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(name + "\n")


def counts() -> list[str]:
    """The checkpoint bodies that ran, in order."""
    path = Path(os.environ["KITARU_TEST_COUNTS"])
    return path.read_text().split() if path.exists() else []


def _gate_open() -> bool:
    gate = os.environ.get("KITARU_TEST_GATE")
    return gate is None or Path(gate).exists()


@checkpoint
def first(x: int) -> int:
    _count("first")
    return x + 1


@checkpoint
def second(x: int) -> int:
    _count("second")
    return x * 2


@checkpoint
def third(x: int) -> int:
    _count("third")
    if os.environ.get("KITARU_TEST_BREAK") == "third":
        raise RuntimeError("third is broken")
    while not _gate_open():
        kitaru.progress("waiting for the gate")  # a cancellation point
        time.sleep(0.02)
    return x + 3


@checkpoint
def fourth(x: int) -> int:
    _count("fourth")
    return x * 10


@flow
def four_steps(x: int) -> int:
    return fourth(third(second(first(x))))


EXPECTED = ((1 + 1) * 2 + 3) * 10  # four_steps(1) run without interruption


def explode_with_canary() -> None:
    raise RuntimeError(CANARY)


@checkpoint
def leaky(n: int) -> int:
    kitaru.progress("about to fail")
    explode_with_canary()
    return n


@flow
def canary_flow() -> int:
    return leaky(1)


@checkpoint
def process(n: int) -> int:
    kitaru.progress(f"item {n}")
    if n == 3:
        raise RuntimeError("item 3 is bad")
    return n * n


@flow
def six_items() -> list[int]:
    return process.map(range(6))


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "wait"
    if mode == "call":
        # The execution ID is known only once the call returns: tests list executions.
        print(four_steps(1), flush=True)
        return 0
    handle = four_steps.run(1)
    print(handle.exec_id, flush=True)
    try:
        print(handle.wait(), flush=True)
    except kitaru.KitaruCancelledError:
        print("cancelled", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
