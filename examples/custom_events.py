"""Custom events: publish your own event kinds from a checkpoint and watch only those.

``kitaru.events.publish(kind, payload, message=...)`` sends an event of your own kind; the
payload arrives under ``payload["data"]`` and kitaru's metadata under ``payload["kitaru"]``.
The watcher here asks for the custom kind plus the terminal lifecycle events, so it sees every
batch and then how the checkpoint ended.

Run it: ``python examples/custom_events.py`` (uses ``KITARU_SERVER_URL`` when set, else starts
a kitaru server in this process).
"""

from __future__ import annotations

import kitaru
from _support import kitaru_server
from kitaru import KitaruClient, checkpoint, flow

BATCH_KIND = "training.batch.completed"


@checkpoint
def train_model(rows: int, batches: int) -> str:
    for batch in range(1, batches + 1):
        loss = round(1.0 / batch, 3)
        kitaru.events.publish(
            BATCH_KIND,
            {"batch": batch, "rows": rows // batches, "loss": loss},
            message=f"Batch {batch} of {batches} finished",
        )
    return "model-ready"


@flow
def train_flow(rows: int) -> str:
    return train_model(rows, batches=3)


def main() -> None:
    with kitaru_server():
        handle = train_flow.run(1200)
        print(f"execution {handle.exec_id}")
        watched = [BATCH_KIND, "kitaru.checkpoint.returned", "kitaru.checkpoint.failed"]
        for event in KitaruClient().executions.events(handle.exec_id, kinds=watched):
            meta = event.payload["kitaru"]
            if event.kind == BATCH_KIND:
                data = event.data
                print(
                    f"{event.kind} #{event.index} batch={data['batch']} rows={data['rows']} "
                    f"loss={data['loss']} message={event.message!r} "
                    f"checkpoint={meta['checkpoint_name']}"
                )
            else:
                print(f"{event.kind} #{event.index} checkpoint={meta['checkpoint_name']}")
        print(f"result: {handle.wait()}")


if __name__ == "__main__":
    main()
