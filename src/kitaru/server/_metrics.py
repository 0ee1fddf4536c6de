"""The server's own metrics, served as Prometheus text at ``GET /metrics``.

For the people who operate a server: is it taking events, how fast, how many watchers, are they
keeping up, is the storage failing, how big is the database. Counted in this process (each
replica reports its own; Prometheus adds them up). The route follows the API's token rules.
See ``docs/opentelemetry.md`` ("The server's metrics") for every series.

Recording is a few integer updates on the event loop's thread (no lock needed there); the text
is built when scraped. No dependency: the exposition format is a few lines per series.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONTENT_TYPE",
    "INGEST_BUCKETS",
    "ServerMetrics",
    "StreamTrack",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

INGEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (seconds) of the ingest latency histogram."""


@dataclass(slots=True)
class StreamTrack:
    """One open stream: which execution, and the last position it was sent."""

    exec_id: str
    position: str | None


def _seq(cursor: str | None) -> int | None:
    """The sequence number of a numbered cursor (``None`` for other cursor forms)."""
    if cursor is None:
        return 0
    return int(cursor) if cursor.isdigit() else None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class ServerMetrics:
    """Counters, gauges and a histogram of one server process."""

    def __init__(self, db: Path | str | None = None) -> None:
        self.db = db
        self.events_ingested = 0
        self.events_duplicate = 0
        self.ingest_rejected: dict[str, int] = {}
        self.backend_errors: dict[str, int] = {}
        self.backend_retries: dict[str, int] = {}
        self.lost_verdicts = 0
        self.streams_opened = 0
        self._ingest_counts = [0] * (len(INGEST_BUCKETS) + 1)
        self._ingest_sum = 0.0
        self._streams: dict[int, StreamTrack] = {}
        # The newest cursor this process saw per execution (from appends and reads).
        self._heads: dict[str, int] = {}

    # -- recording --------------------------------------------------------------------------

    def ingested(self, stored: int, duplicates: int, seconds: float) -> None:
        """One accepted ingest request."""
        self.events_ingested += stored
        self.events_duplicate += duplicates
        self._ingest_counts[bisect.bisect_left(INGEST_BUCKETS, seconds)] += 1
        self._ingest_sum += seconds

    def rejected(self, reason: str) -> None:
        """One refused ingest request (``reason``: the error kind it was answered with)."""
        self.ingest_rejected[reason] = self.ingest_rejected.get(reason, 0) + 1

    def backend_error(self, where: str) -> None:
        """The event log or store failed (``where``: ``api`` or ``stream``)."""
        self.backend_errors[where] = self.backend_errors.get(where, 0) + 1

    def backend_retry(self, how: str) -> None:
        """A client was told to retry because of the backend (``how``: ``503``, ``reconnect``)."""
        self.backend_retries[how] = self.backend_retries.get(how, 0) + 1

    def lost(self, count: int) -> None:
        """Executions the lost-producer check marked ``lost``."""
        self.lost_verdicts += count

    def head(self, exec_id: str, cursor: str | None) -> None:
        """The newest cursor seen for ``exec_id`` (from an append or a read)."""
        seq = _seq(cursor)
        if seq is not None and seq > self._heads.get(exec_id, -1):
            self._heads[exec_id] = seq

    def stream_opened(self, track: StreamTrack) -> None:
        """Register an open stream (whose ``position`` its writer updates as frames go out)."""
        self._streams[id(track)] = track
        self.streams_opened += 1

    def stream_closed(self, track: StreamTrack) -> None:
        """Forget a closed stream."""
        self._streams.pop(id(track), None)
        if not any(t.exec_id == track.exec_id for t in self._streams.values()):
            self._heads.pop(track.exec_id, None)

    # -- reading ----------------------------------------------------------------------------

    def lag(self) -> list[int]:
        """Events each open stream still has to send (streams with numbered cursors)."""
        out: list[int] = []
        for track in list(self._streams.values()):
            seq = _seq(track.position)
            head = self._heads.get(track.exec_id)
            if seq is not None and head is not None:
                out.append(max(0, head - seq))
        return out

    def database_bytes(self) -> int | None:
        """Size of the SQLite database with its write-ahead log (``None`` for PostgreSQL)."""
        if not isinstance(self.db, Path):
            return None
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.stat(f"{self.db}{suffix}").st_size
            except OSError:
                continue
        return total

    def render(self, *, started_at: float) -> bytes:
        """The Prometheus text exposition of every series."""
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)

        def labelled(name: str, label: str, values: dict[str, int]) -> list[str]:
            return [f'{name}{{{label}="{_escape(k)}"}} {v}' for k, v in sorted(values.items())]

        family(
            "kitaru_server_events_ingested_total",
            "counter",
            "Live events stored by ingest requests",
            [f"kitaru_server_events_ingested_total {self.events_ingested}"],
        )
        family(
            "kitaru_server_events_duplicate_total",
            "counter",
            "Live events skipped as already stored (a producer's retry)",
            [f"kitaru_server_events_duplicate_total {self.events_duplicate}"],
        )
        family(
            "kitaru_server_ingest_rejected_total",
            "counter",
            "Ingest requests refused, by the error kind answered",
            labelled("kitaru_server_ingest_rejected_total", "reason", self.ingest_rejected),
        )
        hist = "kitaru_server_ingest_duration_seconds"
        buckets: list[str] = []
        running = 0
        for bound, count in zip(INGEST_BUCKETS, self._ingest_counts, strict=False):
            running += count
            buckets.append(f'{hist}_bucket{{le="{bound}"}} {running}')
        running += self._ingest_counts[-1]
        buckets.append(f'{hist}_bucket{{le="+Inf"}} {running}')
        buckets.append(f"{hist}_sum {_fmt(self._ingest_sum)}")
        buckets.append(f"{hist}_count {running}")
        family(
            "kitaru_server_ingest_duration_seconds",
            "histogram",
            "Time to validate and store one accepted ingest request",
            buckets,
        )
        lags = self.lag()
        family(
            "kitaru_server_open_streams",
            "gauge",
            "SSE streams open now",
            [f"kitaru_server_open_streams {len(self._streams)}"],
        )
        family(
            "kitaru_server_streams_opened_total",
            "counter",
            "SSE streams opened",
            [f"kitaru_server_streams_opened_total {self.streams_opened}"],
        )
        family(
            "kitaru_server_watchers_behind",
            "gauge",
            "Open streams that have not yet been sent the newest event of their execution",
            [f"kitaru_server_watchers_behind {sum(1 for lag in lags if lag > 0)}"],
        )
        family(
            "kitaru_server_watcher_lag_events",
            "gauge",
            "Events open streams still have to send: the most behind one, and all together",
            [
                f'kitaru_server_watcher_lag_events{{stat="max"}} {max(lags, default=0)}',
                f'kitaru_server_watcher_lag_events{{stat="sum"}} {sum(lags)}',
            ],
        )
        family(
            "kitaru_server_backend_errors_total",
            "counter",
            "Failures of the event log or the record store, by where they surfaced",
            labelled("kitaru_server_backend_errors_total", "where", self.backend_errors),
        )
        family(
            "kitaru_server_backend_retries_total",
            "counter",
            "Clients told to retry because of the backend (503 answers, stream reconnects)",
            labelled("kitaru_server_backend_retries_total", "how", self.backend_retries),
        )
        family(
            "kitaru_server_lost_verdicts_total",
            "counter",
            "Executions marked lost because their producer went silent",
            [f"kitaru_server_lost_verdicts_total {self.lost_verdicts}"],
        )
        size = self.database_bytes()
        if size is not None:
            family(
                "kitaru_server_database_bytes",
                "gauge",
                "Size of the SQLite database file with its write-ahead log",
                [f"kitaru_server_database_bytes {size}"],
            )
        family(
            "kitaru_server_uptime_seconds",
            "gauge",
            "Seconds since this server process started",
            [f"kitaru_server_uptime_seconds {_fmt(round(time.time() - started_at, 3))}"],
        )
        return ("\n".join(lines) + "\n").encode()
