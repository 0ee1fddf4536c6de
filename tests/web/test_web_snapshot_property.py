"""Snapshot + tail from its cursor equals the fold of a full replay (property-based).

``fold(all) == fold_from(snapshot_at(k), events[k:])`` for random event sequences: first on the
fold itself (with the snapshot going through its JSON form, as over the wire), then through a
real server, for running and for finished executions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import connect_sse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _support import require_server_deps
from kitaru import _wire
from kitaru._snapshot import ExecutionSnapshot, SnapshotFold
from kitaru.events._models import ExecutionEvent

EXEC_ID = "11111111-2222-4333-8444-555555555555"
CORRS = [f"kitaru.checkpoint:{name}:{i:032x}" for i, name in enumerate("abcd")]
KINDS = [
    "kitaru.checkpoint.started",
    "kitaru.checkpoint.progress",
    "kitaru.checkpoint.progress",
    "kitaru.checkpoint.returned",
    "kitaru.checkpoint.failed",
    "demo.custom",
    "other.kind",
]


@st.composite
def wire_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random wire events of one execution: several lanes, any kinds, repeated keys."""
    out = []
    for _ in range(draw(st.integers(0, 40))):
        lane = draw(st.integers(0, len(CORRS) - 1))
        corr = CORRS[lane]
        kind = draw(st.sampled_from(KINDS))
        payload: dict[str, Any] = {
            "kitaru": {
                "source": "kitaru",
                "checkpoint_name": "abcd"[lane],
                "correlation_id": corr,
                "ts": draw(st.floats(1e9, 1e9 + 100, allow_nan=False)),
                "trace_id": "ab" * 16,
                "span_id": f"{lane + 1:016x}",
            }
        }
        if draw(st.booleans()):
            payload["message"] = draw(st.text(max_size=8))
        if draw(st.booleans()):
            payload["data"] = {
                "percent": draw(
                    st.one_of(st.floats(-0.5, 1.5, allow_nan=False), st.none(), st.just(True))
                )
            }
        if kind.endswith("failed"):
            payload["error_type"] = draw(st.sampled_from(["ValueError", "KeyError"]))
        out.append(
            {
                "exec_id": EXEC_ID,
                "kind": kind,
                "correlation_id": corr,
                "index": draw(st.integers(0, 12)),
                "checkpoint_id": f"id-{lane}",
                "checkpoint_name": "abcd"[lane],
                "step_name": "abcd"[lane],
                "ts": payload["kitaru"]["ts"],
                "payload": payload,
            }
        )
    return out


def as_logged(wire: list[dict[str, Any]]) -> list[ExecutionEvent]:
    """What the event log stores and streams: each (correlation, index) once, with cursors."""
    seen: set[tuple[str, int]] = set()
    out = []
    for item in wire:
        key = (item["correlation_id"], item["index"])
        if key in seen:
            continue
        seen.add(key)
        out.append(ExecutionEvent.from_wire(item, f"{len(out) + 1:012d}"))
    return out


def over_the_wire(snapshot: ExecutionSnapshot) -> ExecutionSnapshot:
    return ExecutionSnapshot.from_dict(orjson.loads(orjson.dumps(snapshot.to_dict())))


@settings(max_examples=150, deadline=None)
@given(wire=wire_events(), data=st.data(), limit=st.sampled_from([2, 5, 100]))
def test_snapshot_plus_tail_equals_the_full_fold(
    wire: list[dict[str, Any]], data: st.DataObject, limit: int
) -> None:
    events = as_logged(wire)
    k = data.draw(st.integers(0, len(events)), label="k")
    full = SnapshotFold(EXEC_ID, events, timeline_limit=limit)
    snap = over_the_wire(SnapshotFold(EXEC_ID, events[:k], timeline_limit=limit).snapshot())
    resumed = SnapshotFold.from_snapshot(snap, timeline_limit=limit).extend(events[k:])
    assert resumed.state() == full.state()
    assert resumed.cursor == full.cursor
    # The client-side shape agrees too: the snapshot's board folds the tail the same way.
    assert snap.board().extend(events[k:]).lanes() == full.board.lanes()


