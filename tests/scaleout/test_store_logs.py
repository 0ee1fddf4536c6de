"""Runtime log lines and execution metadata in both stores; the PostgreSQL migration to them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitaru.store import CheckpointRecord, ExecutionRecord, SqliteStore
from kitaru.store._logs import LogLine
from kitaru.store._usage import UsageRecord


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


def line(exec_id: str, corr: str, n: int, cp: str = "cp", step: str = "cp") -> LogLine:
    return LogLine(exec_id, "cid", corr, cp, step, 1, n, time.time(), "log", "INFO", f"{corr}:{n}")


def test_lines_keyed_cursored_filtered(store: Any) -> None:
    exec_id = str(uuid.uuid4())
    store.create_execution(ExecutionRecord(exec_id, "f", None, "running", time.time(), inputs=None))
    store.append_logs([line(exec_id, "a", 0), line(exec_id, "a", 1)])
    # A retried batch stores nothing twice; new lines continue after it.
    store.append_logs([line(exec_id, "a", 1), line(exec_id, "b", 0, "other", "other_2")])
    store.append_logs([line("another-exec", "a", 0)])
    got = store.read_logs(exec_id)
    assert [x.message for x in got] == ["a:0", "a:1", "b:0"]
    cursors = [x.cursor for x in got]
    assert cursors == sorted(cursors) and len(set(cursors)) == 3
    assert [x.message for x in store.read_logs(exec_id, after=cursors[0])] == ["a:1", "b:0"]
    assert [x.message for x in store.read_logs(exec_id, checkpoint="other")] == ["b:0"]
    assert [x.message for x in store.read_logs(exec_id, checkpoint="other_2")] == ["b:0"]
    assert [x.message for x in store.read_logs(exec_id, correlation_id="a")] == ["a:0", "a:1"]
    assert [x.message for x in store.read_logs(exec_id, limit=1)] == ["a:0"]


def test_metadata_and_usage_round_trip(store: Any) -> None:
    exec_id = str(uuid.uuid4())
    store.create_execution(ExecutionRecord(exec_id, "f", None, "running", time.time()))
    cp = CheckpointRecord(
        checkpoint_id=str(uuid.uuid4()),
        exec_id=exec_id,
        name="cp",
        step_name="cp",
        seq=0,
        checkpoint_type="checkpoint",
        status="completed",
        usage=[UsageRecord("m", 1, 5, 2, 1, 0.25), UsageRecord("m", 0, 5, 2, reused=True)],
    )
    store.save_checkpoint(cp)
    store.save_execution_metadata(exec_id, {"a": 1}, [UsageRecord("m", 0, 1).to_dict()])
    store.save_execution_metadata(exec_id, {"b": [1, "x"]}, [])  # replaces
    record = store.get_execution(exec_id)
    assert record.metadata == {"b": [1, "x"]} and record.usage == []
    assert record.checkpoints[0].usage == cp.usage
    assert record.usage_summary()["total"]["total_tokens"] == 14


@pytest.mark.postgres
def test_postgres_migrates_a_version_1_database(postgres_schema_url: str) -> None:
    import psycopg

    from kitaru.store._pg_schema import MIGRATIONS, migrate
    from kitaru.store._postgres import PostgresStore

    # A database as the first release left it: only migration 1 applied, with a record in it.
    with psycopg.connect(postgres_schema_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(
                "CREATE TABLE kitaru_schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            version, name, sql = MIGRATIONS[0]
            conn.execute(sql)
            conn.execute(
                "INSERT INTO kitaru_schema_migrations (version, name) VALUES (%s, %s)",
                (version, name),
            )
        conn.execute(
            "INSERT INTO kitaru_executions (exec_id, flow_name, status, created_at) "
            "VALUES ('old', 'f', 'completed', 1.0)"
        )
    store = PostgresStore(postgres_schema_url)
    try:
        with psycopg.connect(postgres_schema_url, autocommit=True) as conn:
            done = [r[0] for r in conn.execute("SELECT version FROM kitaru_schema_migrations")]
            assert sorted(done) == [v for v, _, _ in MIGRATIONS]  # every later migration ran
            assert migrate(conn) == []
        store.append_logs([line("old", "a", 0)])
        store.save_execution_metadata("old", {"k": "v"})
        assert [x.message for x in store.read_logs("old")] == ["a:0"]
        record = store.get_execution("old")
        assert record is not None and record.metadata == {"k": "v"}
    finally:
        store.close()
