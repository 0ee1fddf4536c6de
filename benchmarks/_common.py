"""Shared helpers of the benchmarks: timing statistics, machine facts, result files, servers.

Every benchmark measures a baseline in the same run and reports its figures as ratios to it,
because this machine is shared and noisy: absolute numbers move with the load, ratios much less.
Each one writes ``benchmarks/results/<name>.json`` (see :func:`write_result`); ``report.py``
turns those into the README's table.

Servers run as subprocesses on 127.0.0.1 and a free port, so the process being measured does not
share its interpreter lock with them, and their CPU and memory can be read from ``/proc``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- arguments and results -----------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``--smoke`` (short run: only errors and lost events fail)."""
    first = (doc or "").strip().splitlines()[0] if doc else ""
    p = argparse.ArgumentParser(description=first)
    p.add_argument(
        "--smoke",
        action="store_true",
        help="short version for CI: fails only on errors or a correctness failure",
    )
    return p


def machine() -> dict[str, Any]:
    """The facts a reader needs to judge the numbers (cores, CPU model, load right now)."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    try:
        from kitaru import __version__ as kitaru_version
    except ImportError:  # pragma: no cover
        kitaru_version = "?"
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_model": model,
        "loadavg": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "kitaru": kitaru_version,
    }


@dataclass
class Result:
    """What one benchmark run found; :meth:`write` stores it, :meth:`finish` sets the exit code.

    ``figures`` are plain numbers; ``rows`` are the table rows the report shows (a figure, its
    baseline, their ratio, the target and whether it was met); ``failures`` are correctness
    failures (lost events, crashes), which fail the run even with ``--smoke``.
    """

    name: str
    smoke: bool
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    load_start: list[float] = field(default_factory=lambda: machine()["loadavg"])

    def row(
        self,
        figure: str,
        value: float,
        unit: str,
        *,
        baseline: float | None = None,
        baseline_name: str | None = None,
        target: str | None = None,
        met: bool | None = None,
    ) -> None:
        """Add one table row and print it."""
        ratio = value / baseline if baseline else None
        self.rows.append(
            {
                "figure": figure,
                "value": value,
                "unit": unit,
                "baseline": baseline,
                "baseline_name": baseline_name,
                "ratio": ratio,
                "target": target,
                "met": met,
            }
        )
        text = f"  {figure:<48} {fmt(value, unit):>14}"
        if baseline is not None:
            text += f"   {baseline_name or 'baseline'} {fmt(baseline, unit)}  ratio {ratio:.2f}"
        if target is not None:
            verdict = "met" if met else "MISSED"
            text += f"   target {target}: {verdict}"
        print(text, flush=True)

    def fail(self, message: str) -> None:
        """Record a correctness failure (the run exits non-zero, also with ``--smoke``)."""
        self.failures.append(message)
        print(f"  FAILED: {message}", flush=True)

    def note(self, message: str) -> None:
        """Record and print a remark."""
        self.notes.append(message)
        print(f"  note: {message}", flush=True)

    def write(self) -> Path:
        """Write ``results/<name>.json`` (the smoke run writes ``<name>.smoke.json``)."""
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / (f"{self.name}.smoke.json" if self.smoke else f"{self.name}.json")
        info = machine()
        info["loadavg_start"] = self.load_start
        data = {
            "benchmark": self.name,
            "smoke": self.smoke,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - self.started, 2),
            "machine": info,
            "params": self.params,
            "figures": self.figures,
            "rows": self.rows,
            "failures": self.failures,
            "notes": self.notes,
        }
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        print(f"  wrote {path.relative_to(ROOT)}", flush=True)
        return path

    def finish(self) -> int:
        """Write the result file; 1 when there were correctness failures, else 0."""
        self.write()
        return 1 if self.failures else 0


def fmt(value: float, unit: str) -> str:
    """A number with its unit, rounded for reading."""
    if unit == "ns":
        return f"{value / 1000:.2f} µs" if value >= 1000 else f"{value:.0f} ns"
    if unit == "µs":
        return f"{value:.2f} µs"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "ev/s":
        return f"{value:,.0f} ev/s"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:g} {unit}".strip()


def header(title: str, res: Result) -> None:
    """Print the benchmark's title and the machine line."""
    m = machine()
    mode = " (smoke)" if res.smoke else ""
    print(f"== {title}{mode}", flush=True)
    print(
        f"   {m['nproc']} cores, {m['cpu_model']}, load {m['loadavg'][0]:.2f}, "
        f"Python {m['python']}",
        flush=True,
    )


