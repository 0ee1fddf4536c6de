"""Quick start: a checkpoint that reports progress, and a watcher that prints it.

The flow and checkpoint are the ones on the product page ("Checkpoint Live Events"). The flow
runs in the background while ``KitaruClient().executions.events(...)`` prints its progress
events, filtered to one kind and one checkpoint, until the execution ends.

Run it: ``python examples/quickstart.py`` (uses ``KITARU_SERVER_URL`` when set, else starts a
kitaru server in this process: live events need a server-backed connection). kitaru's INFO
lines are shown, among them the execution ID and the command that watches it.
"""

from __future__ import annotations

import logging
import time

import kitaru
from _support import kitaru_server
from kitaru import KitaruClient, checkpoint, flow


@checkpoint
def build_report(topic: str) -> str:
    kitaru.progress("Collecting notes", percent=0.25, topic=topic)
    notes = f"Notes about {topic}"
    time.sleep(0.2)  # stands in for real work

    kitaru.progress("Writing draft", percent=0.75)
    return f"Report: {notes}"


@flow
def report_flow(topic: str) -> str:
    return build_report(topic)


def main() -> None:
    # kitaru logs through `logging`; show its INFO lines (not every library's).
    logging.basicConfig(format="%(message)s")
    logging.getLogger("kitaru").setLevel(logging.INFO)
    with kitaru_server():
        handle = report_flow.run("otters")
        print(f"execution {handle.exec_id}")

        client = KitaruClient()
        for event in client.executions.events(
            handle.exec_id,
            kinds=["kitaru.checkpoint.progress"],
            checkpoint="build_report",
        ):
            print(event.kind, event.checkpoint_name, event.payload.get("message"))

        print(f"result: {handle.wait()}")
        print(f"status: {client.executions.get(handle.exec_id).status}")


if __name__ == "__main__":
    main()
