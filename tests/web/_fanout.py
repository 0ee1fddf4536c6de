"""Executions written straight to a server's API, with chosen times, for the web view tests.

A fan-out of 30 calls of ``fetch`` (steps ``fetch`` .. ``fetch_30``): every third one still
running, the others finished (one failed, one a second attempt). Their ``started`` times run
*against* input order (the last item started first), so a page that sorted by start time
instead of input order, or drew the waterfall in any other order, shows it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson

from kitaru import _wire

ITEMS = 30
RUNNING = [n for n in range(1, ITEMS + 1) if n % 3 == 0]  # 10 of them
FAILED = 5
RETRIED = 8


def step(n: int) -> str:
    return "fetch" if n == 1 else f"fetch_{n}"


def corr(n: int) -> str:
    return f"kitaru.checkpoint:fetch:{n:032x}"


def event(exec_id: str, n: int, index: int, kind: str, ts: float, **payload: Any) -> dict[str, Any]:
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr(n),
        "index": index,
        "checkpoint_id": f"cp-{n}",
        "checkpoint_name": "fetch",
        "step_name": step(n),
        "ts": ts,
        "payload": {
            "kitaru": {
                "source": "kitaru",
                "checkpoint_name": "fetch",
                "correlation_id": corr(n),
                "execution_id": exec_id,
                "ts": ts,
                "attempt": 2 if n == RETRIED else 1,
                "trace_id": uuid.UUID(exec_id).hex,
            },
            **payload,
        },
    }


class FanOut:
    """One execution of 30 lanes on a server; :meth:`finish_running` ends the rest."""

    def __init__(self, url: str, *, age: float = 20.0) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        self.exec_id = str(uuid.uuid4())
        self.created = time.time() - age
        body = {
            "exec_id": self.exec_id,
            "flow_name": "fanout_probe",
            "flow_ref": "tests:fanout_probe",
            "status": "running",
            "created_at": self.created,
            "ended_at": None,
            "original_exec_id": None,
            "error_type": None,
            "inputs": None,
            "output": None,
            "heartbeat_at": None,
        }
        r = self.client.post(_wire.PATH_EXECUTIONS, json=body)
        assert r.status_code == 201, r.text
        self.started = {n: self.created + 1.0 + (ITEMS - n) * 0.4 for n in range(1, ITEMS + 1)}
        events = []
        for n in range(1, ITEMS + 1):
            start = self.started[n]
            events.append(event(self.exec_id, n, 0, "kitaru.checkpoint.started", start))
            events.append(
                event(
                    self.exec_id,
                    n,
                    1,
                    "kitaru.checkpoint.progress",
                    start + 0.1,
                    message=f"item {n} working",
                    data={"percent": 0.5},
                )
            )
            if n in RUNNING:
                continue
            if n == FAILED:
                events.append(
                    event(
                        self.exec_id,
                        n,
                        2,
                        "kitaru.checkpoint.failed",
                        start + 0.6,
                        status="failed",
                        error_type="ValueError",
                    )
                )
            else:
                events.append(event(self.exec_id, n, 2, "kitaru.checkpoint.returned", start + 0.6))
        self.post(events)

    def post(self, events: list[dict[str, Any]]) -> None:
        r = self.client.post(_wire.path_events(self.exec_id), content=orjson.dumps(events))
        assert r.status_code == 200, r.text

    def finish_running(self) -> None:
        now = time.time()
        self.post([event(self.exec_id, n, 2, "kitaru.checkpoint.returned", now) for n in RUNNING])
        r = self.client.post(
            _wire.path_finish(self.exec_id),
            json={"status": "completed", "output": None, "error_type": None},
        )
        assert r.status_code == 200, r.text

    def close(self) -> None:
        self.client.close()