# -- statistics ----------------------------------------------------------------------------------


def summary_ns(samples: Sequence[int] | Sequence[float]) -> dict[str, float]:
    """Median, p90, p99, p99.9 and mean of per-call times in nanoseconds."""
    data = sorted(samples)
    n = len(data)
    if n == 0:
        return {"n": 0}

    def pick(q: float) -> float:
        return float(data[min(n - 1, int(q * n))])

    return {
        "n": n,
        "median": float(statistics.median(data)),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "p999": pick(0.999),
        "mean": float(sum(data) / n),
        "max": float(data[-1]),
    }


def timer_overhead_ns(rounds: int = 200_000) -> float:
    """Median cost of one ``perf_counter_ns`` pair around nothing (subtracted from nothing;
    reported so a reader can judge sub-microsecond figures)."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(rounds):
        t0 = clock()
        out.append(clock() - t0)
    return float(statistics.median(out))


# -- /proc ---------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident memory now (``VmRSS``) and its peak (``VmHWM``), in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) / 1024
    return {"rss": out.get("VmRSS", 0.0), "hwm": out.get("VmHWM", 0.0)}


# -- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no inherited kitaru or OTel settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KITARU_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


_children: list[subprocess.Popen[str]] = []


@atexit.register
def _reap_children() -> None:
    # A benchmark that fails half-way still stops every child it started (by its own id).
    for child in _children:
        if child.poll() is None:
            child.kill()
            with contextlib.suppress(Exception):
                child.wait(5)


class Process:
    """A child process (a server or a watcher) that is always stopped, by its own id.

    Children still running when the benchmark exits (also after an error) are killed. A
    server's output goes to a temporary file (``quiet=True``), so a chatty server can never
    block on a full pipe; a watcher's stdout is a pipe the benchmark reads.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        quiet: bool = False,
        stdin: bool = False,
    ) -> None:
        self.argv = argv
        # Closed with the process object; a context manager cannot span its life.
        self._log = tempfile.TemporaryFile(mode="w+") if quiet else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv,
            env=env or child_env(),
            stdout=self._log if quiet else subprocess.PIPE,
            stderr=subprocess.STDOUT if quiet else subprocess.PIPE,
            stdin=subprocess.PIPE if stdin else None,
            text=True,
        )
        _children.append(self.proc)

    @property
    def pid(self) -> int:
        """The child's process ID."""
        return self.proc.pid

    def send_line(self, line: str) -> None:
        """Write one line to the child's stdin (started with ``stdin=True``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _collect(self, timeout: float) -> tuple[str, str]:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            self.proc.stdin = None
        out, err = self.proc.communicate(timeout=timeout)
        if self._log is not None:
            self._log.seek(0)
            err = self._log.read()
        return out or "", err or ""

    def stop(self, timeout: float = 10.0) -> tuple[str, str]:
        """SIGINT, then SIGKILL after ``timeout``; returns its stdout and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self._collect(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self._collect(timeout)

    def kill(self) -> None:
        """SIGKILL at once (a crashed server)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self._collect(10)

    def wait_output(self, timeout: float) -> tuple[str, str]:
        """Wait for the child to exit by itself; returns its stdout and stderr."""
        try:
            out, err = self._collect(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self._collect(10)
            raise RuntimeError(
                f"{' '.join(self.argv[:4])} did not finish within {timeout} s; stderr: "
                f"{err[-2000:]}"
            ) from None
        if self.proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.argv[:4])} exited with {self.proc.returncode}: {err[-2000:]}"
            )
        return out, err


def wait_http(url: str, proc: Process, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            _, err = proc._collect(10)
            raise RuntimeError(f"server exited with {proc.proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class KitaruServer(Process):
    """``kitaru server start`` in a subprocess on a free port, with its own database."""

    def __init__(self, db: Path, *, port: int | None = None, extra: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.db = db
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [
                sys.executable,
                "-m",
                "kitaru.cli",
                "server",
                "start",
                "--port",
                str(self.port),
                "--db",
                str(db),
                "--log-level",
                "warning",
                *extra,
            ],
            quiet=True,
        )
        wait_http(self.url + "/health", self)


class RawServer(Process):
    """The minimal baseline server of ``_raw_server.py`` in a subprocess."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [sys.executable, str(HERE / "_raw_server.py"), "--port", str(self.port), *args],
            quiet=True,
        )
        wait_http(self.url + "/health", self)


@contextlib.contextmanager
def tempdir() -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="kitaru-bench-") as d:
        yield Path(d)


