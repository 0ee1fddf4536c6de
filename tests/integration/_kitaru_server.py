"""Start a real kitaru server (uvicorn on 127.0.0.1, free port) for integration tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from _support import require_server_deps
from kitaru.events._codec import EncodedEvent
from kitaru.remote import HttpStore
from kitaru.store import ExecutionRecord


def start(tmp_path: Path, *, port: int = 0, **options: Any) -> Any:
    """A server in a thread on 127.0.0.1; its ``.url``, ``.port`` and ``.stop()``."""
    require_server_deps()
    from kitaru.server import serve_in_thread

    options.setdefault("db", tmp_path / "server.db")
    options.setdefault("token", None)
    return serve_in_thread(port=port, **options)


def wire_event(
    exec_id: str, index: int, *, corr: str, kind: str = "test.tick", name: str = "producer"
) -> EncodedEvent:
    """One wire event as the publisher would encode it (checkpoint ``name``)."""
    data = {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr,
        "index": index,
        "checkpoint_id": "cp-1",
        "checkpoint_name": name,
        "step_name": name,
        "ts": time.time(),
        "payload": {
            "kitaru": {"source": "kitaru", "checkpoint_name": name, "correlation_id": corr},
            "message": f"tick {index}",
        },
    }
    return EncodedEvent(data=data, json=orjson.dumps(data))


def new_execution(store: HttpStore, exec_id: str, flow_name: str = "producer_flow") -> None:
    store.create_execution(
        ExecutionRecord(
            exec_id=exec_id,
            flow_name=flow_name,
            flow_ref=None,
            status="running",
            created_at=time.time(),
        )
    )
