"""The PostgreSQL store: the same records and rules as the SQLite store, plus migrations."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitaru.store import (
    CheckpointRecord,
    ExecutionExistsError,
    ExecutionRecord,
    SqliteStore,
    StoredValue,
    StoreUnavailableError,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s: Any = SqliteStore(tmp_path / "s.db")
    else:
        from kitaru.store._postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("postgres_schema_url"))
    try:
        yield s
    finally:
        s.close()


def execution(exec_id: str | None = None, **fields: Any) -> ExecutionRecord:
    base: dict[str, Any] = {
        "exec_id": exec_id or str(uuid.uuid4()),
        "flow_name": "f",
        "flow_ref": "mod:f",
        "status": "running",
        "created_at": time.time(),
        "inputs": StoredValue("json", "[1]"),
    }
    base.update(fields)
    return ExecutionRecord(**base)


def checkpoint(exec_id: str, seq: int, **fields: Any) -> CheckpointRecord:
    base: dict[str, Any] = {
        "checkpoint_id": str(uuid.uuid4()),
        "exec_id": exec_id,
        "name": "cp",
        "step_name": f"cp_{seq}",
        "checkpoint_type": "checkpoint",
        "seq": seq,
        "status": "completed",
        "started_at": time.time(),
        "ended_at": time.time() + seq,
        "output": StoredValue("json", str(seq)),
    }
    base.update(fields)
    return CheckpointRecord(**base)


def test_records_round_trip(store: Any) -> None:
    rec = execution()
    store.create_execution(rec)
    got = store.get_execution(rec.exec_id)
    assert got is not None and got.status == "running" and got.inputs == rec.inputs
    assert got.flow_ref == "mod:f" and got.checkpoints == []
    cps = [checkpoint(rec.exec_id, i) for i in (1, 0)]
    for cp in cps:
        store.save_checkpoint(cp)
    cps[0].status = "failed"
    store.save_checkpoint(cps[0])  # replaced, not duplicated
    got = store.get_execution(rec.exec_id)
    assert [c.seq for c in got.checkpoints] == [0, 1]
    assert got.checkpoints[1].status == "failed"
    assert store.get_execution("nope") is None


def test_terminal_is_final_and_first_verdict_wins(store: Any) -> None:
    rec = execution()
    store.create_execution(rec)
    assert [r.exec_id for r in store.running_executions()] == [rec.exec_id]
    store.finish_execution(rec.exec_id, "lost")
    store.finish_execution(rec.exec_id, "completed", output=StoredValue("json", "2"))
    got = store.get_execution(rec.exec_id)
    assert got.status == "lost" and got.output is None and got.ended_at is not None
    assert store.running_executions() == []


def test_list_filters_and_orders_newest_first(store: Any) -> None:
    now = time.time()
    for i in range(5):
        store.create_execution(
            execution(f"e{i}", created_at=now + i, flow_name="a" if i % 2 else "b")
        )
    store.finish_execution("e4", "completed")
    assert [r.exec_id for r in store.list_executions()] == ["e4", "e3", "e2", "e1", "e0"]
    assert [r.exec_id for r in store.list_executions(flow_name="a")] == ["e3", "e1"]
    assert [r.exec_id for r in store.list_executions(status="completed")] == ["e4"]
    assert len(store.list_executions(limit=2)) == 2
    assert [r.exec_id for r in store.list_executions(limit=2, offset=2)] == ["e2", "e1"]
    assert [r.exec_id for r in store.list_executions(id_prefix="e3")] == ["e3"]
    assert store.list_executions(id_prefix="e%") == []  # text, not a LIKE pattern


def test_heartbeat_and_cache_lookup(store: Any) -> None:
    rec = execution()
    store.create_execution(rec)
    store.heartbeat(rec.exec_id)
    assert store.get_execution(rec.exec_id).heartbeat_at is not None
    old = checkpoint(rec.exec_id, 0, cache_key="k", ended_at=1.0)
    new = checkpoint(rec.exec_id, 1, cache_key="k", ended_at=2.0)
    running = checkpoint(rec.exec_id, 2, cache_key="k", status="running", ended_at=None)
    for cp in (old, new, running):
        store.save_checkpoint(cp)
    assert store.find_cached("k").checkpoint_id == new.checkpoint_id
    assert store.find_cached("other") is None


def test_duplicate_create_is_refused(store: Any) -> None:
    rec = execution()
    store.create_execution(rec)
    with pytest.raises((ExecutionExistsError, sqlite3.IntegrityError)):
        store.create_execution(rec)


@pytest.mark.postgres
def test_many_threads_finish_one_execution_once(postgres_schema_url: str) -> None:
    from kitaru.store._postgres import PostgresStore

    stores = [PostgresStore(postgres_schema_url) for _ in range(3)]  # three "replicas"
    try:
        rec = execution()
        stores[0].create_execution(rec)
        statuses = ["completed", "failed", "lost"] * 4
        threads = [
            threading.Thread(target=stores[i % 3].finish_execution, args=(rec.exec_id, s))
            for i, s in enumerate(statuses)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        finals = {s.get_execution(rec.exec_id).status for s in stores}
        assert len(finals) == 1 and finals <= {"completed", "failed", "lost"}
    finally:
        for s in stores:
            s.close()


@pytest.mark.postgres
def test_migrations_run_once_and_are_recorded(postgres_schema_url: str) -> None:
    import psycopg

    from kitaru.store._pg_schema import MIGRATIONS, migrate
    from kitaru.store._postgres import PostgresStore

    # Several replicas opening an empty database at the same moment migrate it once.
    opened: list[Any] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStore(postgres_schema_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] and len(opened) == 4
        with psycopg.connect(postgres_schema_url, autocommit=True) as conn:
            rows = conn.execute("SELECT version FROM kitaru_schema_migrations").fetchall()
            assert sorted(r[0] for r in rows) == [v for v, _, _ in MIGRATIONS]
            assert migrate(conn) == []  # nothing left to do
            # A database migrated by a newer kitaru is refused, not guessed at.
            conn.execute("INSERT INTO kitaru_schema_migrations (version, name) VALUES (999, 'x')")
        with pytest.raises(StoreUnavailableError, match="999"):
            PostgresStore(postgres_schema_url)
    finally:
        for s in opened:
            s.close()


@pytest.mark.postgres
def test_an_unreachable_database_is_unavailable_not_a_hang() -> None:
    import socket

    from kitaru.store._postgres import PostgresStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now: connecting fails fast.
    with pytest.raises(StoreUnavailableError) as info:
        PostgresStore(f"postgresql://kitaru:secret-pw@127.0.0.1:{port}/kitaru", connect_timeout=2)
    assert "secret-pw" not in str(info.value)


def test_failure_reason_and_cancel_requests_are_kept(store: Any) -> None:
    """Both stores keep a failed call's message and traceback, and cancel requests."""
    from kitaru.store import AttemptRecord

    rec = execution()
    store.create_execution(rec)
    cp = checkpoint(
        rec.exec_id,
        0,
        status="failed",
        error_type="RuntimeError",
        error_message="token=sk-canary-5150",
        error_traceback="Traceback (most recent call last):\n  in explode\nRuntimeError: ...",
        attempts=[
            AttemptRecord(
                attempt=1,
                correlation_id="kitaru.checkpoint:cp:" + "0" * 32,
                status="failed",
                started_at=1.0,
                ended_at=2.0,
                error_type="RuntimeError",
                error_message="token=sk-canary-5150",
            )
        ],
    )
    store.save_checkpoint(cp)
    (got,) = store.get_execution(rec.exec_id).checkpoints
    assert got.error_message == "token=sk-canary-5150"
    assert got.error_traceback is not None and "in explode" in got.error_traceback
    assert got.attempts[0].error_message == "token=sk-canary-5150"
    assert store.heartbeat(rec.exec_id) is False
    store.request_cancel(rec.exec_id)
    store.request_cancel(rec.exec_id)  # idempotent
    assert store.heartbeat(rec.exec_id) is True
    store.finish_execution(rec.exec_id, "cancelled")
    assert store.get_execution(rec.exec_id).status == "cancelled"