def run_main(main: Any) -> None:
    """Run a benchmark's ``main()`` and exit with its code (errors exit 2 with a traceback)."""
    try:
        code = main()
    except Exception:
        import traceback

        traceback.print_exc()
        code = 2
    sys.stdout.flush()
    sys.exit(code)


# -- OpenTelemetry -------------------------------------------------------------------------------


def null_otel_provider() -> Any:
    """An SDK ``TracerProvider`` whose batch processor hands spans to an exporter that drops
    them: the full cost of recording spans, none of the cost of sending them."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.exporter = NullExporter()  # type: ignore[attr-defined]
    provider.add_span_processor(BatchSpanProcessor(provider.exporter))  # type: ignore[attr-defined]
    return provider


def null_otel_logger_provider() -> Any:
    """An SDK ``LoggerProvider`` whose batch processor hands log records to an exporter that
    drops them (``.exporter.records`` counts them)."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        BatchLogRecordProcessor,
        LogRecordExporter,
        LogRecordExportResult,
    )

    class NullLogExporter(LogRecordExporter):
        def __init__(self) -> None:
            self.records = 0

        def export(self, batch: Any) -> LogRecordExportResult:
            self.records += len(batch)
            return LogRecordExportResult.SUCCESS

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

        def shutdown(self) -> None:
            pass

    provider = LoggerProvider()
    provider.exporter = NullLogExporter()  # type: ignore[attr-defined]
    provider.add_log_record_processor(BatchLogRecordProcessor(provider.exporter))  # type: ignore[attr-defined]
    return provider


def new_running_execution(store: Any, flow_name: str) -> str:
    """Create a running execution of ``flow_name`` in ``store``; its new ID."""
    # kitaru is imported here, not at the top: the raw baseline server imports this module and
    # must run without kitaru.
    from kitaru.store import ExecutionRecord

    exec_id = str(uuid.uuid4())
    store.create_execution(
        ExecutionRecord(
            exec_id=exec_id,
            flow_name=flow_name,
            flow_ref=None,
            status="running",
            created_at=time.time(),
        )
    )
    return exec_id


# -- wire events ---------------------------------------------------------------------------------


def wire_events(exec_id: str, n: int, *, start: int = 0) -> list[bytes]:
    """``n`` progress events of one checkpoint execution, encoded as the publisher encodes
    ``kitaru.progress("Processing item", percent=..., item=i)`` (same keys, same order)."""
    import orjson

    corr = "kitaru.checkpoint:producer:" + "0" * 32
    meta = {
        "source": "kitaru",
        "checkpoint_name": "producer",
        "correlation_id": corr,
        "execution_id": exec_id,
        "checkpoint_id": "00000000-0000-4000-8000-000000000001",
        "checkpoint_type": "checkpoint",
        "flow_name": "bench",
        "step_name": "producer",
        "attempt": 1,
        "trace_id": "0" * 31 + "1",
    }
    out = []
    now = time.time()
    for i in range(start, start + n):
        out.append(
            orjson.dumps(
                {
                    "exec_id": exec_id,
                    "kind": "kitaru.checkpoint.progress",
                    "correlation_id": corr,
                    "index": i,
                    "checkpoint_id": meta["checkpoint_id"],
                    "checkpoint_name": "producer",
                    "step_name": "producer",
                    "ts": now,
                    "payload": {
                        "kitaru": {**meta, "ts": now},
                        "message": "Processing item",
                        "data": {"item": i, "percent": round(i / max(1, n), 6)},
                    },
                }
            )
        )
    return out


def batches(events: list[bytes], size: int = 500) -> list[bytes]:
    """JSON array bodies of ``size`` events each (what the publisher posts)."""
    return [b"[" + b",".join(events[i : i + size]) + b"]" for i in range(0, len(events), size)]


def read_line(proc: Process, timeout: float) -> str:
    """The next line the child writes to stdout, waiting at most ``timeout`` seconds."""
    import select

    assert proc.proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"no output from {' '.join(proc.argv[:3])} within {timeout} s")
        ready, _, _ = select.select([proc.proc.stdout], [], [], min(remaining, 0.5))
        if ready:
            line = proc.proc.stdout.readline()
            if not line:
                err = proc.proc.stderr.read() if proc.proc.stderr else ""
                raise RuntimeError(f"{' '.join(proc.argv[:3])} exited: {err[-2000:]}")
            return line.strip()
        if proc.proc.poll() is not None:
            err = proc.proc.stderr.read() if proc.proc.stderr else ""
            raise RuntimeError(f"{' '.join(proc.argv[:3])} exited: {err[-2000:]}")
