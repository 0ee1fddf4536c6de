"""Schema migrations of the PostgreSQL store.

Each migration is applied once, in order, inside one transaction that holds a
transaction-level advisory lock, so several server replicas starting at the same moment
migrate the database exactly once. ``kitaru_schema_migrations`` records what was applied. A
database migrated by a newer kitaru (an unknown version) is refused rather than guessed at.

Add a migration by appending to :data:`MIGRATIONS`; never edit one that was released.
"""

from __future__ import annotations

from typing import Any

from kitaru.store._base import StoreUnavailableError

__all__ = ["MIGRATIONS", "migrate"]

# An arbitrary constant that names kitaru's schema lock among the database's advisory locks.
_LOCK_ID = 0x6B69746172750001

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "executions and checkpoints",
        """
        CREATE TABLE kitaru_executions (
            exec_id TEXT PRIMARY KEY,
            flow_name TEXT NOT NULL,
            flow_ref TEXT,
            status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION,
            original_exec_id TEXT,
            error_type TEXT,
            inputs TEXT,
            output TEXT,
            heartbeat_at DOUBLE PRECISION
        );
        CREATE INDEX kitaru_executions_created ON kitaru_executions (created_at DESC);
        CREATE INDEX kitaru_executions_flow ON kitaru_executions (flow_name, created_at DESC);
        -- Lost-producer detection scans running executions on every replica, often.
        CREATE INDEX kitaru_executions_running ON kitaru_executions (exec_id)
            WHERE status = 'running';
        CREATE TABLE kitaru_checkpoints (
            checkpoint_id TEXT PRIMARY KEY,
            exec_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            cache_key TEXT,
            status TEXT NOT NULL,
            ended_at DOUBLE PRECISION,
            body TEXT NOT NULL
        );
        CREATE INDEX kitaru_checkpoints_exec ON kitaru_checkpoints (exec_id, seq);
        CREATE INDEX kitaru_checkpoints_cache ON kitaru_checkpoints (cache_key, status, ended_at)
            WHERE cache_key IS NOT NULL;
        """,
    ),
    (
        2,
        "runtime log lines and execution metadata",
        """
        -- Captured runtime log lines (docs/runtime-logs-and-metadata.md). ``id`` is the
        -- follow cursor: one producer appends an execution's lines in order, one statement
        -- at a time, so ids of one execution commit in increasing order.
        CREATE TABLE kitaru_log_lines (
            id BIGSERIAL PRIMARY KEY,
            exec_id TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            line INTEGER NOT NULL,
            checkpoint TEXT NOT NULL,
            step_name TEXT NOT NULL,
            body TEXT NOT NULL
        );
        CREATE UNIQUE INDEX kitaru_log_lines_key
            ON kitaru_log_lines (exec_id, correlation_id, line);
        CREATE INDEX kitaru_log_lines_exec ON kitaru_log_lines (exec_id, id);
        CREATE TABLE kitaru_execution_metadata (
            exec_id TEXT PRIMARY KEY,
            body TEXT NOT NULL
        );
        """,
    ),
    (
        3,
        "cancel requests",
        """
        CREATE TABLE kitaru_cancel_requests (
            exec_id TEXT PRIMARY KEY,
            requested_at DOUBLE PRECISION NOT NULL
        );
        """,
    ),
]


def migrate(conn: Any) -> list[int]:
    """Bring the schema up to date on ``conn`` (a psycopg connection); the versions applied.

    Raises:
        StoreUnavailableError: The database has a schema version this kitaru does not know.
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kitaru_schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM kitaru_schema_migrations")}
        known = {version for version, _, _ in MIGRATIONS}
        unknown = sorted(done - known)
        if unknown:
            raise StoreUnavailableError(
                f"the database has kitaru schema version(s) {unknown} that this kitaru does "
                f"not know (it knows up to {max(known)}); upgrade kitaru"
            )
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            conn.execute(sql)
            conn.execute(
                "INSERT INTO kitaru_schema_migrations (version, name) VALUES (%s, %s)",
                (version, name),
            )
            applied.append(version)
    return applied
