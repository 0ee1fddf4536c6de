"""``GET /api/v1/executions``: ID prefix search and paging (what the web view's list uses)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import thread_servers
from kitaru import _wire

pytestmark = [pytest.mark.server]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    for start in thread_servers(tmp_path, ping_interval=0.5):
        yield start(lost_after=600)


def _create(client: httpx.Client, exec_id: str, created_at: float, flow: str) -> None:
    body = {
        "exec_id": exec_id,
        "flow_name": flow,
        "flow_ref": f"tests:{flow}",
        "status": "running",
        "created_at": created_at,
        "ended_at": None,
        "original_exec_id": None,
        "error_type": None,
        "inputs": None,
        "output": None,
        "heartbeat_at": None,
    }
    assert client.post(_wire.PATH_EXECUTIONS, json=body).status_code == 201


def test_prefix_and_offset(server: Any) -> None:
    ids = [f"{i:02d}{uuid.uuid4().hex[2:]}" for i in range(12)]
    base = time.time() - 100
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i, exec_id in enumerate(ids):
            _create(client, exec_id, base + i, "a" if i % 2 else "b")

        def listed(**params: Any) -> list[str]:
            r = client.get(_wire.PATH_EXECUTIONS, params=params)
            assert r.status_code == 200, r.text
            return [row["exec_id"] for row in r.json()]

        newest_first = ids[::-1]
        assert listed(limit=5) == newest_first[:5]
        assert listed(limit=5, offset=5) == newest_first[5:10]
        assert listed(limit=5, offset=10) == newest_first[10:]
        assert listed(limit=5, offset=12) == []
        assert listed(id_prefix="03") == [ids[3]]
        assert listed(id_prefix="0") == newest_first[2:]  # 00 .. 09
        assert listed(id_prefix="0", flow="a", limit=2, offset=1) == [ids[7], ids[5]]
        # Compared as text: LIKE wildcards match nothing.
        assert listed(id_prefix="%") == [] and listed(id_prefix="_") == []
        assert client.get(_wire.PATH_EXECUTIONS, params={"offset": -1}).status_code in (400, 422)
