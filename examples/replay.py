"""Replay: re-run a failed execution from the checkpoint that failed, reusing the rest.

The first run fails in ``parse`` (a bug, switched on by ``BUGGY``). After the fix, the
execution is replayed from ``parse``: ``download`` is not run again (its recorded output is
reused and it publishes no live events), while ``parse`` and ``publish`` run again as part of
a new execution whose record names the original one.

Replay works in local database mode too; no server is needed.

Run it: ``python examples/replay.py``.

From the terminal, with the fix switched on by ``REPLAY_EXAMPLE_FIXED=1`` (without it the
imported file still has the bug, and the replay fails in ``parse`` again)::

    python examples/replay.py --fail-only      # prints the failed execution's ID
    REPLAY_EXAMPLE_FIXED=1 kitaru executions replay EXEC_ID --from parse --import examples/replay.py
"""

from __future__ import annotations

import os
import sys

from kitaru import KitaruClient, checkpoint, flow

BUGGY = os.environ.get("REPLAY_EXAMPLE_FIXED") != "1"
DOWNLOADS = 0


@checkpoint
def download(source: str) -> str:
    global DOWNLOADS
    DOWNLOADS += 1
    return f"<rows source={source!r}>1,2,3,4</rows>"


@checkpoint
def parse(raw: str) -> list[int]:
    if BUGGY:
        raise ValueError("parser bug: cannot read the rows")
    return [int(x) for x in raw.split(">")[1].split("<")[0].split(",")]


@checkpoint
def publish(rows: list[int]) -> int:
    return sum(rows)


@flow
def etl(source: str) -> int:
    return publish(parse(download(source)))


def show(client: KitaruClient, exec_id: str) -> None:
    record = client.executions.get(exec_id)
    origin = f" (replay of {record.original_exec_id})" if record.original_exec_id else ""
    print(f"execution {record.exec_id} {record.status}{origin}")
    for cp in record.checkpoints:
        print(f"  {cp.step_name:<9} {cp.status}")


def main() -> None:
    global BUGGY
    client = KitaruClient()
    first = etl.run("sales.csv")
    try:
        first.wait()
    except ValueError as exc:
        print(f"first run failed: {type(exc).__name__}")
    show(client, first.exec_id)
    if "--fail-only" in sys.argv[1:]:
        print(first.exec_id)
        return

    BUGGY = False  # the fix
    second = client.executions.replay(first.exec_id, from_="parse")
    print(f"replay result: {second.wait()}")
    show(client, second.exec_id)
    print(f"download ran {DOWNLOADS} time(s)")


if __name__ == "__main__":
    main()