def test_the_fold_ignores_repeats_and_keeps_only_the_newest_custom_events() -> None:
    corr = CORRS[0]
    wire = [
        {
            "exec_id": EXEC_ID,
            "kind": "demo.custom",
            "correlation_id": corr,
            "index": i,
            "payload": {"kitaru": {}, "message": f"m{i}"},
        }
        for i in range(5)
    ]
    events = [ExecutionEvent.from_wire(w, f"{i:03d}") for i, w in enumerate(wire)]
    fold = SnapshotFold(EXEC_ID, events + events[:2], timeline_limit=3)
    assert [ev.index for ev in fold.timeline] == [2, 3, 4]
    assert fold.board.get(corr) is not None and fold.board.get(corr).event_count == 5  # type: ignore[union-attr]
    assert fold.cursor == "001"  # the position moves with the stream, repeats included
    fold.skip(7, "099")
    assert fold.lost == 7 and fold.snapshot().cursor == "099"


# -- through a real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_server_deps()
    from kitaru.server import serve_in_thread

    db = tmp_path_factory.mktemp("snapshot-server") / "server.db"
    # read_batch=7: snapshots and streams take several log reads, so batch seams are crossed.
    with serve_in_thread(db=db, token=None, ping_interval=0.2, read_batch=7) as server:
        yield server.url


def _stream_after(
    client: httpx.Client, exec_id: str, cursor: str | None, count: int, ended: bool
) -> list[ExecutionEvent]:
    """The stream after ``cursor``: until ``end`` (finished) or ``count`` events (running)."""
    params = {"since": cursor} if cursor else {}
    out: list[ExecutionEvent] = []
    if not ended and count == 0:
        return out
    with connect_sse(
        client, "GET", _wire.path_stream(exec_id), params=params, timeout=30
    ) as source:
        assert source.response.status_code == 200
        for sse in source.iter_sse():
            if sse.event == "end":
                break
            assert sse.event not in ("error", "gap"), sse.data
            if sse.event == "cursor" or not sse.data:
                continue
            out.append(ExecutionEvent.from_wire(orjson.loads(sse.data), sse.id))
            if not ended and len(out) == count:
                break
    return out


@pytest.mark.server
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(wire=wire_events(), data=st.data(), finish=st.booleans())
def test_server_snapshot_plus_stream_tail_equals_full_replay(
    server_url: str, wire: list[dict[str, Any]], data: st.DataObject, finish: bool
) -> None:
    exec_id = str(uuid.uuid4())
    for item in wire:
        item["exec_id"] = exec_id
    k = data.draw(st.integers(0, len(wire)), label="k")
    with httpx.Client(base_url=server_url, timeout=30) as c:
        r = c.post(
            _wire.PATH_EXECUTIONS,
            json={"exec_id": exec_id, "flow_name": "prop", "status": "running", "created_at": 1.0},
        )
        assert r.status_code == 201, r.text

        def post(items: list[dict[str, Any]]) -> None:
            # Random batch sizes, as a publisher would send them.
            while items:
                size = data.draw(st.integers(1, max(1, len(items))), label="batch")
                resp = c.post(_wire.path_events(exec_id), content=orjson.dumps(items[:size]))
                assert resp.status_code == 200, resp.text
                items = items[size:]

        post(wire[:k])
        if data.draw(st.booleans(), label="warm cache"):
            # An earlier snapshot leaves a cached fold that the next one must extend exactly.
            assert c.get(_wire.path_snapshot(exec_id)).status_code == 200
        snap_resp = c.get(_wire.path_snapshot(exec_id))
        assert snap_resp.status_code == 200, snap_resp.text
        snap = ExecutionSnapshot.from_dict(snap_resp.json())
        assert snap.status == "running" and not snap.ended
        post(wire[k:])
        if finish:
            r = c.post(
                _wire.path_finish(exec_id),
                json={"status": "completed", "output": None, "error_type": None},
            )
            assert r.status_code == 200, r.text
        everything = _stream_after(c, exec_id, None, len(as_logged(wire)), finish)
        tail = _stream_after(
            c,
            exec_id,
            snap.cursor,
            len(everything) - sum(lane.event_count for lane in snap.lanes),
            finish,
        )
        final = ExecutionSnapshot.from_dict(c.get(_wire.path_snapshot(exec_id)).json())

    full = SnapshotFold(exec_id, everything)
    resumed = SnapshotFold.from_snapshot(snap).extend(tail)
    assert resumed.state() == full.state()
    # The server's own snapshot of the whole log agrees as well.
    assert SnapshotFold.from_snapshot(final).state() == full.state()
    assert final.ended is finish
    assert final.cursor == (everything[-1].cursor if everything else None)
