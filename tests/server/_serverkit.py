"""Helpers of the server tests: request bodies, wire events, SSE collection."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from httpx_sse import ServerSentEvent, connect_sse

from kitaru import _wire


def execution_body(exec_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exec_id": exec_id or str(uuid.uuid4()),
        "flow_name": "demo_flow",
        "flow_ref": "tests:demo_flow",
        "status": "running",
        "created_at": time.time(),
        "ended_at": None,
        "original_exec_id": None,
        "error_type": None,
        "inputs": {"format": "json", "data": "[]"},
        "output": None,
        "heartbeat_at": None,
    }
    body.update(fields)
    return body


def new_execution(client: httpx.Client, **fields: Any) -> str:
    body = execution_body(**fields)
    r = client.post(_wire.PATH_EXECUTIONS, json=body)
    assert r.status_code == 201, r.text
    return str(body["exec_id"])


def wire_event(
    exec_id: str,
    index: int,
    *,
    kind: str = "kitaru.checkpoint.progress",
    corr: str = "kitaru.checkpoint:cp:" + "0" * 32,
    name: str = "cp",
    step: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr,
        "index": index,
        "checkpoint_id": f"id-{step or name}",
        "checkpoint_name": name,
        "step_name": step or name,
        "ts": 1700000000.0 + index,
        "payload": {
            "kitaru": {"source": "kitaru", "checkpoint_name": name, "correlation_id": corr},
            "message": message or f"event {index}",
        },
    }


def post_events(client: httpx.Client, exec_id: str, events: list[dict[str, Any]]) -> Any:
    r = client.post(_wire.path_events(exec_id), content=orjson.dumps(events))
    assert r.status_code == 200, r.text
    return r.json()


def finish(client: httpx.Client, exec_id: str, status: str = "completed") -> dict[str, Any]:
    r = client.post(
        _wire.path_finish(exec_id), json={"status": status, "output": None, "error_type": None}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


@functools.cache
def shared_client() -> httpx.Client:
    """One client for every stream a test reads (building a client costs ~50 ms of TLS setup)."""
    return httpx.Client()


def collect(
    url: str,
    exec_id: str,
    *,
    params: Any = None,
    headers: dict[str, str] | None = None,
    stop: Callable[[list[ServerSentEvent]], bool] | None = None,
    timeout: float = 10.0,
) -> list[ServerSentEvent]:
    """Read SSE frames until end/error, until ``stop`` says so, or until the server closes."""
    out: list[ServerSentEvent] = []
    with (
        connect_sse(
            shared_client(),
            "GET",
            url + _wire.path_stream(exec_id),
            params=params,
            headers=dict(headers or {}),
            timeout=timeout,
        ) as source,
    ):
        assert source.response.status_code == 200, source.response.read()
        for sse in source.iter_sse():
            if sse.event == "message" and not sse.data:
                # The retry: hint, or a ping comment (httpx-sse reports those as empty events
                # carrying the last id).
                continue
            out.append(sse)
            if sse.event in (_wire.CONTROL_END, _wire.CONTROL_ERROR) or (stop and stop(out)):
                break
    return out


def data_frames(frames: list[ServerSentEvent]) -> list[ServerSentEvent]:
    return [f for f in frames if f.event not in ("cursor", "gap", "end", "error")]


def error_detail(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body.get("detail"), dict), body
    assert isinstance(body["detail"].get("kind"), str), body
    assert isinstance(body["detail"].get("message"), str), body
    return dict(body["detail"])
